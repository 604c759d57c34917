"""The platform console's operations (issue 16, after Keycloak's and Zitadel's consoles): clients
enabled or not, deleted, their scopes and consents; accounts created, edited, their second factor
and sessions; the mail outbox; the settings and the dashboard's figures. Each operator action is
audited. Like the rest of `core/`: explicit arguments, flush, never commit."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from idp.core import accounts
from idp.core.accounts import create_user, normalize_email
from idp.core.audit import audit
from idp.core.errors import InvalidInput
from idp.core.locking import claim
from idp.core.passwords import Hasher
from idp.core.security import Origin, constant_time_equal, sha256_hex
from idp.models import (
    AuditEvent,
    AuthorizationCode,
    Civility,
    Client,
    ClientSession,
    Consent,
    JoinRequest,
    LoginSession,
    OutboxMail,
    RecoveryCode,
    RefreshToken,
    User,
    utcnow,
)
from shared.timefmt import PARIS

SCOPE = re.compile(r"^[A-Za-z0-9_:.\-]{1,60}$")


# ------------------------------------------------------------------ clients

def set_client_active(session: Session, client: Client, active: bool, origin: Origin, *, actor: uuid.UUID) -> None:
    """Disable a client (its refresh tokens revoked; it can no longer authenticate) or enable it again."""
    if client.active == active:
        return
    client.active = active
    if not active:
        session.execute(update(RefreshToken).where(RefreshToken.client_id == client.client_id,
                                                   RefreshToken.revoked_at.is_(None)).values(revoked_at=utcnow()))
    audit(session, "client.enabled" if active else "client.disabled", origin, actor=actor, client_id=client.client_id)
    session.flush()


def delete_client(session: Session, client: Client, origin: Origin, *, actor: uuid.UUID) -> None:
    """Delete a client with its codes, refresh tokens, consents and the sessions signed in to it
    (no back-channel logout to send it any more); the audit trail keeps its id."""
    client_id = client.client_id
    for model in (AuthorizationCode, RefreshToken, Consent, ClientSession):
        session.execute(delete(model).where(model.client_id == client_id))
    session.delete(client)
    audit(session, "client.deleted", origin, actor=actor, client_id=client_id, name=client.name)
    session.flush()


def set_client_scope(session: Session, client: Client, scope: str, origin: Origin, *, actor: uuid.UUID) -> None:
    """The scopes a client may ask for (space-separated; `openid` for OpenID Connect clients).

    :raises InvalidInput: ``bad_scope`` naming the value refused.
    """
    scopes = list(dict.fromkeys(scope.split()))
    for value in scopes:
        if not SCOPE.match(value):
            raise InvalidInput("bad_scope", value=value[:60])
    if not scopes:
        raise InvalidInput("bad_scope", value="")
    before = client.scope
    client.scope = " ".join(scopes)
    if client.scope != before:
        audit(session, "client.updated", origin, actor=actor, client_id=client.client_id, scope=client.scope,
              previous_scope=before)
    session.flush()


# A client's own token lifetimes (seconds): what the console accepts; NULL keeps the platform's.
LIFETIME_BOUNDS = {
    "access_token_lifetime": (30, 24 * 3600),
    "id_token_lifetime": (30, 24 * 3600),
    "refresh_token_lifetime": (60, 365 * 24 * 3600),
}


def set_client_lifetimes(session: Session, client: Client, lifetimes: dict[str, int | None], origin: Origin, *,
                         actor: uuid.UUID) -> bool:
    """A client's access, ID and refresh token lifetimes in seconds (None: the platform's setting).
    They apply to the tokens issued from now on (the caller keeps the signing keys due to retire
    published for as long: `idp.oidc.keys.extend_retired_keys`). Returns whether anything changed.

    :raises InvalidInput: ``bad_lifetime`` naming the field and its bounds.
    """
    for name, value in lifetimes.items():
        low, high = LIFETIME_BOUNDS[name]
        if value is not None and not low <= value <= high:
            raise InvalidInput("bad_lifetime", field=name, low=low, high=high)
    before = {name: getattr(client, name) for name in LIFETIME_BOUNDS}
    after = {**before, **lifetimes}
    if after == before:
        return False
    for name, value in after.items():
        setattr(client, name, value)
    session.flush()
    audit(session, "client.updated", origin, actor=actor, client_id=client.client_id, lifetimes=after,
          previous_lifetimes=before)
    session.flush()
    return True


def clients_with_own_lifetimes(session: Session) -> list[Client]:
    """The clients whose token lifetimes differ from the platform's (for the settings page)."""
    return list(session.scalars(select(Client).where(
        Client.access_token_lifetime.is_not(None) | Client.id_token_lifetime.is_not(None)
        | Client.refresh_token_lifetime.is_not(None)).order_by(Client.name)))


