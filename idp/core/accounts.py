"""Usager accounts: creation, verification, login, lockout, reset, states (SPEC §4.1).

Every function takes explicit arguments, flushes but never commits, and knows nothing of Flask.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from idp.core.audit import audit
from idp.core.errors import Conflict, InvalidInput, NotFound
from idp.core.locking import claim
from idp.core.passwords import Hasher, password_problems
from idp.core.security import Origin, constant_time_equal, random_token, sha256_hex
from idp.core.signals import announce_account_closed, announce_sessions_ended
from idp.models import (
    AccountState,
    Civility,
    LoginSession,
    RecoveryCode,
    User,
    utcnow,
)


def normalize_email(email: str) -> str:
    return email.strip().lower()


def find_user(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == normalize_email(email)))


def get_user(session: Session, user_id: str | uuid.UUID) -> User | None:
    """The user with this id (as found in a signed link), or None when malformed or unknown."""
    try:
        uid = user_id if isinstance(user_id, uuid.UUID) else uuid.UUID(str(user_id))
    except ValueError:
        return None
    return session.get(User, uid)


def check_password_policy(password: str, *, personal: list[str], portal_name: str) -> None:
    """:raises InvalidInput: ``weak_password`` with ``problems`` (keys of password_problems)."""
    problems = password_problems(password, personal=[p for p in personal if p], portal_name=portal_name)
    if problems:
        raise InvalidInput("weak_password", problems=problems)


def _personal(user: User) -> list[str]:
    return [user.given_name, user.family_name, user.email, user.contact_email or ""]


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


@dataclass(frozen=True)
class SignupResult:
    """`created` False means the e-mail was taken: `user` is the existing account (tell no one)."""

    user: User
    created: bool
    # The same sign-up sent twice at once: the twin request created the account a moment ago.
    duplicate: bool = False


def signup(
    session: Session,
    hasher: Hasher,
    origin: Origin,
    *,
    email: str,
    password: str,
    given_name: str,
    family_name: str,
    civility: Civility | None,
    portal_name: str,
) -> SignupResult:
    """Self sign-up (SPEC §4.1): a pending account, or the existing one when the e-mail is taken.

    The caller answers both cases identically; the password is hashed in both for similar timing.

    :raises InvalidInput: ``weak_password`` with ``problems``.
    """
    check_password_policy(password, personal=[given_name, family_name, email], portal_name=portal_name)
    existing = find_user(session, email)
    if existing is not None:
        hasher.hash(password)  # same work as a real sign-up
        audit(session, "account.signup_existing", origin, subject=existing.id)
        return SignupResult(existing, created=False)
    try:
        with session.begin_nested():
            user = create_user(
                session, hasher, origin, email=email, password=password, given_name=given_name,
                family_name=family_name, civility=civility,
            )
    except (IntegrityError, InvalidInput):
        # A double submission: the twin request created the account after our look-up (create_user
        # sees it, or the unique e-mail refuses our INSERT once PostgreSQL made it wait for the twin's
        # commit). Same outcome as the twin's; the savepoint keeps our transaction usable.
        twin = find_user(session, email)
        if twin is None:
            raise
        return SignupResult(twin, created=False, duplicate=True)
    return SignupResult(user, created=True)


def verify_email(session: Session, origin: Origin, user_id: str, email: str) -> User:
    """Follow a verification link: a pending account becomes active.

    :raises NotFound: when the account is gone or its login e-mail changed since the link.
    """
    user = get_user(session, user_id)
    if user is None or user.email != email or user.state == AccountState.DELETED:
        raise NotFound("account")
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
    if user.state == AccountState.PENDING:
        user.state = AccountState.ACTIVE
        audit(session, "account.verified", origin, actor=user.id, subject=user.id)
    session.flush()
    return user


def pending_user(session: Session, email: str) -> User | None:
    """The account to send a new verification link to, if the e-mail belongs to a pending one."""
    user = find_user(session, email)
    return user if user is not None and user.state == AccountState.PENDING else None


# ------------------------------------------------------------------ login and lockout

def close_access(session: Session, user_id: uuid.UUID) -> None:
    """The account stops being usable (blocked, deactivated, deleted, password reset): every IdP
    session of it ends, and `signals.account_closed` lets the subscribers end the rest (refresh
    tokens, relying parties' sessions)."""
    session.execute(
        update(LoginSession)
        .where(LoginSession.user_id == user_id, LoginSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    announce_account_closed(session, user_id)


class LoginFailed(Exception):
    """The login is refused. `reason` is for the audit trail; only `password_ok` failures may be
    explained to the person (they proved they know the password)."""

    def __init__(self, reason: str, user: User | None = None, *, password_ok: bool = False,
                 just_blocked: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.user = user
        self.password_ok = password_ok
        self.just_blocked = just_blocked


def authenticate(
    session: Session, hasher: Hasher, origin: Origin, *, email: str, password: str, max_failed: int
) -> User:
    """Check a login e-mail and password (SPEC §4.1); the account must be active.

    A wrong password counts towards the lockout with an atomic increment (concurrent failures
    are all counted); the `max_failed`-th consecutive one blocks the account. A right one
    resets the counter and rehashes when the argon2 parameters changed.

    :raises LoginFailed: reasons ``unknown_email``, ``bad_password`` (``just_blocked`` when it
        blocked the account), and with ``password_ok``: ``pending``, ``blocked``, ``deactivated``.
    """
    user = find_user(session, email) if email.strip() else None
    if user is not None and user.state == AccountState.DELETED:
        user = None
    ok = hasher.verify(user.password_hash if user else None, password)
    if user is None:
        audit(session, "login.failure", origin, reason="unknown_email")
        raise LoginFailed("unknown_email")
    if not ok:
        just_blocked = _count_failure(session, origin, user, max_failed)
        audit(session, "login.failure", origin, subject=user.id, reason="bad_password")
        raise LoginFailed("bad_password", user, just_blocked=just_blocked)
    if user.state != AccountState.ACTIVE:
        reason = str(user.state)
        audit(session, "login.failure", origin, subject=user.id, reason=reason)
        raise LoginFailed(reason, user, password_ok=True)
    if user.failed_logins:
        session.execute(update(User).where(User.id == user.id).values(failed_logins=0))
        user.failed_logins = 0
    if user.password_hash and hasher.needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
    session.flush()
    return user


def _count_failure(session: Session, origin: Origin, user: User, max_failed: int) -> bool:
    """One more consecutive failure, counted in SQL; returns True when this one blocked the account."""
    count = session.execute(
        update(User).where(User.id == user.id)
        .values(failed_logins=User.failed_logins + 1)
        .returning(User.failed_logins)
    ).scalar_one()
    if count < max_failed:
        return False
    # Only one of several concurrent failures flips the state (and sends the mail).
    flipped = session.execute(
        update(User).where(User.id == user.id, User.state == AccountState.ACTIVE)
        .values(state=AccountState.BLOCKED)
    ).rowcount
    session.refresh(user)
    if flipped != 1:
        return False
    audit(session, "account.blocked", origin, subject=user.id, reason="failed_logins", count=count)
    close_access(session, user.id)
    return True


def unblock(session: Session, user: User, actor: User | None, origin: Origin) -> User:
    """Unblock an account (platform admin, structure admin, or the user through a reset).

    :raises Conflict: when the account is not blocked.
    """
    if user.state != AccountState.BLOCKED:
        raise Conflict("not_blocked")
    user.state = AccountState.ACTIVE
    user.failed_logins = 0
    audit(session, "account.unblocked", origin, actor=actor.id if actor else user.id, subject=user.id)
    session.flush()
    return user


def block(session: Session, user: User, actor: User | None, origin: Origin) -> User:
    """An admin's decision to block an account; its sessions and tokens end.

    :raises Conflict: when the account is not active.
    """
    if user.state != AccountState.ACTIVE:
        raise Conflict("not_active")
    user.state = AccountState.BLOCKED
    audit(session, "account.blocked", origin, actor=actor.id if actor else None, subject=user.id,
          reason="admin")
    close_access(session, user.id)
    session.flush()
    return user


def deactivate(session: Session, user: User, actor: User | None, origin: Origin) -> User:
    """Put an account to sleep ("mis en sommeil"): no login, data kept, reactivable.

    :raises Conflict: when the account is deleted or already deactivated.
    """
    if user.state in (AccountState.DELETED, AccountState.DEACTIVATED):
        raise Conflict("not_deactivatable")
    previous = user.state
    user.state = AccountState.DEACTIVATED
    audit(session, "account.deactivated", origin, actor=actor.id if actor else None, subject=user.id,
          previous=str(previous))
    close_access(session, user.id)
    session.flush()
    return user


def reactivate(session: Session, user: User, actor: User | None, origin: Origin) -> User:
    """Wake a deactivated account; it comes back active (or pending if never verified).

    :raises Conflict: when the account is not deactivated.
    """
    if user.state != AccountState.DEACTIVATED:
        raise Conflict("not_deactivated")
    user.state = AccountState.ACTIVE if user.email_verified_at else AccountState.PENDING
    user.failed_logins = 0
    audit(session, "account.reactivated", origin, actor=actor.id if actor else None, subject=user.id)
    session.flush()
    return user


def delete_account(session: Session, user: User, actor: User | None, origin: Origin) -> User:
    """Erase an account's personal data; the row stays (pseudonymised) so the audit trail holds.

    :raises Conflict: when already deleted.
    """
    if user.state == AccountState.DELETED:
        raise Conflict("already_deleted")
    close_access(session, user.id)
    user.email = f"deleted-{user.id}@invalid"
    user.contact_email = None
    user.password_hash = None
    user.civility = None
    user.given_name = ""
    user.family_name = ""
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    user.state = AccountState.DELETED
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    audit(session, "account.deleted", origin, actor=actor.id if actor else None, subject=user.id)
    session.flush()
    return user


# ------------------------------------------------------------------ forgotten password

def reset_fingerprint(user: User) -> str:
    """Changes whenever the password does (a reset link signed with it works only once), and with
    every new link (`new_reset_fingerprint`): only the latest link works."""
    changed = user.password_changed_at.isoformat() if user.password_changed_at else ""
    return sha256_hex(f"{user.id}|{user.password_hash or ''}|{changed}|{user.reset_nonce or ''}")[:32]


def new_reset_fingerprint(user: User) -> str:
    """The fingerprint for a new reset link; every link sent before it stops working (issue 15
    finding 10: an older link found in a mailbox must not outlive a newer one)."""
    user.reset_nonce = random_token(12)
    return reset_fingerprint(user)


def request_password_reset(session: Session, origin: Origin, email: str) -> User | None:
    """The account a reset link should be mailed to, if any (the caller answers the same anyway).

    Deactivated and deleted accounts get none: a reset is not a way out of an admin's decision.
    """
    user = find_user(session, email)
    if user is None or user.state in (AccountState.DEACTIVATED, AccountState.DELETED):
        audit(session, "password.reset_requested", origin, found=False)
        return None
    audit(session, "password.reset_requested", origin, subject=user.id, found=True)
    return user


def user_for_reset(session: Session, user_id: str, fingerprint: str) -> User:
    """The account of a reset link, while the link is still unused.

    :raises NotFound: when the account is gone, or the password changed since (link used).
    """
    user = get_user(session, user_id)
    if (
        user is None
        or user.state in (AccountState.DEACTIVATED, AccountState.DELETED)
        or not constant_time_equal(reset_fingerprint(user), fingerprint)
    ):
        raise NotFound("reset_link")
    return user


def _set_password(user: User, hasher: Hasher, password: str) -> None:
    user.password_hash = hasher.hash(password)
    user.password_changed_at = utcnow()
    user.managed = False


def reset_password(
    session: Session, hasher: Hasher, origin: Origin, user: User, password: str, *, portal_name: str
) -> User:
    """Set a new password from a reset link: unblocks, activates a pending account (the e-mail is
    proven), and ends every session and refresh token of the account.

    :raises InvalidInput: ``weak_password`` with ``problems``.
    """
    check_password_policy(password, personal=_personal(user), portal_name=portal_name)
    _set_password(user, hasher, password)
    user.failed_logins = 0
    if user.state == AccountState.BLOCKED:
        user.state = AccountState.ACTIVE
        audit(session, "account.unblocked", origin, actor=user.id, subject=user.id, via="reset")
    if user.state == AccountState.PENDING:
        user.state = AccountState.ACTIVE
        audit(session, "account.verified", origin, actor=user.id, subject=user.id, via="reset")
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
    close_access(session, user.id)
    audit(session, "password.reset", origin, actor=user.id, subject=user.id)
    session.flush()
    return user


# ------------------------------------------------------------------ my account

def change_password(
    session: Session,
    hasher: Hasher,
    origin: Origin,
    user: User,
    *,
    current: str,
    new: str,
    portal_name: str,
    keep_session: str | None,
) -> User:
    """Change one's password; every other session of the account ends.

    :raises InvalidInput: ``bad_password`` (current one wrong) or ``weak_password``.
    """
    if not hasher.verify(user.password_hash, current):
        raise InvalidInput("bad_password")
    check_password_policy(new, personal=_personal(user), portal_name=portal_name)
    _set_password(user, hasher, new)
    revoke_other_sessions(session, origin, user, keep_session)
    audit(session, "password.changed", origin, actor=user.id, subject=user.id)
    session.flush()
    return user


def update_profile(
    session: Session,
    origin: Origin,
    user: User,
    *,
    version: int,
    civility: Civility | None,
    given_name: str,
    family_name: str,
) -> User:
    """Edit one's name and civility.

    :raises Conflict: when the account changed since the form was loaded (stale `version`).
    """
    claim(session, user, version)
    user.civility, user.given_name, user.family_name = civility, given_name.strip(), family_name.strip()
    session.flush()  # the members pages' copies of the name follow (models.structures listeners)
    audit(session, "account.updated", origin, actor=user.id, subject=user.id)
    return user


def change_contact_email(session: Session, origin: Origin, user: User, email: str) -> User:
    """Set the contact e-mail (proven by a link); the login e-mail never changes (SPEC §4.1)."""
    user.contact_email = normalize_email(email)
    audit(session, "email.contact_changed", origin, actor=user.id, subject=user.id)
    session.flush()
    return user


# ------------------------------------------------------------------ sessions

def active_sessions(session: Session, user: User, now: datetime, idle_limit: datetime) -> list[LoginSession]:
    """The account's login sessions neither revoked, expired nor idle since `idle_limit`."""
    return list(session.scalars(
        select(LoginSession)
        .where(LoginSession.user_id == user.id, LoginSession.revoked_at.is_(None),
               LoginSession.expires_at > now, LoginSession.last_seen_at > idle_limit)
        .order_by(LoginSession.last_seen_at.desc())
    ))


def end_sessions(session: Session, logins: list[LoginSession]) -> None:
    """Revoke these login sessions; `signals.sessions_ended` lets the subscribers end what they opened."""
    now = utcnow()
    for login in logins:
        login.revoked_at = now
    announce_sessions_ended(session, logins)


def revoke_session(session: Session, origin: Origin, user: User, session_id: str) -> LoginSession:
    """End one of the account's own sessions.

    :raises NotFound: when it is not one of this account's live sessions.
    """
    login = session.get(LoginSession, session_id)
    if login is None or login.user_id != user.id or login.revoked_at is not None:
        raise NotFound("session")
    end_sessions(session, [login])
    audit(session, "session.revoked", origin, actor=user.id, subject=user.id, sid_hash=sha256_hex(login.id)[:12])
    return login


def revoke_other_sessions(session: Session, origin: Origin, user: User, keep: str | None) -> int:
    """End every live session of the account except `keep` (this browser's)."""
    logins = list(session.scalars(
        select(LoginSession).where(LoginSession.user_id == user.id, LoginSession.revoked_at.is_(None),
                                   LoginSession.id != (keep or ""))
    ))
    end_sessions(session, logins)
    if logins:
        audit(session, "session.revoked", origin, actor=user.id, subject=user.id, count=len(logins))
    return len(logins)

