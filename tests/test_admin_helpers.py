"""Factories for the platform console tests (no tests here): structures, members, join requests."""

from __future__ import annotations

import uuid
from typing import Any

from conftest import new_siret, unique_email


def make_structure(app: Any, name: str = "Organisme de test", siret: str | None = None, kind: str = "organisme",
                   city: str = "Lyon", admin_email: str | None = None) -> Any:
    """A structure with its default entitlements (detached)."""
    from idp.core.security import SYSTEM
    from idp.core.structures import StructureData, create_structure
    from idp.extensions import db
    from idp.models import StructureKind

    with app.app_context():
        structure = create_structure(db.session, StructureData(
            siret=siret or new_siret(), name=name, kind=StructureKind(kind), city=city, admin_email=admin_email),
            SYSTEM)
        db.session.commit()
        db.session.expunge(structure)
        return structure


def attach(app: Any, user_id: uuid.UUID, structure_id: uuid.UUID, *, roles: tuple[str, ...] = (),
           admin: bool = False, suspended: bool = False) -> None:
    """Make a membership directly (roles as "app:role" keys)."""
    from idp.core.memberships import grants_by_key
    from idp.extensions import db
    from idp.models import AccessGrant, Membership, MembershipRole, MembershipStatus

    with app.app_context():
        membership = Membership(user_id=user_id, structure_id=structure_id,
                                role=MembershipRole.ADMIN if admin else MembershipRole.MEMBER,
                                status=MembershipStatus.SUSPENDED if suspended else MembershipStatus.ACTIVE)
        membership.grants = [AccessGrant(role_id=r) for r in grants_by_key(db.session, roles)]
        db.session.add(membership)
        db.session.commit()


def join_request(app: Any, user_id: uuid.UUID, structure_id: uuid.UUID, profile: str | None = None) -> int:
    """A pending join request (through the core), returns its id."""
    from sqlalchemy import select

    from idp.core.memberships import request_join
    from idp.core.security import SYSTEM
    from idp.extensions import db
    from idp.models import Profile, Structure, User

    with app.app_context():
        structure = db.session.get(Structure, structure_id)
        found = db.session.scalar(select(Profile).where(Profile.name == profile)) if profile else None
        request = request_join(db.session, db.session.get(User, user_id), structure, SYSTEM, profile=found)
        db.session.commit()
        return request.id


def row(app: Any, model: Any, key: Any) -> Any:
    """A row as stored now (detached), or None."""
    from idp.extensions import db

    with app.app_context():
        obj = db.session.get(model, key)
        if obj is not None:
            db.session.expunge(obj)
        return obj


def grant_keys(app: Any, user_id: uuid.UUID, structure_id: uuid.UUID) -> set[str] | None:
    """The "app:role" keys a user holds in a structure, None when not a member."""
    from idp.core.memberships import membership_of
    from idp.extensions import db

    with app.app_context():
        membership = membership_of(db.session, user_id, structure_id)
        return None if membership is None else {g.role.key for g in membership.grants}


def new_email() -> str:
    return unique_email("admin-test")
