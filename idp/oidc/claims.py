"""Claims by scope (SPEC §5.1, §5.2): the one place that decides what a client learns about a user."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, literal_column, null, or_, select, union_all
from sqlalchemy.orm import Session

from idp.models import (
    AccessGrant,
    AppRole,
    Civility,
    Client,
    LoginSession,
    Membership,
    MembershipRole,
    MembershipStatus,
    Structure,
    User,
    utcnow,
)
from idp.models.legacy import LegacyLink, counted_links

_GENDER = {Civility.MADAME: "female", Civility.MONSIEUR: "male"}

SCOPES_SUPPORTED = ["openid", "profile", "email", "structures"]
CLAIMS_SUPPORTED = [
    "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "azp", "at_hash",
    "name", "given_name", "family_name", "gender", "updated_at", "email", "email_verified",
    "structure", "roles", "structures", "legacy_ids",
]


# "The current structure is not known yet": the claims query reads it from the session row.
UNKNOWN: Any = object()


class ClaimsCache:
    """Structure claims kept by each worker, per (user, application, current structure, remembered
    structure, stamp), where the stamp is the account's `updated_at` as read on this very request.

    Any change that can alter someone's structure claims (a membership, a grant, a structure, a
    role, a legacy link, a join request) sets that account's `updated_at` in the same transaction
    (`idp.oidc.freshness`), so once it commits the next request of any worker reads a new stamp and
    misses: a cached answer never outlives a revocation. A grant that ends by itself (`ends_at`)
    bounds its entry's life. Entries are shared, read-only dicts."""

    def __init__(self, max_entries: int = 50_000, max_age: float = 600.0) -> None:
        self.max_entries, self.max_age = max_entries, max_age
        self._entries: dict[tuple[Any, ...], tuple[float, datetime | None, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...], now: datetime) -> dict[str, Any] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        born, until, value = entry
        if time.monotonic() - born > self.max_age or (until is not None and until <= now):
            self._entries.pop(key, None)
            return None
        return value

    def put(self, key: tuple[Any, ...], value: dict[str, Any], until: datetime | None) -> None:
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()  # rare and cheap: the next requests refill it
            self._entries[key] = (time.monotonic(), until, value)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def user_claims(session: Session, user: User, scopes: set[str], client: Client, sid: str | None,
                current: Any = UNKNOWN, cache: ClaimsCache | None = None) -> dict[str, Any]:
    """The user's claims for these scopes; `sub` always (the stable account UUID).

    `current`: the session's current structure when the caller read it with the user (userinfo);
    then the structure claims may come from `cache`."""
    claims: dict[str, Any] = {"sub": str(user.id)}
    if "profile" in scopes:
        claims.update(
            name=user.name,
            given_name=user.given_name,
            family_name=user.family_name,
            updated_at=int(user.updated_at.timestamp()),
        )
        if user.civility in _GENDER:
            claims["gender"] = _GENDER[user.civility]
    if "email" in scopes:
        claims.update(email=user.email, email_verified=user.email_verified_at is not None)
    if "structures" in scopes:
        if cache is None or current is UNKNOWN:
            claims.update(structure_claims(session, user, client.app, sid))
            return claims
        now = utcnow()
        key = (user.id, client.app, current, user.last_structure_id, user.updated_at)
        found = cache.get(key, now)
        if found is None:
            found, until = _structure_claims(session, user, client.app, sid, current, now)
            cache.put(key, found, until)
        claims.update(found)
    return claims


# Built once: the claims sit on the token and userinfo paths (bound parameters, cached compilation).
# One statement, one round trip: the user's active memberships with this application's roles
# (kind 'm'), then their counted legacy links (kind 'l', `legacy_id` in the `role` column).
_CURRENT = select(LoginSession.current_structure_id).where(LoginSession.id == bindparam("sid")).scalar_subquery()