def consents_of(session: Session, client: Client) -> list[tuple[Consent, User]]:
    return list(session.execute(
        select(Consent, User).join(User, User.id == Consent.user_id)
        .where(Consent.client_id == client.client_id).order_by(Consent.granted_at.desc())).all())  # type: ignore[arg-type]


def revoke_consent(session: Session, client: Client, consent_id: int, origin: Origin, *, actor: uuid.UUID) -> Consent:
    """Withdraw a person's consent to a client: the screen shows again, their refresh tokens end.

    :raises InvalidInput: ``no_consent`` when it is not one of this client's.
    """
    consent = session.get(Consent, consent_id)
    if consent is None or consent.client_id != client.client_id:
        raise InvalidInput("no_consent")
    session.execute(update(RefreshToken).where(RefreshToken.client_id == client.client_id,
                                               RefreshToken.user_id == consent.user_id,
                                               RefreshToken.revoked_at.is_(None)).values(revoked_at=utcnow()))
    session.delete(consent)
    audit(session, "consent.revoked", origin, actor=actor, subject=consent.user_id, client_id=client.client_id)
    session.flush()
    return consent


# ------------------------------------------------------------------ accounts

def create_account(session: Session, hasher: Hasher, origin: Origin, *, actor: uuid.UUID, email: str,
                   given_name: str, family_name: str, civility: Civility | None) -> User:
    """An account made by an operator: pending and managed until its owner sets a password from
    the link mailed to them (the caller sends it).

    :raises InvalidInput: ``email_taken``.
    """
    user = create_user(session, hasher, origin, email=normalize_email(email), password=None, given_name=given_name,
                       family_name=family_name, civility=civility, verified=False)
    user.managed = True
    audit(session, "account.created", origin, actor=actor, subject=user.id, by="console")
    session.flush()
    return user


def edit_account(session: Session, user: User, origin: Origin, *, actor: uuid.UUID, expected_version: int,
                 given_name: str, family_name: str, civility: Civility | None, contact_email: str | None) -> User:
    """Names, civility and contact e-mail (the login e-mail stays, as for the person themselves).

    :raises Conflict: ``stale`` when someone saved the account meanwhile.
    """
    claim(session, user, expected_version)
    changed = []
    for name, value in (("given_name", given_name.strip()), ("family_name", family_name.strip()),
                        ("civility", civility), ("contact_email", (contact_email or "").strip().lower() or None)):
        if getattr(user, name) != value:
            setattr(user, name, value)
            changed.append(name)
    if changed:
        audit(session, "account.updated", origin, actor=actor, subject=user.id, fields=changed, by="console")
    session.flush()
    return user


def reset_second_factor(session: Session, user: User, origin: Origin, *, actor: uuid.UUID) -> None:
    """Remove a lost authenticator and its recovery codes; the person enrols again at next login
    where it is required."""
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    audit(session, "account.totp_reset", origin, actor=actor, subject=user.id)
    session.flush()


def live_sessions(session: Session, user: User) -> list[LoginSession]:
    now = utcnow()
    return list(session.scalars(select(LoginSession).where(
        LoginSession.user_id == user.id, LoginSession.revoked_at.is_(None), LoginSession.expires_at > now)
        .order_by(LoginSession.last_seen_at.desc())))


