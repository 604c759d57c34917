"""Every object an app stores belongs to a structure; this is the one place that checks it.

`owned_or_404(Model, id, roles=...)` loads an object for the current identity: another
structure's object looks exactly like a missing one (404), a structure the person belongs to
without the right role gets the French 403 that says which role is missing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from flask import abort
from flask_babel import gettext as _
from sqlalchemy import String
from sqlalchemy.orm import Mapped, Session, mapped_column
from werkzeug.exceptions import Forbidden

from shared.bounds import bounded_int
from shared.identity import Identity

T = TypeVar("T")
MAX_ID = 2**63 - 1  # ids beyond a 64-bit integer are simply missing, never a database error (BigId keys)


class OwnedByStructure:
    """Mixin: the structure (as the IdP names it in the claims) an object belongs to."""

    structure_id: Mapped[str] = mapped_column(String(64), index=True)
    structure_siret: Mapped[str] = mapped_column(String(14))
    structure_name: Mapped[str] = mapped_column(String(200), default="")


class RoleMissing(Forbidden):
    """403 with the French page naming the missing role (or a message: switch structure)."""

    def __init__(self, roles: Iterable[str] = (), message: str | None = None) -> None:
        super().__init__(message)
        self.roles = tuple(roles)
        self.message = message


def parse_id(value: Any) -> int:
    """A positive 64-bit id from a path or form, else 404."""
    number = bounded_int(value, 1, MAX_ID)
    if number is None:
        abort(404)
    return number


def check_access(identity: Identity | None, structure: str, roles: Iterable[str],
                 all_structures: Iterable[str] = ()) -> None:
    """Allow `identity` to act on an object of `structure` (its IdP id, or its SIRET) with one of `roles`.

    :param all_structures: roles that reach every structure's objects (the Région's instructeur,
        moderateur, acheteur), held in the current structure.
    :raises NotFound: that structure is not one of the person's (or they are anonymous): another
        structure's object looks exactly like a missing one.
    :raises RoleMissing: it is their current structure but they lack the role (nothing to hide
        there), or they hold roles there but act for another structure (they may switch).
    """
    roles = tuple(roles)
    if identity is None:
        abort(404)
    if identity.has_role(*all_structures):
        return
    current = identity.structure
    if current is not None and structure in (current.id, current.siret):
        if identity.has_role(*roles):
            return
        raise RoleMissing(roles)
    other = next((s for s in identity.structures if structure in (s.id, s.siret)), None)
    if other is None:
        abort(404)
    raise RoleMissing(roles, _("Cette page appartient à %(name)s, qui n'est pas votre structure courante : "
                               "changez de structure pour y accéder.", name=other.name))


def owned_or_404(session: Session, model: type[T], ident: Any, identity: Identity | None, *,
                 roles: Iterable[str], all_structures: Iterable[str] = ()) -> T:
    """The object `ident` of `model` when `identity` may act on it with one of `roles` (see
    `check_access`); a missing object and another structure's object both answer 404."""
    obj = session.get(model, parse_id(ident))
    if obj is None:
        abort(404)
    check_access(identity, obj.structure_id, roles, all_structures)  # type: ignore[attr-defined]
    return obj


def one_of_or_404(items: Iterable[T], ident: Any) -> T:
    """The item of `items` whose id is `ident`, else 404. `items` is a collection of an object already
    loaded through the guard (a consultation's lots, a response's offers): a child is only ever reached
    through its checked parent, so another structure's child id looks missing too."""
    wanted = parse_id(ident)
    found = next((item for item in items if item.id == wanted), None)  # type: ignore[attr-defined]
    if found is None:
        abort(404)
    return found