def _claims_query(current: Any) -> Any:
    membership_rows = (
        select(literal_column("'m'").label("kind"), Structure.id.label("structure_id"), Structure.siret.label("siret"),
               Structure.name.label("name"), Membership.role.label("membership"), AppRole.id.label("role_id"),
               AppRole.name.label("role"), (Structure.id == current).label("current"),
               AccessGrant.ends_at.label("ends_at"))
        .select_from(Membership)
        .join(Structure, Structure.id == Membership.structure_id)
        .outerjoin(AccessGrant, and_(AccessGrant.membership_id == Membership.id,
                                     or_(AccessGrant.ends_at.is_(None), AccessGrant.ends_at > bindparam("now"))))
        .outerjoin(AppRole, and_(AppRole.id == AccessGrant.role_id, AppRole.app == bindparam("app")))
        .where(Membership.user_id == bindparam("user_id"), Membership.status == MembershipStatus.ACTIVE)
    )
    legacy_rows = counted_links(bindparam("user_id")).with_only_columns(
        literal_column("'l'"), LegacyLink.structure_id, null(), null(), null(), null(), LegacyLink.legacy_id, null(),
        null())
    return union_all(membership_rows, legacy_rows).order_by(
        *(literal_column(name) for name in ("kind", "name", "role_id", "role")))


# The current structure from the login session (token paths), or as a parameter (userinfo, which
# read it with the user).
_CLAIMS_QUERY = _claims_query(_CURRENT)
_CLAIMS_QUERY_CURRENT = _claims_query(bindparam("current"))


def structure_claims(session: Session, user: User, app: str | None, sid: str | None) -> dict[str, Any]:
    """`structure`, `roles`, `structures`, `legacy_ids` for one application (SPEC §5.2).

    Data minimisation: only `app`'s roles, and only structures where the user holds one of them;
    the current structure is the IdP session's ("casquette"), shown even without a role so the
    application can say why access is refused. One indexed query, whatever the database size.
    """
    return _structure_claims(session, user, app, sid, UNKNOWN, utcnow())[0]


def _structure_claims(session: Session, user: User, app: str | None, sid: str | None, current: Any,
                      now: datetime) -> tuple[dict[str, Any], datetime | None]:
    """The structure claims, and until when they hold without any change (the first grant end)."""
    if current is UNKNOWN:
        rows = session.execute(_CLAIMS_QUERY, {"user_id": user.id, "app": app, "sid": sid, "now": now}).all()
    else:
        rows = session.execute(_CLAIMS_QUERY_CURRENT, {"user_id": user.id, "app": app, "current": current,
                                                       "now": now}).all()
    by_structure: dict[uuid.UUID, dict[str, Any]] = {}
    legacy: dict[uuid.UUID, list[str]] = {}
    current_id = None
    until: datetime | None = None
    for kind, structure_id, siret, name, role, _role_id, role_name, is_current, ends_at in rows:
        if kind == "l":
            legacy.setdefault(structure_id, []).append(role_name)
            continue
        entry = by_structure.setdefault(structure_id, {
            "id": str(structure_id), "siret": siret, "name": name, "roles": [],
            "admin": role == MembershipRole.ADMIN,
        })
        if role_name:
            if role_name not in entry["roles"]:
                entry["roles"].append(role_name)
            if ends_at is not None and (until is None or ends_at < until):
                until = ends_at  # the claims change by themselves then
        if is_current:
            current_id = structure_id
    if current_id is None:  # no session (or its structure was left): the remembered or the only one
        if user.last_structure_id in by_structure:
            current_id = user.last_structure_id
        elif len(by_structure) == 1:
            current_id = next(iter(by_structure))
    chosen = by_structure.get(current_id) if current_id else None
    return {
        "structure": {k: chosen[k] for k in ("id", "siret", "name", "admin")} if chosen else None,
        "roles": list(chosen["roles"]) if chosen else [],
        "structures": [{k: s[k] for k in ("id", "siret", "name", "roles")}
                       for s in by_structure.values() if s["roles"]],
        "legacy_ids": legacy.get(current_id, []) if chosen else [],
    }, until
