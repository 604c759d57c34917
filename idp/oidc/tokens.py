"""Minting and checking tokens: JWT access tokens (RFC 9068), ID tokens, rotating refresh tokens.

Access and ID tokens are never stored; refresh tokens are stored as SHA-256 digests. Every JWT
carries a random `jti`, so two tokens are never identical, even within one second.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from sqlalchemy import Connection, Row, bindparam, exists, insert, null, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from idp.core.security import Origin, random_token, sha256_hex
from idp.models import (
    AccountState,
    AuditEvent,
    Civility,
    Client,
    LoginSession,
    RefreshToken,
    RevokedAccessToken,
    User,
    utcnow,
)
from idp.oidc.claims import user_claims
from idp.oidc.keys import KeyRing, Verifier, jws_signature
from idp.oidc.prepared import PreparedSelect

SIGNING_ALGORITHMS = ("ES256", "RS256")  # what our keys sign with; nothing else is ever accepted
MAX_TOKEN_LENGTH = 8192  # far above our largest JWT: a bigger one is not ours, and is not parsed
# The grant family (code → refresh tokens) an access token comes from: revoking the family revokes it.
FAMILY_CLAIM = "fid"
ACCESS_TOKEN_ALG = "ES256"  # cheap to sign and verify (~0.1 ms against ~1 ms for RS256)
# Per process. A token and its claims take ~2–4 kB (16 kB at most: MAX_TOKEN_LENGTH), so at most ~2 MB
# as a rule and 8 MB at worst, within the worker RSS budget (bench/README.md).
VERIFIED_TOKENS_KEPT = 512

USERS = User.__table__
REFRESH_TOKENS = RefreshToken.__table__
AUDIT_EVENTS = AuditEvent.__table__
REVOKED_ACCESS_TOKENS = RevokedAccessToken.__table__


class UserView:
    """A user's columns, read with SQLAlchemy Core on the hot paths (token, userinfo): what the
    claims and the token need, and nothing more (each column read costs on every request), without
    ORM loading or identity-map bookkeeping. Read-only."""

    __slots__ = ("id", "email", "given_name", "family_name", "civility", "email_verified_at", "updated_at",
                 "last_structure_id")

    id: uuid.UUID
    email: str
    given_name: str
    family_name: str
    civility: Civility | None
    email_verified_at: datetime | None
    updated_at: datetime
    last_structure_id: uuid.UUID | None

    def __init__(self, values: Any) -> None:
        for key in self.__slots__:
            setattr(self, key, values[key])

    @classmethod
    def from_row(cls, row: Row[Any] | None, prefix: str = "") -> UserView | None:
        return None if row is None else cls.from_mapping(row._mapping, prefix)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None, prefix: str = "") -> UserView | None:
        if mapping is None:
            return None
        if mapping[f"{prefix}id"] is None:  # an outer join found no active user
            return None
        return cls({key: mapping[f"{prefix}{key}"] for key in cls.__slots__})

    @property
    def name(self) -> str:
        return f"{self.given_name} {self.family_name}".strip()


def user_columns(prefix: str = "") -> list[Any]:
    return [USERS.c[key].label(f"{prefix}{key}") for key in UserView.__slots__]


@dataclass(frozen=True)
class Authorization:
    """What tokens are issued for: a client, a scope and, for user grants, the login behind it."""

    client: Client
    scope: str
    user: User | UserView | None = None
    sid: str | None = None
    auth_time: datetime | None = None
    amr: str = ""
    nonce: str | None = None
    family_id: str | None = None

    @property
    def acr(self) -> str:
        return "urn:portail:acr:mfa" if "otp" in self.amr.split() else "urn:portail:acr:pwd"


@dataclass(frozen=True, slots=True)
class _Checked:
    """A JWT whose signature checked out: the key that signed it, and its payload (JSON text, so
    that every use gets claims of its own: nothing mutable is shared between requests)."""

    kid: str
    verifier: Verifier
    payload: bytes

    def claims(self) -> Any:
        return json.loads(self.payload)


class VerifiedTokens:
    """The JWTs this process verified lately, by their exact text (least recently used out).

    A relying party that calls userinfo or an API again with the same access token skips the
    header, the base64, the signature and the claims registry; the payload's JSON is parsed again
    (claims of its own for every use). Userinfo's CPU in process fell by more than half
    (bench/README.md). What can change with time is checked again at every use: the expiry, and the
    signing key still in the key table. The account, the token's revocation and the login session are read from the database
    at every use as before (SPEC §5.3): nothing here answers for them. Only tokens that passed are
    kept, so invalid ones sent in bulk cannot push valid ones out faster than valid ones can."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str], _Checked] = OrderedDict()

    def get(self, typ: str, token: str) -> _Checked | None:
        with self._lock:
            checked = self._entries.get((typ, token))
            if checked is not None:
                self._entries.move_to_end((typ, token))
            return checked

    def put(self, typ: str, token: str, checked: _Checked) -> None:
        with self._lock:
            self._entries[(typ, token)] = checked
            if len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def forget(self, typ: str, token: str) -> None:
        with self._lock:
            self._entries.pop((typ, token), None)