def session_handle(login: LoginSession) -> str:
    """What names a session on the console's pages: a digest, never its id (the cookie's secret)."""
    return sha256_hex(login.id)[:24]


def end_one_session(session: Session, user: User, handle: str, origin: Origin, *, actor: uuid.UUID) -> None:
    """End one session of an account (refresh tokens revoked, back-channel logout sent).

    :raises InvalidInput: ``no_session`` when no live session of the account has this handle.
    """
    login = next((s for s in live_sessions(session, user) if constant_time_equal(session_handle(s), handle)), None)
    if login is None:
        raise InvalidInput("no_session")
    accounts.end_sessions(session, [login])
    audit(session, "account.sessions_ended", origin, actor=actor, subject=user.id, count=1,
          sid_hash=session_handle(login)[:12])


def end_sessions(session: Session, user: User, origin: Origin, *, actor: uuid.UUID) -> int:
    """End every session of an account (refresh tokens revoked, back-channel logout sent)."""
    logins = live_sessions(session, user)
    accounts.end_sessions(session, logins)
    audit(session, "account.sessions_ended", origin, actor=actor, subject=user.id, count=len(logins))
    return len(logins)


# ------------------------------------------------------------------ mail outbox

MAIL_STATUSES = ("pending", "sending", "sent", "failed")


def outbox(session: Session, status: str | None, limit: int = 100) -> list[OutboxMail]:
    query = select(OutboxMail).order_by(OutboxMail.created_at.desc(), OutboxMail.id.desc()).limit(limit)
    if status in MAIL_STATUSES:
        query = query.where(OutboxMail.status == status)
    return list(session.scalars(query))


def outbox_counts(session: Session) -> dict[str, int]:
    counts = dict(session.execute(select(OutboxMail.status, func.count()).group_by(OutboxMail.status)).all())  # type: ignore[arg-type]
    return {status: counts.get(status, 0) for status in MAIL_STATUSES}


def resend(session: Session, mail: OutboxMail, origin: Origin, *, actor: uuid.UUID) -> None:
    """Queue a mail again, at once, with a fresh count of attempts (a failed one, or a copy of a sent one)."""
    if mail.status == "sending":
        raise InvalidInput("sending")
    if mail.status == "sent":
        mail = OutboxMail(recipient=mail.recipient, subject=mail.subject, text_body=mail.text_body,
                          html_body=mail.html_body)
        session.add(mail)
    else:
        mail.status, mail.attempts, mail.last_error = "pending", 0, None
    mail.next_attempt_at = utcnow()
    session.flush()
    audit(session, "mail.resent", origin, actor=actor, mail=mail.id, recipient=mail.recipient)


# ------------------------------------------------------------------ dashboard

@dataclass(frozen=True)
class Series:
    title: str
    labels: list[str]
    values: list[int]


def per_day(session: Session, event: str, days: int, today: date | None = None) -> tuple[list[str], list[int]]:
    """How many `event` audit records each of the last `days` days (Paris days), oldest first."""
    today = today or utcnow().astimezone(PARIS).date()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, datetime.min.time(), PARIS)
    counts: Counter[date] = Counter()
    for (at,) in session.execute(select(AuditEvent.at).where(AuditEvent.event == event, AuditEvent.at >= since)):
        counts[_paris_day(at)] += 1
    day_list = [first + timedelta(days=i) for i in range(days)]
    return [d.strftime("%d/%m") for d in day_list], [counts[d] for d in day_list]


def _paris_day(value: datetime) -> date:
    from datetime import UTC

    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(PARIS).date()


# (label, lower bound in days) of the pending join requests' ages.
AGE_BUCKETS = (("< 1 j", 0), ("1–3 j", 1), ("3–7 j", 3), ("7–15 j", 7))


