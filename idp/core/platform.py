"""What only platform administrators do (SPEC §4.3 last paragraph): structures' identity and
entitlements, the application catalogue and profiles, OIDC clients' secrets and URIs, users'
admin flag and erasure, signing-key rotation.

Like the rest of `core/`: explicit arguments, flush never commit, domain errors, one audit()
per change. Every function here assumes the caller checked that `actor` is a platform admin.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.orm import Session

from idp.core import accounts
from idp.core.accounts import normalize_email
from idp.core.audit import audit
from idp.core.errors import Conflict, InvalidInput, NotAllowed, NotFound
from idp.core.memberships import grant_admin_by_email, keep_an_admin, moderation_queue
from idp.core.security import Origin, random_token
from idp.core.signals import announce_access_lost
from idp.core.structures import find_by_siret, update_structure
from idp.models import (
    AccessGrant,
    AccountState,
    Application,
    AppRole,
    Client,
    Entitlement,
    JoinRequest,
    JoinStatus,
    Membership,
    Profile,
    SigningKey,
    Structure,
    StructureKind,
    User,
    utcnow,
)
from idp.models.oauth import secret_digest

# Scopes a client may be given: the OIDC ones (claims.SCOPES_SUPPORTED) and the service API's (§4.8).
KNOWN_SCOPES = ["openid", "profile", "email", "structures", "structures:read", "structures:write", "members:read",
                "catalogue:write", "repernet:read"]
GRANT_TYPES = ["authorization_code", "refresh_token", "client_credentials"]
ROLE_NAME = re.compile(r"^[a-z][a-z0-9_-]{1,39}$")


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


# ------------------------------------------------------------------ dashboard

def dashboard_counts(session: Session) -> dict[str, Any]:
    """Users by state, structures, the moderation queue and clients, for the console's home."""
    by_state = dict(session.execute(select(User.state, func.count()).group_by(User.state)).all())
    return {
        "users": {state: by_state.get(state, 0) for state in AccountState},
        "users_total": sum(by_state.values()),
        "admins": session.scalar(select(func.count()).select_from(User).where(User.is_admin)) or 0,
        "structures": session.scalar(select(func.count()).select_from(Structure)) or 0,
        "moderation": len(moderation_queue(session)),
        "clients": session.scalar(select(func.count()).select_from(Client)) or 0,
    }


# ------------------------------------------------------------------ structures

def structures_query(text: str = "") -> Select[tuple[Structure]]:
    """Every structure (searchable or not) whose name, city or SIRET contains each word, by name."""
    query = select(Structure).order_by(Structure.name, Structure.siret)
    for word in text.lower().split()[:5]:
        digits = word.replace(" ", "")
        query = query.where(or_(Structure.search_text.like(_like(word), escape="\\"),
                                Structure.siret.startswith(digits, autoescape=True)))
    return query


@dataclass
class StructureEdit:
    name: str
    kind: StructureKind
    city: str = ""
    postal_code: str = ""
    code: str | None = None
    admin_email: str | None = None
    searchable: bool = True
    siege_siret: str | None = None  # empty: the structure is a siège


def edit_structure(session: Session, structure: Structure, data: StructureEdit, origin: Origin, *,
                   actor: uuid.UUID, expected_version: int) -> Structure:
    """Change a structure's identity (through `structures.update_structure`: the same rules as the
    API's); a new account admin's e-mail that names an active usager makes them admin at once.

    :raises InvalidInput: a bad siège, or a siège with établissements made an établissement.
    :raises Conflict: the structure changed since `expected_version`.
    """
    previous_email = structure.admin_email
    update_structure(session, structure, origin, actor=actor, name=data.name, city=data.city,
                     postal_code=data.postal_code, admin_email=data.admin_email or "", searchable=data.searchable,
                     kind=data.kind, code=data.code or "", siege_siret=data.siege_siret or "",
                     expected_version=expected_version)
    session.flush()
    if structure.admin_email != previous_email:
        apply_admin_email(session, structure, origin)
    return structure