def _half_hash(value: str, alg: str) -> str:
    """at_hash (OIDC Core §3.1.3.6): left half of the hash matching the ID token's alg."""
    digest = hashlib.sha256(value.encode()).digest()  # both RS256 and ES256 use SHA-256
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


class TokenIssuer:
    def __init__(self, issuer: str, keyring: KeyRing, config: dict[str, Any]) -> None:
        self.issuer = issuer
        self.keyring = keyring
        self.access_lifetime = int(config["ACCESS_TOKEN_LIFETIME"])
        self.id_lifetime = int(config["ID_TOKEN_LIFETIME"])
        self.refresh_lifetime = int(config["REFRESH_TOKEN_LIFETIME"])
        self.api_audiences: dict[str, frozenset[str]] = {
            audience: frozenset(scopes) for audience, scopes in config.get("API_AUDIENCES", {}).items()}
        self.verified = VerifiedTokens(VERIFIED_TOKENS_KEPT)

    def lifetimes(self, client: Client) -> tuple[int, int, int]:
        """The (access, ID, refresh) token lifetimes of a client, in seconds: its own where the
        console set one (issue 16 point 9), else the platform's."""
        return (client.access_token_lifetime or self.access_lifetime, client.id_token_lifetime or self.id_lifetime,
                client.refresh_token_lifetime or self.refresh_lifetime)

    def revocation_lifetime(self, client: Client) -> int:
        """How long a family's revocation row must last for this client's access tokens (at least the
        platform's lifetime: a client's own may have been shortened since a token was issued)."""
        return max(self.access_lifetime, client.access_token_lifetime or 0)

    def audience(self, client_id: str, scopes: set[str]) -> str | list[str]:
        """The client itself, plus every app API whose scopes the token carries (RFC 9068 §3: the
        receiving app checks its own name in `aud`, so a token for one API is refused by another)."""
        apis = sorted(api for api, api_scopes in self.api_audiences.items() if api_scopes & scopes)
        return [client_id, *apis] if apis else client_id

    def sign(self, session: Session, claims: dict[str, Any], alg: str, typ: str = "JWT") -> str:
        """A compact JWS of `claims` (RFC 7515 §7.1), signed with the active key of `alg`."""
        kid, key = self.keyring.signing_key(session, alg)
        signing_input = (_b64encode(json.dumps({"alg": alg, "kid": kid, "typ": typ}, separators=(",", ":")).encode())
                         + b"." + _b64encode(json.dumps(claims, ensure_ascii=False, separators=(",", ":")).encode()))
        return (signing_input + b"." + _b64encode(jws_signature(key, alg, signing_input))).decode("ascii")

    def issue(self, session: Session, auth: Authorization, *, include_refresh: bool,
              with_nonce: bool = False) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Build the token response, and the new refresh token's row for `record_issuance()` (the
        caller writes it, with the audit record, in one statement where it can)."""
        now = int(time.time())
        access_lifetime, id_lifetime, refresh_lifetime = self.lifetimes(auth.client)
        scopes = set(auth.scope.split())
        subject = str(auth.user.id) if auth.user else auth.client.client_id
        access: dict[str, Any] = {
            "iss": self.issuer, "sub": subject, "aud": self.audience(auth.client.client_id, scopes),
            "client_id": auth.client.client_id, "iat": now, "exp": now + access_lifetime,
            "jti": random_token(16), "scope": auth.scope,
        }
        if auth.family_id:
            access[FAMILY_CLAIM] = auth.family_id
        claims: dict[str, Any] = {}
        if auth.user is not None:
            access.update(self._login_claims(auth))
            claims = user_claims(session, auth.user, scopes, auth.client, auth.sid)
            if "structures" in scopes:  # SPEC §5.2: in the access token too, for APIs behind the RP
                access.update({k: claims[k] for k in ("structure", "roles", "structures", "legacy_ids")})
        token: dict[str, Any] = {
            "access_token": self.sign(session, access, ACCESS_TOKEN_ALG, typ="at+jwt"),
            "token_type": "Bearer",
            "expires_in": access_lifetime,
            "scope": auth.scope,
        }
        if auth.user is not None and "openid" in scopes:
            alg = auth.client.id_token_signed_response_alg
            id_claims = {
                **claims,
                "iss": self.issuer, "aud": auth.client.client_id, "azp": auth.client.client_id,
                "iat": now, "exp": now + id_lifetime, "jti": random_token(16),
                "at_hash": _half_hash(token["access_token"], alg),
                **self._login_claims(auth),
            }
            if with_nonce and auth.nonce:
                id_claims["nonce"] = auth.nonce
            token["id_token"] = self.sign(session, id_claims, alg)
        refresh_row = None
        if include_refresh and auth.user is not None:
            value = random_token(32)
            now_dt = utcnow()
            refresh_row = {
                "token_digest": sha256_hex(value), "family_id": auth.family_id or uuid.uuid4().hex,
                "client_id": auth.client.client_id, "user_id": auth.user.id, "sid": auth.sid,
                "scope": auth.scope, "auth_time": auth.auth_time or now_dt, "amr": auth.amr,
                "created_at": now_dt, "expires_at": now_dt + timedelta(seconds=refresh_lifetime),
                "rotated_at": None, "revoked_at": None,
            }
            token["refresh_token"] = value
        return token, refresh_row

    @staticmethod
    def _login_claims(auth: Authorization) -> dict[str, Any]:
        claims: dict[str, Any] = {"acr": auth.acr, "amr": auth.amr.split()}
        if auth.auth_time is not None:
            claims["auth_time"] = int(auth.auth_time.timestamp())
        if auth.sid:
            claims["sid"] = auth.sid
        return claims

    # ------------------------------------------------------------------ checking

    def _decode(self, session: Session | Connection, token: Any, typ: str) -> dict[str, Any] | None:
        """Claims of a JWT signed by one of our keys, with this `typ`; else None."""
        checked = self._checked_signature(session, token, typ)
        return _claims_of(checked) if checked else None

    def _checked_signature(self, session: Session | Connection, token: Any, typ: str) -> _Checked | None:
        """A JWT signed by one of our keys, with this `typ`: its kid, the key's verifier, its payload;
        else None. Anything sent from outside goes through here, once per process for a token that
        passes (`VerifiedTokens`): bounded size, a plausible kid, our algorithms only (no `none`),
        the signature checked with the kid's own public key and algorithm (parsed once per process)."""
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            return None
        try:
            head, body, signature = token.encode("ascii").split(b".")
            header = json.loads(_b64decode(head))
            if not isinstance(header, dict) or header.get("typ") != typ or header.get("alg") not in SIGNING_ALGORITHMS:
                return None
            kid = header.get("kid")
            verifier = self.keyring.verifier(session, kid)
            if verifier is None or verifier.alg != header["alg"]:
                return None
            if not verifier.verify(head + b"." + body, _b64decode(signature)):
                return None
            return _Checked(kid, verifier, _b64decode(body))
        except (ValueError, TypeError, UnicodeError, RecursionError):
            return None

    @functools.cached_property
    def _required_claims(self) -> jwt.JWTClaimsRegistry:
        """What every token we accept carries (stateless: one registry for every request)."""
        return jwt.JWTClaimsRegistry(iss={"essential": True, "value": self.issuer}, exp={"essential": True},
                                     jti={"essential": True}, sub={"essential": True})

    def verify(self, session: Session | Connection, token: str, typ: str = "at+jwt") -> dict[str, Any] | None:
        """Claims of a valid, unexpired JWT we signed (signature, iss, exp, typ); else None."""
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
            return None  # not ours, and not worth hashing for the cache
        checked = self.verified.get(typ, token)
        if checked is not None and self.keyring.verifier(session, checked.kid) is not checked.verifier:
            self.verified.forget(typ, token)  # its key left the table: checked afresh (and refused)
            checked = None
        if checked is None:
            checked = self._checked_signature(session, token, typ)
            claims = _claims_of(checked) if checked else None
            if checked is None or claims is None or not self._passes(self._required_claims.validate, claims):
                return None
            self.verified.put(typ, token, checked)
            return claims
        claims = checked.claims()
        if not self._passes(self._required_claims.validate_exp, claims.get("exp")):
            self.verified.forget(typ, token)
            return None
        return claims

    @staticmethod
    def _passes(rule: Any, value: Any) -> bool:
        """Whether joserfc's claim `rule` accepts `value`."""
        try:
            rule(value)
        except (JoseError, ValueError, TypeError):
            return False
        return True

    def verify_id_token_hint(self, session: Session, token: Any) -> dict[str, Any] | None:
        """Claims of an ID token this OP issued, expired or not (OIDC Core §3.1.2.1: the hint is
        checked with our own keys, expiry tolerated); else None."""
        claims = self._decode(session, token, "JWT")
        if claims is None:
            return None
        try:
            _HintClaims(iss={"essential": True, "value": self.issuer}, sub={"essential": True},
                        aud={"essential": True}).validate(claims)
        except (JoseError, ValueError, TypeError):
            return None
        if not isinstance(claims["sub"], str) or not isinstance(claims["aud"], (str, list)):
            return None
        return claims


