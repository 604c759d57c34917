"""Every authlib subclass in one module (STYLE: Canaille's oidc/provider.py): each override is
small and calls the shared functions of tokens.py, claims.py and logout.py."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer as _AuthorizationServer
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc7009 import RevocationEndpoint as _RevocationEndpoint
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge as _CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint as _IntrospectionEndpoint
from authlib.oauth2.rfc9207 import IssuerParameter as _IssuerParameter
from flask import Flask, current_app
from joserfc.jwk import KeySet
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from idp.core.security import sha256_hex
from idp.extensions import db
from idp.models import (
    AccountState,
    AuthorizationCode,
    Client,
    ClientSession,
    RefreshToken,
    UsedAssertion,
    User,
    utcnow,
)
from idp.oidc.tokens import Authorization, TokenIssuer, revoke_access_token, revoke_family
from idp.web import current_login, record

AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]


def issuer() -> TokenIssuer:
    return current_app.extensions["token_issuer"]


def active_user(user_id: uuid.UUID) -> User | None:
    return db.session.scalar(select(User).where(User.id == user_id, User.state == AccountState.ACTIVE))


class AuthorizationServer(_AuthorizationServer):
    def query_client(self, client_id: Any) -> Client | None:
        if not isinstance(client_id, str) or len(client_id) > 64:
            return None
        return db.session.scalar(select(Client).where(Client.client_id == client_id, Client.active))

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        record("token.issued", actor=request.user.id if request.user else None,
               subject=request.user.id if request.user else None, client_id=request.client.client_id,
               grant_type=request.payload.grant_type, scope=token.get("scope"))


class CodeChallenge(_CodeChallenge):
    """PKCE with S256 only ("plain" refused), required for public clients and those that ask."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        request = grant.request
        challenge = request.payload.data.get("code_challenge")
        if challenge and request.payload.data.get("code_challenge_method") != "S256":
            # Without a method RFC 7636 means "plain", which we refuse.
            raise InvalidRequestError("'code_challenge_method' must be S256")
        if not challenge and request.client.require_pkce:
            raise InvalidRequestError("PKCE is required for this client: send 'code_challenge'")
        super().validate_code_challenge(grant, redirect_uri)

    def get_authorization_code_challenge(self, authorization_code: AuthorizationCode) -> str | None:
        return authorization_code.code_challenge

    def get_authorization_code_challenge_method(self, authorization_code: AuthorizationCode) -> str | None:
        return authorization_code.code_challenge_method


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def save_authorization_code(self, code: str, request: Any) -> AuthorizationCode:
        login = current_login()
        assert login is not None  # the view only issues codes to a logged-in user
        data = request.payload.data
        item = AuthorizationCode(
            code_digest=sha256_hex(code), client_id=request.client.client_id, user_id=login.user_id,
            sid=login.id, redirect_uri=request.payload.redirect_uri or request.client.get_default_redirect_uri(),
            scope=request.scope, nonce=data.get("nonce"), code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"), auth_time=login.auth_time,
            amr=login.amr, family_id=uuid.uuid4().hex,
            expires_at=utcnow() + timedelta(seconds=current_app.config["AUTHORIZATION_CODE_LIFETIME"]),
        )
        db.session.add(item)
        remember_client_session(login.id, request.client.client_id, login.user_id)
        return item

    def query_authorization_code(self, code: str, client: Client) -> AuthorizationCode | None:
        """Consume the code atomically: of ten concurrent redemptions exactly one wins."""
        if not isinstance(code, str) or len(code) > 128:
            return None
        digest, now = sha256_hex(code), utcnow()
        item = db.session.scalar(
            update(AuthorizationCode)
            .where(AuthorizationCode.code_digest == digest, AuthorizationCode.client_id == client.client_id,
                   AuthorizationCode.used_at.is_(None), AuthorizationCode.expires_at > now)
            .values(used_at=now)
            .returning(AuthorizationCode)
        )
        if item is None:
            replayed = db.session.scalar(
                select(AuthorizationCode).where(AuthorizationCode.code_digest == digest,
                                                AuthorizationCode.used_at.is_not(None))
            )
            if replayed is not None:
                # RFC 6749 §4.1.2: a code used twice revokes what it gave.
                revoke_family(db.session, replayed.family_id)
                record("token.code_replayed", subject=replayed.user_id, client_id=client.client_id)
        return item

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        pass  # consumed in query_authorization_code; expired rows are purged by `idp purge`

    def authenticate_user(self, authorization_code: AuthorizationCode) -> User | None:
        return active_user(authorization_code.user_id)

    def generate_token(self, user: Any = None, scope: Any = None, grant_type: Any = None,
                       expires_in: Any = None, include_refresh_token: bool = True) -> dict[str, Any]:
        code: AuthorizationCode = self.request.authorization_code
        return issuer().issue(db.session, Authorization(
            client=self.request.client, scope=scope, user=user, sid=code.sid, auth_time=code.auth_time,
            amr=code.amr, nonce=code.nonce, family_id=code.family_id,
        ), include_refresh=include_refresh_token, with_nonce=True)


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshToken | None:
        """Rotate atomically; a token presented again after rotation revokes its whole family."""
        if not isinstance(refresh_token, str) or len(refresh_token) > 128:
            return None
        digest, now = sha256_hex(refresh_token), utcnow()
        item = db.session.scalar(
            update(RefreshToken)
            .where(RefreshToken.token_digest == digest, RefreshToken.rotated_at.is_(None),
                   RefreshToken.revoked_at.is_(None), RefreshToken.expires_at > now)
            .values(rotated_at=now)
            .returning(RefreshToken)
        )
        if item is None:
            reused = db.session.scalar(
                select(RefreshToken).where(RefreshToken.token_digest == digest, RefreshToken.rotated_at.is_not(None))
            )
            if reused is not None and revoke_family(db.session, reused.family_id):
                record("token.refresh_reused", subject=reused.user_id, client_id=reused.client_id,
                       family=reused.family_id)
        return item

    def authenticate_user(self, refresh_token: RefreshToken) -> User:
        user = active_user(refresh_token.user_id)
        if user is None:
            raise InvalidGrantError("The account is no longer active.")
        return user

    def revoke_old_credential(self, refresh_token: RefreshToken) -> None:
        pass  # rotated in authenticate_refresh_token

    def generate_token(self, user: Any = None, scope: Any = None, grant_type: Any = None,
                       expires_in: Any = None, include_refresh_token: bool = True) -> dict[str, Any]:
        old: RefreshToken = self.request.refresh_token
        return issuer().issue(db.session, Authorization(
            client=self.request.client, scope=scope, user=user, sid=old.sid, auth_time=old.auth_time,
            amr=old.amr, family_id=old.family_id,
        ), include_refresh=True)


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]

    def generate_token(self, user: Any = None, scope: Any = None, grant_type: Any = None,
                       expires_in: Any = None, include_refresh_token: bool = True) -> dict[str, Any]:
        client: Client = self.request.client
        return issuer().issue(db.session, Authorization(client=client, scope=client.get_allowed_scope(scope)),
                              include_refresh=False)


