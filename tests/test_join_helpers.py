"""Factories for the joining tests (no tests here): structures through core.create_structure,
memberships through core.add_member, SIRET numbers with a valid (or a wrong) Luhn key."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from conftest import new_siret  # noqa: F401 - re-exported for the joining tests


def bad_key(siret: str) -> str:
    """The same SIRET with a wrong last digit (the Luhn key fails)."""
    return siret[:-1] + str((int(siret[-1]) + 1) % 10)


def token() -> str:
    return uuid.uuid4().hex[:8]


@dataclass
class Made:
    id: uuid.UUID
    siret: str
    name: str


def make_structure(app: Any, name: str | None = None, *, kind: str = "organisme", city: str = "Lyon",
                   postal_code: str = "69001", code: str | None = None, admin_email: str | None = None,
                   searchable: bool = True, siret: str | None = None) -> Made:
    from idp.core.security import SYSTEM
    from idp.core.structures import StructureData, create_structure
    from idp.extensions import db
    from idp.models import StructureKind

    name = name or f"Organisme {token()}"
    with app.app_context():
        structure = create_structure(db.session, StructureData(
            siret=siret or new_siret(), name=name, kind=StructureKind(kind), city=city, postal_code=postal_code,
            code=code, admin_email=admin_email, searchable=searchable), SYSTEM)
        db.session.commit()
        return Made(structure.id, structure.siret, structure.name)


def add_member(app: Any, structure_id: uuid.UUID, user_id: uuid.UUID, roles: tuple[str, ...] = (), *,
               admin: bool = False) -> int:
    """Attach through core.add_member with the operator's authority; the membership id."""
    from idp.core.memberships import add_member as core_add_member
    from idp.core.memberships import grants_by_key, operator_authority
    from idp.core.security import SYSTEM
    from idp.extensions import db
    from idp.models import Structure, User

    with app.app_context():
        structure = db.session.get(Structure, structure_id)
        membership = core_add_member(db.session, operator_authority(db.session, structure),
                                     db.session.get(User, user_id), SYSTEM,
                                     role_ids=grants_by_key(db.session, roles), admin=admin)
        db.session.commit()
        return membership.id


def join_requests(app: Any, user_id: uuid.UUID, structure_id: uuid.UUID) -> list[Any]:
    """The user's requests to the structure, oldest first (detached)."""
    from sqlalchemy import select

    from idp.extensions import db
    from idp.models import JoinRequest

    with app.app_context():
        rows = list(db.session.scalars(select(JoinRequest).where(
            JoinRequest.user_id == user_id, JoinRequest.structure_id == structure_id).order_by(JoinRequest.id)))
        for row in rows:
            db.session.expunge(row)
        return rows


def membership(app: Any, user_id: uuid.UUID, structure_id: uuid.UUID) -> Any:
    from idp.core.memberships import membership_of
    from idp.extensions import db

    with app.app_context():
        found = membership_of(db.session, user_id, structure_id)
        if found is not None:
            db.session.expunge(found)
        return found