def _claims_of(checked: _Checked) -> dict[str, Any] | None:
    """The claims of a signed JWT: a JSON object, else None."""
    try:
        claims = checked.claims()
    except (ValueError, RecursionError):
        return None
    return claims if isinstance(claims, dict) else None


def _b64encode(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _b64decode(segment: bytes) -> bytes:
    """base64url without padding, strictly (RFC 7515 §2): any other character is refused."""
    if not _B64URL.fullmatch(segment):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))  # binascii.Error is a ValueError


_B64URL = re.compile(rb"[A-Za-z0-9_-]*")


class _HintClaims(jwt.JWTClaimsRegistry):
    """An ID token hint may have expired (OIDC Core §3.1.2.1, RP-Initiated Logout §2)."""

    def validate_exp(self, value: int) -> None:
        pass


def _live_user_statement(with_sid: bool, with_structure: bool = False) -> Any:
    columns = user_columns()
    if with_structure:  # userinfo: the session's current structure too (the claims cache's key)
        current = (select(LoginSession.current_structure_id).where(LoginSession.id == bindparam("sid"))
                   .scalar_subquery() if with_sid else null())
        columns.append(current.label("current_structure_id"))
    query = select(*columns).where(
        USERS.c.id == bindparam("user_id"),
        USERS.c.state == AccountState.ACTIVE,
        ~exists().where(RevokedAccessToken.jti.in_([bindparam("jti"), bindparam("family")])),
    )
    if with_sid:
        query = query.where(
            exists().where(LoginSession.id == bindparam("sid"), LoginSession.revoked_at.is_(None))
        )
    return query


