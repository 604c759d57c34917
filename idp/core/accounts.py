"""Usager accounts: creation, verification, login, lockout, reset (SPEC §4.1)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.core.audit import audit
from idp.core.errors import InvalidInput
from idp.core.passwords import Hasher
from idp.core.security import Origin
from idp.models import AccountState, Civility, User, utcnow


def normalize_email(email: str) -> str:
    return email.strip().lower()


def find_user(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == normalize_email(email)))


def create_user(
    session: Session,
    hasher: Hasher,
    origin: Origin,
    *,
    email: str,
    password: str | None,
    given_name: str,
    family_name: str,
    civility: Civility | None = None,
    verified: bool = False,
    is_admin: bool = False,
) -> User:
    """Create an account; `pending` until its e-mail is verified unless `verified`.

    :raises InvalidInput: when the login e-mail is already taken.
    """
    email = normalize_email(email)
    if find_user(session, email) is not None:
        raise InvalidInput("email_taken")
    now = utcnow()
    user = User(
        email=email,
        password_hash=hasher.hash(password) if password else None,
        given_name=given_name.strip(),
        family_name=family_name.strip(),
        civility=civility,
        is_admin=is_admin,
        state=AccountState.ACTIVE if verified else AccountState.PENDING,
        email_verified_at=now if verified else None,
        password_changed_at=now if password else None,
    )
    session.add(user)
    session.flush()
    audit(session, "account.created", origin, actor=user.id, subject=user.id, verified=verified)
    return user