def apply_admin_email(session: Session, structure: Structure, origin: Origin) -> Membership | None:
    """SPEC §4.2: when the account admin's e-mail names an existing active usager, they become
    admin of the structure at once (with every entitled role), without a join request."""
    if not structure.admin_email:
        return None
    user = accounts.find_user(session, structure.admin_email)
    return grant_admin_by_email(session, user, structure, origin) if user is not None else None


def members_query(structure_id: uuid.UUID) -> Select[tuple[Membership]]:
    return (select(Membership).join(User).where(Membership.structure_id == structure_id)
            .order_by(Membership.role, User.family_name, User.given_name, User.email))


def all_roles(session: Session) -> list[AppRole]:
    return list(session.scalars(select(AppRole).order_by(AppRole.app, AppRole.id)))


def entitled_ids(session: Session, structure_id: uuid.UUID) -> set[int]:
    return set(session.scalars(select(Entitlement.role_id).where(Entitlement.structure_id == structure_id)))


def grants_of_roles(session: Session, structure_id: uuid.UUID, role_ids: Iterable[int]) -> list[AccessGrant]:
    """The members' grants of these roles in the structure (what removing the entitlements takes away)."""
    ids = set(role_ids)
    if not ids:
        return []
    return list(session.scalars(select(AccessGrant).join(Membership).where(
        Membership.structure_id == structure_id, AccessGrant.role_id.in_(ids))))


def set_entitlements(session: Session, structure: Structure, role_ids: Iterable[int], origin: Origin, *,
                     actor: uuid.UUID) -> tuple[set[int], set[int], int]:
    """Replace the roles a structure may hold; a removed role is also taken from every member there
    (announced: their refresh tokens stop and the applications log them out, SPEC §5.3).

    :returns: (added role ids, removed role ids, number of members' grants removed).
    :raises InvalidInput: an unknown role id.
    """
    wanted = set(role_ids)
    known = set(session.scalars(select(AppRole.id)))
    if wanted - known:
        raise InvalidInput("Rôle inconnu.")
    current = entitled_ids(session, structure.id)
    added, removed = wanted - current, current - wanted
    grants = grants_of_roles(session, structure.id, removed)
    for grant in grants:
        session.delete(grant)
    for entitlement in session.scalars(select(Entitlement).where(
            Entitlement.structure_id == structure.id, Entitlement.role_id.in_(removed))):
        session.delete(entitlement)
    for role_id in added:
        session.add(Entitlement(structure_id=structure.id, role_id=role_id))
    announce_access_lost(session, grants)  # reads the grants' holders and applications, then flushes
    session.flush()
    if added or removed:
        audit(session, "structure.entitlements_changed", origin, actor=actor, structure=structure.id,
              added=sorted(added), removed=sorted(removed), grants_removed=len(grants))
    return added, removed, len(grants)


# ------------------------------------------------------------------ applications, roles, profiles

def applications(session: Session) -> list[Application]:
    return list(session.scalars(select(Application).order_by(Application.name)))


def get_application(session: Session, name: str) -> Application:
    app = session.get(Application, name)
    if app is None:
        raise NotFound("application")
    return app


def update_application(session: Session, app: Application, origin: Origin, *, actor: uuid.UUID, label: str,
                       url: str | None, description: str, role_labels: Mapping[int, str]) -> None:
    """Edit an application's label, address and description, and its roles' labels.

    :raises InvalidInput: an empty label or a URL that is not http(s).
    """
    if not label.strip():
        raise InvalidInput("Le libellé de l'application est obligatoire.")
    if url and urlsplit(url).scheme not in ("http", "https"):
        raise InvalidInput("L'adresse de l'application doit commencer par http:// ou https://.")
    app.label, app.url, app.description = label.strip(), (url or "").strip() or None, description.strip()
    for role in app.roles:
        if role.id in role_labels:
            if not role_labels[role.id].strip():
                raise InvalidInput("Chaque rôle doit avoir un libellé.")
            role.label = role_labels[role.id].strip()
    session.flush()
    audit(session, "application.updated", origin, actor=actor, app=app.name)


