"""Optimistic locking for forms (SPEC §6, seed 002 §3: no more "last save wins").

A model carries an integer version (`Versioned`); the edit form sends back the version it was
shown (`version` hidden field); saving checks it first. A stale save answers 409 with a clear
message and the typed values, instead of silently overwriting a colleague's changes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from shared.i18n import lazy_gettext as _l

CONFLICT_MESSAGE = _l("Cette fiche a été modifiée par quelqu'un d'autre depuis que vous l'avez ouverte. "
                      "Vos saisies sont conservées ci-dessous : vérifiez la version actuelle puis enregistrez à nouveau.")


class StaleVersion(Exception):  # noqa: N818 - the domain word
    """The form was filled from an older version of the object.

    :param current: the version now stored.
    """

    def __init__(self, current: int) -> None:
        super().__init__(CONFLICT_MESSAGE)
        self.current = current
        self.message = CONFLICT_MESSAGE


class Versioned:
    """Mixin: a `version` column SQLAlchemy bumps on each UPDATE and checks in its WHERE clause,
    so two saves racing past `check_version` still cannot both win."""

    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:  # noqa: N805
        return {"version_id_col": cls.__table__.c.version}  # type: ignore[attr-defined]


def check_version(obj: Versioned, submitted: Any) -> None:
    """Refuse a save prepared from another version than the stored one.

    :param submitted: the form's hidden `version` value (a string or an int).
    :raises StaleVersion: the value is missing, malformed or not the stored version.
    """
    try:
        version = int(submitted)
    except (TypeError, ValueError):
        raise StaleVersion(obj.version) from None
    if version != obj.version:
        raise StaleVersion(obj.version)