# Built once: SQLAlchemy memoizes a statement's cache key, so reusing the object skips both the
# construction and the cache-key walk on every request (a third of the token path's time).
_LIVE_USER = {True: _live_user_statement(True), False: _live_user_statement(False)}
# userinfo's one statement, prepared on PostgreSQL and run without Core's per-execute machinery.
_LIVE_USER_WITH_STRUCTURE = {True: PreparedSelect(_live_user_statement(True, True)),
                             False: PreparedSelect(_live_user_statement(False, True))}


def live_user(session: Session, claims: dict[str, Any]) -> UserView | None:
    """The token's user if the token still holds: account active, jti not revoked, session not
    ended (SPEC §5.3 freshness). One indexed query (Core: columns, no ORM entity)."""
    try:
        user_id = uuid.UUID(claims["sub"])
    except (ValueError, KeyError, TypeError):
        return None
    sid = claims.get("sid")
    params = {"user_id": user_id, "jti": claims["jti"], "family": family_marker(claims)}
    if sid:
        params["sid"] = sid
    return UserView.from_row(session.execute(_LIVE_USER[bool(sid)], params).first())


def live_user_and_structure(session: Session | Connection, claims: dict[str, Any]) -> tuple[UserView | None, Any]:
    """`live_user()` and the session's current structure, in the same statement (userinfo)."""
    try:
        user_id = uuid.UUID(claims["sub"])
    except (ValueError, KeyError, TypeError):
        return None, None
    sid = claims.get("sid")
    params = {"user_id": user_id, "jti": claims["jti"], "family": family_marker(claims)}
    if sid:
        params["sid"] = sid
    conn = session.connection() if isinstance(session, Session) else session
    row = _LIVE_USER_WITH_STRUCTURE[bool(sid)].first(conn, params)
    user = UserView.from_mapping(row)
    return user, (row["current_structure_id"] if user is not None else None)  # type: ignore[index]