def add_role(session: Session, app: Application, origin: Origin, *, actor: uuid.UUID, name: str, label: str,
             region_only: bool = False) -> AppRole:
    """Add a role to an application's catalogue (no structure is entitled to it yet).

    :raises InvalidInput: a malformed or taken name, an empty label.
    """
    name = name.strip().lower()
    if not ROLE_NAME.match(name):
        raise InvalidInput("Le nom technique du rôle : 2 à 40 caractères, minuscules, chiffres, - ou _, "
                           "commençant par une lettre.")
    if not label.strip():
        raise InvalidInput("Le libellé du rôle est obligatoire.")
    if session.scalar(select(AppRole.id).where(AppRole.app == app.name, AppRole.name == name)):
        raise InvalidInput("Cette application a déjà un rôle de ce nom.")
    role = AppRole(app=app.name, name=name, label=label.strip(), region_only=region_only)
    session.add(role)
    session.flush()
    audit(session, "application.role_added", origin, actor=actor, app=app.name, role=name)
    return role


def profiles_query(kind: StructureKind | None = None) -> Select[tuple[Profile]]:
    query = select(Profile).order_by(Profile.kind, Profile.name)
    return query.where(Profile.kind == kind) if kind else query


def get_profile(session: Session, profile_id: int) -> Profile:
    profile = session.get(Profile, profile_id)
    if profile is None:
        raise NotFound("profile")
    return profile


def save_profile(session: Session, profile: Profile | None, origin: Origin, *, actor: uuid.UUID, name: str,
                 kind: StructureKind, description: str, role_ids: Iterable[int]) -> Profile:
    """Create (profile None) or edit a profile: a named bundle of roles offered to a kind of structure.

    :raises InvalidInput: an empty or taken name for that kind, an unknown role.
    """
    name = name.strip()
    if not name:
        raise InvalidInput("Le nom du profil est obligatoire.")
    taken = session.scalar(select(Profile.id).where(Profile.kind == kind, Profile.name == name))
    if taken is not None and (profile is None or taken != profile.id):
        raise InvalidInput("Un profil de ce nom existe déjà pour ce type de structure.")
    ids = set(role_ids)
    roles = list(session.scalars(select(AppRole).where(AppRole.id.in_(ids)))) if ids else []
    if len(roles) != len(ids):
        raise InvalidInput("Rôle inconnu.")
    created = profile is None
    if profile is None:
        profile = Profile(name=name, kind=kind)
        session.add(profile)
    profile.name, profile.kind, profile.description = name, kind, description.strip()
    profile.roles = sorted(roles, key=lambda r: r.id)
    session.flush()
    audit(session, "profile.created" if created else "profile.updated", origin, actor=actor, profile=profile.id,
          name=name, kind=str(kind), roles=sorted(ids))
    return profile


# ------------------------------------------------------------------ OIDC clients

def get_client(session: Session, client_pk: int) -> Client:
    client = session.get(Client, client_pk)
    if client is None:
        raise NotFound("client")
    return client


def check_uris(uris: Iterable[str]) -> list[str]:
    """Absolute http(s) URIs without fragment, each once, in order.

    :raises InvalidInput: naming the first bad one.
    """
    clean: list[str] = []
    for uri in uris:
        uri = uri.strip()
        if not uri:
            continue
        parts = urlsplit(uri)
        if parts.scheme not in ("https", "http") or not parts.netloc or parts.fragment or len(uri) > 500:
            raise InvalidInput(f"Adresse invalide (absolue, http ou https, sans fragment) : {uri}")
        if uri not in clean:
            clean.append(uri)
    return clean


