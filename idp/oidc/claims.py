"""Claims by scope (SPEC §5.1, §5.2): the one place that decides what a client learns about a user."""

from __future__ import annotations

import uuid
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


def user_claims(session: Session, user: User, scopes: set[str], client: Client, sid: str | None) -> dict[str, Any]:
    """The user's claims for these scopes; `sub` always (the stable account UUID)."""
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
        claims.update(structure_claims(session, user, client.app, sid))
    return claims


# Built once: the claims sit on the token and userinfo paths (bound parameters, cached compilation).
# One statement, one round trip: the user's active memberships with this application's roles
# (kind 'm'), then their counted legacy links (kind 'l', `legacy_id` in the `role` column).
_CURRENT = select(LoginSession.current_structure_id).where(LoginSession.id == bindparam("sid")).scalar_subquery()
_MEMBERSHIP_ROWS = (
    select(literal_column("'m'").label("kind"), Structure.id.label("structure_id"), Structure.siret.label("siret"),
           Structure.name.label("name"), Membership.role.label("membership"), AppRole.id.label("role_id"),
           AppRole.name.label("role"), (Structure.id == _CURRENT).label("current"))
    .select_from(Membership)
    .join(Structure, Structure.id == Membership.structure_id)
    .outerjoin(AccessGrant, and_(AccessGrant.membership_id == Membership.id,
                                 or_(AccessGrant.ends_at.is_(None), AccessGrant.ends_at > bindparam("now"))))
    .outerjoin(AppRole, and_(AppRole.id == AccessGrant.role_id, AppRole.app == bindparam("app")))
    .where(Membership.user_id == bindparam("user_id"), Membership.status == MembershipStatus.ACTIVE)
)
_LEGACY_ROWS = counted_links(bindparam("user_id")).with_only_columns(
    literal_column("'l'"), LegacyLink.structure_id, null(), null(), null(), null(), LegacyLink.legacy_id, null())
_CLAIMS_QUERY = union_all(_MEMBERSHIP_ROWS, _LEGACY_ROWS).order_by(
    *(literal_column(name) for name in ("kind", "name", "role_id", "role")))


def structure_claims(session: Session, user: User, app: str | None, sid: str | None) -> dict[str, Any]:
    """`structure`, `roles`, `structures`, `legacy_ids` for one application (SPEC §5.2).

    Data minimisation: only `app`'s roles, and only structures where the user holds one of them;
    the current structure is the IdP session's ("casquette"), shown even without a role so the
    application can say why access is refused. One indexed query, whatever the database size.
    """
    rows = session.execute(_CLAIMS_QUERY, {"user_id": user.id, "app": app, "sid": sid, "now": utcnow()}).all()
    by_structure: dict[uuid.UUID, dict[str, Any]] = {}
    legacy: dict[uuid.UUID, list[str]] = {}
    current_id = None
    for kind, structure_id, siret, name, role, _role_id, role_name, is_current in rows:
        if kind == "l":
            legacy.setdefault(structure_id, []).append(role_name)
            continue
        entry = by_structure.setdefault(structure_id, {
            "id": str(structure_id), "siret": siret, "name": name, "roles": [],
            "admin": role == MembershipRole.ADMIN,
        })
        if role_name and role_name not in entry["roles"]:
            entry["roles"].append(role_name)
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
    }