class PrivateKeyJWT(JWTBearerClientAssertion):
    """private_key_jwt client authentication (RFC 7523 §2.2, OIDC Core §9)."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def get_audiences(self) -> list[str]:
        iss = current_app.config["ISSUER"]
        return [iss, f"{iss}/oauth/token"]

    def resolve_client_public_key(self, client: Client) -> KeySet:
        return KeySet.import_key_set(client.jwks or {"keys": []})

    def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
        exp = claims.get("exp")
        expires = utcnow() + timedelta(minutes=10)
        if isinstance(exp, int):
            expires = max(expires, utcnow().fromtimestamp(exp, utcnow().tzinfo))
        try:
            with db.session.begin_nested():
                db.session.add(UsedAssertion(jti=str(jti)[:255], expires_at=expires))
        except IntegrityError:
            return False
        return True


class IssuerParameter(_IssuerParameter):
    """RFC 9207: `iss` in every authorization response, errors included."""

    def get_issuer(self) -> str:
        return current_app.config["ISSUER"]


class PresentedToken:
    """A token shown to introspection or revocation: a JWT access token or a stored refresh token."""

    def __init__(self, claims: dict[str, Any] | None = None, refresh: RefreshToken | None = None) -> None:
        self.claims, self.refresh = claims, refresh

    @property
    def client_id(self) -> str:
        return self.refresh.client_id if self.refresh else self.claims["client_id"]  # type: ignore[index]

    def check_client(self, client: Client) -> bool:
        return self.client_id == client.client_id

    def is_expired(self) -> bool:
        if self.refresh:
            return self.refresh.expires_at <= utcnow()
        return False  # verify() already refused an expired JWT

    def is_revoked(self) -> bool:
        if self.refresh:
            return self.refresh.revoked_at is not None or self.refresh.rotated_at is not None
        from idp.oidc.tokens import access_token_revoked, live_user

        if access_token_revoked(db.session, self.claims["jti"]):  # type: ignore[index]
            return True
        # A user's token also dies with the account or the session (SPEC §5.3).
        return self.claims.get("sid") is not None and live_user(db.session, self.claims) is None  # type: ignore[union-attr]


def find_token(token_string: Any, hint: str | None) -> PresentedToken | None:
    if not isinstance(token_string, str) or not token_string or len(token_string) > 8192:
        return None
    if hint != "refresh_token" and token_string.count(".") == 2:
        claims = issuer().verify(db.session, token_string)
        if claims is not None:
            return PresentedToken(claims=claims)
    if len(token_string) <= 128:
        refresh = db.session.scalar(select(RefreshToken).where(RefreshToken.token_digest == sha256_hex(token_string)))
        if refresh is not None:
            return PresentedToken(refresh=refresh)
    return None


class IntrospectionEndpoint(_IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]

    def query_token(self, token_string: str, token_type_hint: str | None) -> PresentedToken | None:
        return find_token(token_string, token_type_hint)

    def check_permission(self, token: PresentedToken, client: Client, request: Any) -> bool:
        # Least privilege: a client introspects only its own tokens.
        return token.check_client(client)

    def introspect_token(self, token: PresentedToken) -> dict[str, Any]:
        if token.refresh:
            r = token.refresh
            return {"active": True, "token_type": "refresh_token", "client_id": r.client_id, "sub": str(r.user_id),
                    "scope": r.scope, "exp": int(r.expires_at.timestamp()), "iat": int(r.created_at.timestamp()),
                    "iss": current_app.config["ISSUER"]}
        c = token.claims or {}
        return {"active": True, "token_type": "access_token",
                **{k: c[k] for k in ("client_id", "sub", "scope", "exp", "iat", "iss", "jti", "aud", "sid", "auth_time", "acr") if k in c}}


class RevocationEndpoint(_RevocationEndpoint):
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]

    def query_token(self, token_string: str, token_type_hint: str | None) -> PresentedToken | None:
        return find_token(token_string, token_type_hint)

    def revoke_token(self, token: PresentedToken, request: Any) -> None:
        if token.refresh:
            # Revoking a refresh token ends its whole family (RFC 7009 §2.1 allows it; it is safer).
            revoke_family(db.session, token.refresh.family_id)
            subject = token.refresh.user_id
        else:
            revoke_access_token(db.session, token.claims or {})
            subject = None
        record("token.revoked", subject=subject, client_id=token.client_id,
               kind="refresh_token" if token.refresh else "access_token")


def remember_client_session(sid: str, client_id: str, user_id: uuid.UUID) -> None:
    """Note that this login session signed in to this client (back-channel logout targets)."""
    exists_already = db.session.scalar(
        select(ClientSession.id).where(ClientSession.sid == sid, ClientSession.client_id == client_id)
    )
    if exists_already is None:
        db.session.add(ClientSession(sid=sid, client_id=client_id, user_id=user_id))


def create_server(app: Flask) -> AuthorizationServer:
    server = AuthorizationServer()
    server.init_app(app)
    server.register_grant(AuthorizationCodeGrant, [CodeChallenge(required=True)])
    server.register_grant(RefreshTokenGrant)
    server.register_grant(ClientCredentialsGrant)
    server.register_client_auth_method(PrivateKeyJWT.CLIENT_AUTH_METHOD, PrivateKeyJWT())
    server.register_endpoint(IntrospectionEndpoint)
    server.register_endpoint(RevocationEndpoint)
    server.register_extension(IssuerParameter())
    return server
