"""Minting and checking tokens: JWT access tokens (RFC 9068), ID tokens, rotating refresh tokens.

Access and ID tokens are never stored; refresh tokens are stored as SHA-256 digests. Every JWT
carries a random `jti`, so two tokens are never identical, even within one second.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from idp.core.security import random_token, sha256_hex
from idp.models import (
    AccountState,
    Client,
    LoginSession,
    RefreshToken,
    RevokedAccessToken,
    User,
    utcnow,
)
from idp.oidc.claims import user_claims
from idp.oidc.keys import KeyRing

ACCESS_TOKEN_ALG = "ES256"  # cheap to sign and verify (~0.1 ms against ~1 ms for RS256)


@dataclass(frozen=True)
class Authorization:
    """What tokens are issued for: a client, a scope and, for user grants, the login behind it."""

    client: Client
    scope: str
    user: User | None = None
    sid: str | None = None
    auth_time: datetime | None = None
    amr: str = ""
    nonce: str | None = None
    family_id: str | None = None

    @property
    def acr(self) -> str:
        return "urn:portail:acr:mfa" if "otp" in self.amr.split() else "urn:portail:acr:pwd"


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

    def sign(self, session: Session, claims: dict[str, Any], alg: str, typ: str = "JWT") -> str:
        kid, key = self.keyring.signing_key(session, alg)
        return jwt.encode({"alg": alg, "kid": kid, "typ": typ}, claims, key, algorithms=[alg])

    def issue(self, session: Session, auth: Authorization, *, include_refresh: bool,
              with_nonce: bool = False) -> dict[str, Any]:
        """Build the token response; a new refresh token is added to the session (not committed)."""
        now = int(time.time())
        scopes = set(auth.scope.split())
        subject = str(auth.user.id) if auth.user else auth.client.client_id
        access: dict[str, Any] = {
            "iss": self.issuer, "sub": subject, "aud": auth.client.client_id,
            "client_id": auth.client.client_id, "iat": now, "exp": now + self.access_lifetime,
            "jti": random_token(16), "scope": auth.scope,
        }
        claims: dict[str, Any] = {}
        if auth.user is not None:
            access.update(self._login_claims(auth))
            claims = user_claims(session, auth.user, scopes, auth.client, auth.sid)
            if "structures" in scopes:  # SPEC §5.2: in the access token too, for APIs behind the RP
                access.update({k: claims[k] for k in ("structure", "roles", "structures", "legacy_ids")})
        token: dict[str, Any] = {
            "access_token": self.sign(session, access, ACCESS_TOKEN_ALG, typ="at+jwt"),
            "token_type": "Bearer",
            "expires_in": self.access_lifetime,
            "scope": auth.scope,
        }
        if auth.user is not None and "openid" in scopes:
            alg = auth.client.id_token_signed_response_alg
            id_claims = {
                **claims,
                "iss": self.issuer, "aud": auth.client.client_id, "azp": auth.client.client_id,
                "iat": now, "exp": now + self.id_lifetime, "jti": random_token(16),
                "at_hash": _half_hash(token["access_token"], alg),
                **self._login_claims(auth),
            }
            if with_nonce and auth.nonce:
                id_claims["nonce"] = auth.nonce
            token["id_token"] = self.sign(session, id_claims, alg)
        if include_refresh and auth.user is not None:
            value = random_token(32)
            session.add(RefreshToken(
                token_digest=sha256_hex(value), family_id=auth.family_id or uuid.uuid4().hex,
                client_id=auth.client.client_id, user_id=auth.user.id, sid=auth.sid,
                scope=auth.scope, auth_time=auth.auth_time or utcnow(), amr=auth.amr,
                expires_at=utcnow() + timedelta(seconds=self.refresh_lifetime),
            ))
            token["refresh_token"] = value
        return token

    @staticmethod
    def _login_claims(auth: Authorization) -> dict[str, Any]:
        claims: dict[str, Any] = {"acr": auth.acr, "amr": auth.amr.split()}
        if auth.auth_time is not None:
            claims["auth_time"] = int(auth.auth_time.timestamp())
        if auth.sid:
            claims["sid"] = auth.sid
        return claims

    # ------------------------------------------------------------------ checking

    def verify(self, session: Session, token: str, typ: str = "at+jwt") -> dict[str, Any] | None:
        """Claims of a valid, unexpired JWT we signed (signature, iss, exp, typ); else None."""
        try:
            header = jws.extract_compact(token.encode()).headers()
            kid = header.get("kid")
            if header.get("typ") != typ or not isinstance(kid, str):
                return None
            key = self.keyring.public_key(session, kid)
            if key is None:
                return None
            decoded = jwt.decode(token, key, algorithms=["ES256", "RS256"])
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": self.issuer}, exp={"essential": True},
                jti={"essential": True}, sub={"essential": True},
            ).validate(decoded.claims)
        except (JoseError, ValueError, TypeError, UnicodeError):
            return None
        return decoded.claims


def live_user(session: Session, claims: dict[str, Any]) -> User | None:
    """The token's user if the token still holds: account active, jti not revoked, session not
    ended (SPEC §5.3 freshness). One indexed query."""
    try:
        user_id = uuid.UUID(claims["sub"])
    except (ValueError, KeyError, TypeError):
        return None
    query = select(User).where(
        User.id == user_id,
        User.state == AccountState.ACTIVE,
        ~exists().where(RevokedAccessToken.jti == claims["jti"]),
    )
    if claims.get("sid"):
        query = query.where(
            exists().where(LoginSession.id == claims["sid"], LoginSession.revoked_at.is_(None))
        )
    return session.scalar(query)


def access_token_revoked(session: Session, jti: str) -> bool:
    return session.scalar(select(exists().where(RevokedAccessToken.jti == jti))) or False


def revoke_access_token(session: Session, claims: dict[str, Any]) -> None:
    if not access_token_revoked(session, claims["jti"]):
        session.add(RevokedAccessToken(jti=claims["jti"], expires_at=datetime.fromtimestamp(claims["exp"], utcnow().tzinfo)))


def revoke_family(session: Session, family_id: str) -> int:
    """Revoke every refresh token of a family (a replayed token means it leaked)."""
    return session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    ).rowcount