def check_scope(scope: str) -> str:
    """:raises InvalidInput: a scope the portal does not know."""
    words = list(dict.fromkeys(scope.split()))
    unknown = [w for w in words if w not in KNOWN_SCOPES]
    if unknown:
        raise InvalidInput(f"Portée inconnue : {', '.join(unknown)}. Portées possibles : {' '.join(KNOWN_SCOPES)}.")
    return " ".join(words)


def update_client_uris(session: Session, client: Client, origin: Origin, *, actor: uuid.UUID,
                       redirect_uris: list[str], post_logout_redirect_uris: list[str],
                       backchannel_logout_uri: str | None) -> Client:
    """Change where a client may be sent back (exact matching, SPEC §4.7) and its back-channel URI.

    :raises InvalidInput: a bad URI, or no redirect URI left for a client using authorization_code.
    """
    redirect = check_uris(redirect_uris)
    post_logout = check_uris(post_logout_redirect_uris)
    backchannel = check_uris([backchannel_logout_uri or ""])
    if "authorization_code" in client.grant_types and not redirect:
        raise InvalidInput("Ce client utilise le flux authorization_code : il lui faut au moins une adresse de retour.")
    client.redirect_uris, client.post_logout_redirect_uris = redirect, post_logout
    client.backchannel_logout_uri = backchannel[0] if backchannel else None
    session.flush()
    audit(session, "client.updated", origin, actor=actor, client_id=client.client_id)
    return client


def regenerate_secret(session: Session, client: Client, origin: Origin, *, actor: uuid.UUID) -> str:
    """A new client secret replaces the old one at once; returns it in clear (shown once).

    :raises InvalidInput: the client authenticates without a secret (public, private_key_jwt).
    """
    if client.token_endpoint_auth_method in ("none", "private_key_jwt"):
        raise InvalidInput("Ce client n'utilise pas de secret.")
    secret = random_token(32)
    client.secret_digest = secret_digest(secret)
    session.flush()
    audit(session, "client.secret_regenerated", origin, actor=actor, client_id=client.client_id)
    return secret


# ------------------------------------------------------------------ users

def users_query(text: str = "", state: AccountState | None = None) -> Select[tuple[User]]:
    """Accounts whose name or e-mail contains each word, optionally in one state, by name."""
    query = select(User).order_by(User.family_name, User.given_name, User.email)
    for word in text.lower().split()[:5]:
        pattern = _like(word)
        query = query.where(or_(func.lower(User.email).like(pattern, escape="\\"),
                                func.lower(User.given_name).like(pattern, escape="\\"),
                                func.lower(User.family_name).like(pattern, escape="\\")))
    if state is not None:
        query = query.where(User.state == state)
    return query


def clients_query(text: str = "") -> Select[tuple[Client]]:
    """Clients whose name, client_id or application contains each word, by name."""
    query = select(Client).order_by(Client.name, Client.id)
    for word in text.lower().split()[:5]:
        pattern = _like(word)
        query = query.where(or_(func.lower(Client.name).like(pattern, escape="\\"),
                                func.lower(Client.client_id).like(pattern, escape="\\"),
                                func.lower(Client.app).like(pattern, escape="\\")))
    return query


def get_user(session: Session, user_id: uuid.UUID) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("user")
    return user


def user_memberships(session: Session, user_id: uuid.UUID) -> list[Membership]:
    return list(session.scalars(select(Membership).join(Structure).where(Membership.user_id == user_id)
                                .order_by(Structure.name)))


def _active_platform_admins(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User).where(
        User.is_admin, User.state == AccountState.ACTIVE)) or 0


ACCOUNT_ACTIONS = ("block", "unblock", "deactivate", "reactivate", "delete")


