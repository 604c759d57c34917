"""The members page stays cheap with 50,000 members in one structure (SPEC §4.3, STYLE §7):
three queries per page, whatever the size (times: bench/SCALE.md)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from manage_helpers import siret
from sqlalchemy import create_engine, event, insert, select
from sqlalchemy.orm import Session

N_MEMBERS = 50_000


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, uuid.UUID]]:
    """A database of its own (not the shared one) with one structure of 50,000 members."""
    from idp.core.catalogue import roles_by_key
    from idp.core.security import SYSTEM
    from idp.core.structures import StructureData, create_structure
    from idp.migrations import upgrade
    from idp.models import AccessGrant, AccountState, Membership, MembershipRole, User, utcnow

    url = f"sqlite:///{tmp_path_factory.mktemp('scale') / 'big.sqlite3'}"
    upgrade(url)
    engine = create_engine(url)
    with Session(engine) as session:
        structure = create_structure(session, StructureData(siret=siret(), name="Très grande structure"), SYSTEM)
        roles = [r.id for r in roles_by_key(session).values()][:3]
        now = utcnow()
        users = [{"id": uuid.uuid4(), "email": f"personne{i:05d}@grande.test", "given_name": f"Prénom{i % 977}",
                  "family_name": f"Nom{i:05d}", "state": AccountState.ACTIVE, "failed_logins": 0, "is_admin": False,
                  "managed": False, "created_at": now, "updated_at": now, "version": 1,
                  "last_login_at": now if i % 3 else None} for i in range(N_MEMBERS)]
        session.execute(insert(User), users)
        session.execute(insert(Membership), [
            {"user_id": u["id"], "structure_id": structure.id, "version": 1, "created_at": now, "updated_at": now,
             "role": MembershipRole.ADMIN if i < 5 else MembershipRole.MEMBER,
             # A bulk insert bypasses the ORM listeners that keep the copies: set them as they would.
             "sort_key": f"{u['family_name'].lower()}\x01{u['given_name'].lower()}\x01{u['email']}",
             "user_email": u["email"], "last_login_at": u["last_login_at"]}
            for i, u in enumerate(users)])
        ids = session.scalars(select(Membership.id).where(Membership.structure_id == structure.id)).all()
        session.execute(insert(AccessGrant), [{"membership_id": m, "role_id": r, "granted_at": now}
                                              for m in ids for r in roles[: 1 + m % 3]])
        session.commit()
        structure_id = structure.id
    yield engine, structure_id
    engine.dispose()


@pytest.mark.parametrize(("text", "sort", "number"), [
    ("", "name", 1), ("", "name", 1500), ("", "email", 2000), ("", "last_login", 3), ("", "role", 1),
    ("nom4", "name", 2), ("personne0999", "email", 1), ("prénom5 nom0", "last_login", 1),
])
def test_members_page_with_50000_members(big: tuple[Any, uuid.UUID], text: str, sort: str, number: int) -> None:
    from idp.core.member_list import members_page

    engine, structure_id = big
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    with Session(engine) as session:
        event.listen(engine, "before_cursor_execute", count)
        try:
            page = members_page(session, structure_id, text=text, sort=sort, number=number)
            rows = [(row.user.email, [g.role.key for g in row.grants]) for row in page.items]  # no lazy loads
        finally:
            event.remove(engine, "before_cursor_execute", count)
    assert page.total > 0 and rows
    assert all(grants for _, grants in rows)
    # Counted, never timed (times are measured in bench/scale, not asserted in tests).
    assert len(statements) == 3, statements


def test_the_sort_key_follows_the_account(app: Any, create_account: Any) -> None:
    """A membership's copies of its account are set on creation and follow a renamed account or a
    changed login e-mail (ORM listeners; the last login: tests/test_manage.py)."""
    from idp.core.memberships import add_member, operator_authority
    from idp.core.security import SYSTEM
    from idp.core.structures import StructureData, create_structure
    from idp.extensions import db
    from idp.models import User

    person = create_account(given_name="Élodie", family_name="Durand")
    with app.app_context():
        structure = create_structure(db.session, StructureData(siret=siret(), name="Clés de tri"), SYSTEM)
        user = db.session.get(User, person.id)
        membership = add_member(db.session, operator_authority(db.session, structure), user, SYSTEM)
        db.session.commit()
        assert membership.sort_key == f"durand\x01élodie\x01{person.email}"
        user.family_name = "Martin"
        db.session.commit()
        db.session.refresh(membership)
        assert membership.sort_key.startswith("martin\x01élodie\x01")
        assert membership.user_email == person.email and membership.last_login_at is None
        user.email = f"renamed-{person.email}"
        db.session.commit()
        db.session.refresh(membership)
        assert membership.user_email == f"renamed-{person.email}" and membership.sort_key.endswith(user.email)


def test_a_login_never_writes_back_a_name_changed_meanwhile(app: Any, create_account: Any) -> None:
    """A login that read the account before a rename only re-copies its last login."""
    from sqlalchemy.orm import Session as OrmSession

    from idp.core.accounts import update_profile
    from idp.core.memberships import add_member, operator_authority
    from idp.core.security import SYSTEM
    from idp.core.structures import StructureData, create_structure
    from idp.extensions import db
    from idp.models import Membership, User, utcnow

    person = create_account(given_name="Inès", family_name="Avant")
    with app.app_context():
        structure = create_structure(db.session, StructureData(siret=siret(), name="Course"), SYSTEM)
        added = add_member(db.session, operator_authority(db.session, structure), db.session.get(User, person.id),
                           SYSTEM)
        db.session.commit()
        engine, added_at = db.engine, added.updated_at
    with OrmSession(engine, expire_on_commit=False) as login, OrmSession(engine) as profile:
        stale = login.get(User, person.id)  # the login request has read the account…
        login.commit()  # (ends its read: SQLite would otherwise hold the write lock)
        fresh = profile.get(User, person.id)
        update_profile(profile, SYSTEM, fresh, version=fresh.version, civility=None, given_name="Inès",
                       family_name="Après")  # …another request renames it…
        profile.commit()
        stale.last_login_at = utcnow()  # …then the login is recorded
        login.commit()
        membership = login.scalar(select(Membership).where(Membership.user_id == person.id))
        assert membership.sort_key.startswith("après\x01inès\x01") and membership.last_login_at is not None
        assert membership.updated_at == added_at  # a copy is not a change of the membership
