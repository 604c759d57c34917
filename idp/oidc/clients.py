"""Registering OIDC clients (used by `idp client create`, the demo and the admin console)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.core.audit import audit
from idp.core.security import Origin, random_token
from idp.models import Client
from idp.models.oauth import secret_digest

DEFAULT_GRANTS = ["authorization_code", "refresh_token"]
DEFAULT_SCOPE = "openid profile email structures"


@dataclass
class ClientSpec:
    name: str
    redirect_uris: list[str] = field(default_factory=list)
    app: str | None = None
    post_logout_redirect_uris: list[str] = field(default_factory=list)
    backchannel_logout_uri: str | None = None
    public: bool = False
    trusted: bool = False
    grant_types: list[str] | None = None
    scope: str | None = None
    id_token_signed_response_alg: str = "RS256"
    client_id: str | None = None
    client_secret: str | None = None
    token_endpoint_auth_method: str | None = None
    jwks: dict | None = None
    require_pkce: bool = False


def _check_uri(uri: str) -> None:
    parts = urlsplit(uri)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.fragment:
        raise ValueError(f"URI invalide (absolue, http(s), sans fragment) : {uri}")


def create_client(session: Session, spec: ClientSpec, origin: Origin) -> tuple[Client, str | None]:
    """Create a client; returns it with its clear secret (None for public clients), shown once.

    :raises ValueError: bad redirect URI, a taken client_id, or a grant needing a missing URI.
    """
    grants = spec.grant_types or (
        ["client_credentials"] if not spec.redirect_uris else list(DEFAULT_GRANTS)
    )
    for uri in [*spec.redirect_uris, *spec.post_logout_redirect_uris,
                *([spec.backchannel_logout_uri] if spec.backchannel_logout_uri else [])]:
        _check_uri(uri)
    if "authorization_code" in grants and not spec.redirect_uris:
        raise ValueError("authorization_code exige au moins une --redirect-uri")
    if spec.public and "client_credentials" in grants:
        raise ValueError("un client public ne peut pas utiliser client_credentials")
    client_id = spec.client_id or random_token(16)
    if session.scalar(select(Client.id).where(Client.client_id == client_id)):
        raise ValueError(f"client_id déjà utilisé : {client_id}")
    method = spec.token_endpoint_auth_method or ("none" if spec.public else "client_secret_basic")
    secret = None if method in ("none", "private_key_jwt") else (spec.client_secret or random_token(32))
    client = Client(
        client_id=client_id,
        secret_digest=secret_digest(secret) if secret else None,
        name=spec.name,
        app=spec.app,
        redirect_uris=spec.redirect_uris,
        post_logout_redirect_uris=spec.post_logout_redirect_uris,
        backchannel_logout_uri=spec.backchannel_logout_uri,
        grant_types=grants,
        scope=spec.scope or (DEFAULT_SCOPE if "authorization_code" in grants else ""),
        token_endpoint_auth_method=method,
        jwks=spec.jwks,
        id_token_signed_response_alg=spec.id_token_signed_response_alg,
        require_pkce=spec.public or spec.require_pkce,
        trusted=spec.trusted,
    )
    session.add(client)
    session.flush()
    audit(session, "client.created", origin, client_id=client_id, name=spec.name)
    return client, secret