def change_account_state(session: Session, user: User, action: str, actor: User, origin: Origin) -> User:
    """Block, unblock, deactivate, reactivate or delete an account (SPEC §4.1) as a platform admin.

    Deleting erases the personal data, detaches the person from every structure (their grants end
    at once for every application) and cancels their pending requests; the audit trail stays. The
    last active admin of a structure is not deleted: another admin is named first (SPEC §4.3).

    :raises NotAllowed: ``self`` — an admin does not lock themselves out; ``last_admin`` with
        ``structures`` — the account is the last active admin of these structures.
    :raises Conflict: the account is not in a state the action applies to.
    """
    if action not in ACCOUNT_ACTIONS:
        raise NotFound("action")
    if user.id == actor.id and action != "unblock":
        raise NotAllowed("self")
    # Blocking and deactivating do not go through keep_an_admin: they are undone (unblock, reactivate)
    # and leave the memberships as they are, admin included. The lockout blocks a last admin too
    # (SPEC §4.1), a platform admin must be able to stop a compromised account at once, and a structure
    # without an active admin meanwhile has its requests moderated by the platform (SPEC §4.2).
    # Deletion takes the memberships away for good: refused for a last admin (SPEC §4.3).
    if action == "block":
        return accounts.block(session, user, actor, origin)
    if action == "unblock":
        return accounts.unblock(session, user, actor, origin)
    if action == "deactivate":
        return accounts.deactivate(session, user, actor, origin)
    if action == "reactivate":
        return accounts.reactivate(session, user, actor, origin)
    if user.state == AccountState.DELETED:
        raise Conflict("already_deleted")
    memberships = user_memberships(session, user.id)
    keep_an_admin(session, memberships)
    for membership in memberships:
        session.delete(membership)
    session.execute(update(JoinRequest).where(JoinRequest.user_id == user.id, JoinRequest.status == JoinStatus.PENDING)
                    .values(status=JoinStatus.CANCELLED, decided_at=utcnow(), decided_by=actor.id))
    user.is_admin = False
    user.last_structure_id = None
    session.flush()
    return accounts.delete_account(session, user, actor, origin)


def set_platform_admin(session: Session, user: User, admin: bool, actor: User, origin: Origin) -> User:
    """Give or take the platform admin flag.

    :raises NotAllowed: ``self`` (nobody removes their own flag), ``last_admin`` (the last active
        platform admin keeps it).
    :raises InvalidInput: ``not_active`` — only an active account becomes admin.
    """
    if user.is_admin == admin:
        return user
    if not admin:
        if user.id == actor.id:
            raise NotAllowed("self")
        if user.state == AccountState.ACTIVE and _active_platform_admins(session) <= 1:
            raise NotAllowed("last_admin")
    elif user.state != AccountState.ACTIVE:
        raise InvalidInput("not_active")
    user.is_admin = admin
    session.flush()
    audit(session, "account.platform_admin_granted" if admin else "account.platform_admin_revoked", origin,
          actor=actor.id, subject=user.id)
    return user


# ------------------------------------------------------------------ signing keys

def signing_keys(session: Session) -> list[SigningKey]:
    return list(session.scalars(select(SigningKey).order_by(SigningKey.published_at.desc(), SigningKey.alg)))


def key_status(key: SigningKey, now: datetime | None = None) -> str:
    """``upcoming`` (published, not signing yet), ``signing``, ``retired`` (still published so tokens
    verify), or ``expired`` (gone from the JWKS)."""
    now = now or utcnow()
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    if key.retired_at is not None and key.retired_at <= now:
        return "retired"
    if key.active_at > now:
        return "upcoming"
    return "signing"


# ------------------------------------------------------------------ audit filters

def person_id(session: Session, email: str) -> uuid.UUID | None:
    user = accounts.find_user(session, normalize_email(email))
    return user.id if user else None


def structure_id_by_siret(session: Session, siret: str) -> uuid.UUID | None:
    digits = "".join(siret.split())
    structure = find_by_siret(session, digits)
    return structure.id if structure else None