def audit_row(event: str, origin: Origin, *, actor: uuid.UUID | None = None, subject: uuid.UUID | None = None,
              client_id: str | None = None, **details: Any) -> dict[str, Any]:
    """The columns `idp.core.audit.audit()` would write, for a Core INSERT on the token path."""
    return {"at": utcnow(), "event": event, "actor_id": actor, "subject_id": subject, "structure_id": None,
            "client_id": client_id, "ip": origin.ip, "user_agent": (origin.user_agent or "")[:300] or None,
            "details": details}


def _insert(table: Any, prefix: str = "") -> Any:
    return insert(table).values({c.key: bindparam(f"{prefix}{c.key}", type_=c.type)
                                 for c in table.c if not c.primary_key})


_INSERT_AUDIT = insert(AUDIT_EVENTS)  # executed with a dict: one bound value per column given
_INSERT_REFRESH = insert(REFRESH_TOKENS)
# PostgreSQL: the audit row rides in a CTE of the refresh token's INSERT (one round trip).
_INSERT_REFRESH_AND_AUDIT = insert(REFRESH_TOKENS).add_cte(_insert(AUDIT_EVENTS, "a_").cte("issued_audit"))


def insert_audit(conn: Any, audit_values: dict[str, Any]) -> None:
    conn.execute(_INSERT_AUDIT, audit_values)


def record_issuance(session: Session, refresh_row: dict[str, Any] | None, audit_values: dict[str, Any]) -> None:
    """Write a new refresh token and the `token.issued` audit record (SPEC §4.5) in the request's
    transaction: on PostgreSQL in one statement (the audit INSERT rides in a CTE), else two.
    The caller commits (synchronously: the refresh token must survive a crash)."""
    conn = session.connection()
    if refresh_row is None:
        conn.execute(_INSERT_AUDIT, audit_values)
    elif conn.dialect.name == "postgresql":
        conn.execute(_INSERT_REFRESH_AND_AUDIT, {**refresh_row, **{f"a_{k}": v for k, v in audit_values.items()}})
    else:
        conn.execute(_INSERT_REFRESH, refresh_row)
        conn.execute(_INSERT_AUDIT, audit_values)


def family_marker(claims: dict[str, Any]) -> str | None:
    """The revocation row that kills every access token of a grant family (see revoke_family)."""
    family = claims.get(FAMILY_CLAIM)
    return f"family:{family}" if isinstance(family, str) and family else None


def access_token_revoked(session: Session, claims: dict[str, Any]) -> bool:
    """The token itself, or the family it belongs to, was revoked."""
    ids = [claims["jti"], family_marker(claims)]
    return session.scalar(select(exists().where(RevokedAccessToken.jti.in_([i for i in ids if i])))) or False


def insert_unless_present(session: Session, table: Any, values: dict[str, Any], keys: list[str]) -> None:
    """One INSERT that does nothing when a row with the same `keys` is there: two requests writing
    the same row at once both succeed, and nobody reads first."""
    insert_ = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert_(table).values(**values).on_conflict_do_nothing(index_elements=keys))


def _revocation_row(session: Session, jti: str, expires_at: datetime) -> None:
    """A revocation row, once: two requests revoking the same token at once (a code replayed in
    parallel) must both succeed, not one meet a unique-key error."""
    insert_unless_present(session, RevokedAccessToken, {"jti": jti, "expires_at": expires_at}, ["jti"])


def revoke_access_token(session: Session, claims: dict[str, Any]) -> None:
    _revocation_row(session, claims["jti"], datetime.fromtimestamp(claims["exp"], utcnow().tzinfo))


def revoke_family(session: Session, family_id: str, access_lifetime: int) -> int:
    """Revoke every token of a family: its refresh tokens, and its access tokens through one
    revocation row named after the family (RFC 6749 §4.1.2, RFC 9700 §4.5: a replayed code or
    refresh token means it leaked, and what it gave must stop working)."""
    # Kept as long as any access token of the family may live; `idp purge` drops it after.
    _revocation_row(session, f"family:{family_id}", utcnow() + timedelta(seconds=access_lifetime + 60))
    return session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    ).rowcount