def pending_requests_by_age(session: Session) -> tuple[list[str], list[int]]:
    now = utcnow()
    counts = [0] * len(AGE_BUCKETS)
    for (created,) in session.execute(select(JoinRequest.created_at).where(JoinRequest.open_at(now))):
        age = (now - created).total_seconds() / 86400
        index = max(i for i, (_label, low) in enumerate(AGE_BUCKETS) if age >= low)
        counts[index] += 1
    return [label for label, _low in AGE_BUCKETS], counts


def mail_failures_per_day(session: Session, days: int) -> tuple[list[str], list[int]]:
    """Mails given up on (status failed), by the day they were queued."""
    today = utcnow().astimezone(PARIS).date()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, datetime.min.time(), PARIS)
    counts: Counter[date] = Counter()
    for (created,) in session.execute(select(OutboxMail.created_at).where(OutboxMail.status == "failed",
                                                                         OutboxMail.created_at >= since)):
        counts[_paris_day(created)] += 1
    day_list = [first + timedelta(days=i) for i in range(days)]
    return [d.strftime("%d/%m") for d in day_list], [counts[d] for d in day_list]


def N_(text: str) -> str:  # noqa: N802 - gettext's marker: extracted here, translated where shown
    return text


def settings(config: Any, environ: Any, defaults: Any = None) -> list[tuple[str, str, Any, str]]:
    """(group, name, value, source) of the settings an operator asks about; the source is
    "environnement" when IDP_<NAME> is set, "configuration" when the application was built with
    another value than the default (`defaults`, the module idp.config), else "défaut"."""
    rows = [
        (N_("Mots de passe"), "PASSWORD_POLICY", N_("12 caractères de 4 types (CNIL) ou 15 de tout type (NIST), liste de mots de passe courants refusée")),
        (N_("Mots de passe"), "ARGON2_TIME_COST", None), (N_("Mots de passe"), "ARGON2_MEMORY_COST", None),
        (N_("Connexion"), "MAX_FAILED_LOGINS", None), (N_("Connexion"), "TOTP_REQUIRED_FOR_ADMINS", None),
        (N_("Connexion"), "PERMANENT_SESSION_LIFETIME", None), (N_("Connexion"), "LOGIN_SESSION_IDLE", None),
        (N_("Connexion"), "RATELIMIT_LOGIN_IP", None), (N_("Connexion"), "RATELIMIT_LOGIN_ACCOUNT", None),
        (N_("Jetons"), "ACCESS_TOKEN_LIFETIME", None), (N_("Jetons"), "ID_TOKEN_LIFETIME", None),
        (N_("Jetons"), "REFRESH_TOKEN_LIFETIME", None), (N_("Jetons"), "AUTHORIZATION_CODE_LIFETIME", None),
        (N_("Jetons"), "KEY_PUBLISH_BEFORE_USE", None),
        (N_("Liens"), "VERIFY_LINK_MAX_AGE", None), (N_("Liens"), "RESET_LINK_MAX_AGE", None),
        (N_("Courriel"), "SMTP_URL", None), (N_("Courriel"), "MAIL_FROM", None), (N_("Courriel"), "MAIL_MAX_ATTEMPTS", None),
        (N_("Plateforme"), "ISSUER", None), (N_("Plateforme"), "PORTAL_NAME", None), (N_("Plateforme"), "LANGUAGES", None),
    ]
    out = []
    for group, name, fixed in rows:
        value = fixed if fixed is not None else config.get(name)
        if isinstance(value, timedelta):
            value = int(value.total_seconds())  # shown in seconds, as the environment variable takes it
        if name == "SMTP_URL" and value:
            value = re.sub(r"//[^@/]*@", "//***@", str(value))  # never a password on screen
        if f"IDP_{name}" in environ:
            source = "environnement"
        elif fixed is not None:
            source = "code"
        elif defaults is not None and hasattr(defaults, name) and getattr(defaults, name) != config.get(name):
            source = "configuration"
        else:
            source = "défaut"
        out.append((group, name, value, source))
    return out
