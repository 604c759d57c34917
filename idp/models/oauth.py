"""OAuth 2.0 / OpenID Connect storage: clients, codes, refresh tokens, consents, keys (SPEC §4.7).

Codes, refresh tokens and client secrets are high-entropy values: they are stored as SHA-256 /
HMAC-SHA256 digests, never in clear and never with a slow password hash.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from idp.models.base import Base, utcnow


class Client(Base):
    __tablename__ = "oauth_clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    secret_digest: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(120))
    app: Mapped[str | None] = mapped_column(String(40))  # the application (SPEC §3) whose roles it sees
    redirect_uris: Mapped[list[str]] = mapped_column(default=list)
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(default=list)
    backchannel_logout_uri: Mapped[str | None] = mapped_column(String(500))
    grant_types: Mapped[list[str]] = mapped_column(default=list)
    scope: Mapped[str] = mapped_column(String(500), default="openid")
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(40), default="client_secret_basic")
    jwks: Mapped[dict[str, Any] | None] = mapped_column()  # for private_key_jwt
    id_token_signed_response_alg: Mapped[str] = mapped_column(String(10), default="RS256")
    require_pkce: Mapped[bool] = mapped_column(default=False)  # always true for public clients
    trusted: Mapped[bool] = mapped_column(default=False)  # first-party: no consent screen
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuthorizationCode(Base):
    __tablename__ = "oauth_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_digest: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    sid: Mapped[str] = mapped_column(String(64))
    redirect_uri: Mapped[str] = mapped_column(String(500))
    scope: Mapped[str] = mapped_column(String(500))
    nonce: Mapped[str | None] = mapped_column(String(255))
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(10))
    auth_time: Mapped[datetime]
    amr: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class RefreshToken(Base):
    """A refresh token; rotation links each to its family so a replayed one revokes them all."""

    __tablename__ = "oauth_refresh_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    family_id: Mapped[str] = mapped_column(String(32), index=True)
    client_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    sid: Mapped[str | None] = mapped_column(String(64), index=True)
    scope: Mapped[str] = mapped_column(String(500))
    auth_time: Mapped[datetime]
    amr: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    rotated_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_oauth_refresh_tokens_user_client", "user_id", "client_id"),)


class RevokedAccessToken(Base):
    """JWT access tokens revoked before expiry (RFC 7009); rows are dropped once expired."""

    __tablename__ = "oauth_revoked_access_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class Consent(Base):
    __tablename__ = "oauth_consents"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(500))
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("user_id", "client_id"),)


class ClientSession(Base):
    """Which clients a login session signed in to: the targets of back-channel logout."""

    __tablename__ = "oauth_client_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    sid: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("sid", "client_id"),)


class SigningKey(Base):
    """A signing key: published from `published_at`, signs from `active_at` until `retired_at`,
    and stays in the JWKS until `expires_at` (after every token it signed has expired)."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(10))
    private_pem: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict[str, Any]] = mapped_column()
    published_at: Mapped[datetime] = mapped_column(default=utcnow)
    active_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
