"""Every authlib subclass in one module (STYLE: Canaille's oidc/provider.py): each override is
small and calls the shared functions of tokens.py, claims.py and logout.py."""

from __future__ import annotations

import threading
import time
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
from flask_login import current_user
from joserfc.jwk import KeySet
from sqlalchemy import Connection, and_, bindparam, event, exists, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached

from idp.core.security import sha256_hex
from idp.extensions import audit_connection, db, is_postgres
from idp.models import (
    AccountState,
    AuthorizationCode,
    Client,
    ClientSession,
    RefreshToken,
    UsedAssertion,
    utcnow,
)
from idp.oidc.client_events import ClientChanges, notify
from idp.oidc.keys import connection_of
from idp.oidc.tokens import (
    REVOKED_ACCESS_TOKENS,
    USERS,
    Authorization,
    TokenIssuer,
    UserView,
    audit_row,
    insert_audit,
    insert_unless_present,
    record_issuance,
    revoke_access_token,
    revoke_family,
    user_columns,
)
from idp.web import origin, record

AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]


def issuer() -> TokenIssuer:
    return current_app.extensions["token_issuer"]


class ClientCache:
    """Registered clients, kept by each worker for `ttl` seconds (issue 2 item 9: no client SELECT
    on every token, userinfo and introspection request).

    A change made through the ORM in this process (secret regenerated, URIs edited, client created,
    deactivated or deleted) empties the cache when its transaction commits; on PostgreSQL, other
    workers and processes hear of it at the same commit (client_events: LISTEN/NOTIFY, issue 17).
    Entries are detached, read-only Client instances."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, Client]] = {}
        self._generation = 0
        self._lock = threading.Lock()
        self.changes: ClientChanges | None = None  # PostgreSQL: every worker hears of a change

    def get(self, session: Session | Connection, client_id: str) -> Client | None:
        entry = self._entries.get(client_id)
        now = time.monotonic()
        trusted = self.changes is None or self.changes.listening
        if entry is not None and now - entry[0] < self.ttl and trusted:
            return entry[1]
        generation = self._generation
        table = Client.__table__
        row = connection_of(session).execute(SELECT_CLIENT, {"p_client_id": client_id}).first()
        if row is None:
            self._entries.pop(client_id, None)  # unknown ids are never kept: no memory to fill
            return None
        # A detached instance of its own (never the session's): every column set, no relationship.
        client = Client(**{c.key: row._mapping[c] for c in table.c})
        make_transient_to_detached(client)
        with self._lock:
            if generation == self._generation:  # no change committed while we were reading
                self._entries[client_id] = (now, client)
        return client

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()


# A change to a Client empties the cache of the app whose session made it (`db.session` belongs to
# the current app context): now, at flush, so that a reader between flush and commit does not keep
# the old row, and again at commit; on PostgreSQL the other workers hear of it at the commit.
def _clients_flushed(session: Session, _context: Any) -> None:
    if any(isinstance(o, Client) for o in (*session.new, *session.dirty, *session.deleted)):
        session.info["portail.clients_changed"] = True
        client_cache().clear()


def _clients_committing(session: Session) -> None:
    if session.info.get("portail.clients_changed") and client_cache().changes is not None:
        notify(session.connection())


def _clients_committed(session: Session) -> None:
    if session.info.pop("portail.clients_changed", False):
        client_cache().clear()


def client_cache() -> ClientCache:
    return current_app.extensions["client_cache"]


def find_client(client_id: Any) -> Client | None:
    if not isinstance(client_id, str) or len(client_id) > 64:
        return None
    return client_cache().get(db.session, client_id)


class AuthorizationServer(_AuthorizationServer):
    def query_client(self, client_id: Any) -> Client | None:
        return find_client(client_id)

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        """The new refresh token (if any) and the `token.issued` audit record (SPEC §4.5)."""
        user_id = request.user.id if request.user else None
        values = audit_row("token.issued", origin(), actor=user_id, subject=user_id,
                           client_id=request.client.client_id, grant_type=request.payload.grant_type,
                           scope=token.get("scope"))
        refresh_row = getattr(request, "new_refresh_row", None)
        # db.session() is the scoped session's Session: in_transaction() is not proxied.
        if refresh_row is None and is_postgres() and not db.session().in_transaction():
            # client_credentials: the audit row is the request's only write. It gets its own
            # autocommit connection with asynchronous commit: one round trip, no WAL flush wait.
            with audit_connection() as conn:
                insert_audit(conn, values)
            return
        record_issuance(db.session, refresh_row, values)


class Consumed:
    """A consumed authorization code or rotated refresh token, read as columns (Core), with the
    methods authlib's grants call and the account found active in the same round trip."""

    def __init__(self, values: dict[str, Any], user: UserView | None) -> None:
        self.__dict__.update(values)
        self.active_user = user

    # authlib's AuthorizationCodeMixin
    def get_redirect_uri(self) -> str:
        return self.redirect_uri  # type: ignore[attr-defined]

    def get_scope(self) -> str:
        return self.scope  # type: ignore[attr-defined]

    def get_nonce(self) -> str | None:
        return self.nonce  # type: ignore[attr-defined]

    # authlib's TokenMixin
    def check_client(self, client: Client) -> bool:
        return self.client_id == client.client_id  # type: ignore[attr-defined]


def _consume_statements(table: Any, where: list[Any], values: dict[str, Any]) -> dict[str, Any]:
    """UPDATE … RETURNING the row, with the user if the account is active: for PostgreSQL one
    statement (the UPDATE in a CTE joined to users), elsewhere the UPDATE then the user's SELECT."""
    changed = update(table).where(*where).values(**values).returning(*table.c)
    cte = changed.cte("consumed")
    return {
        "postgresql": select(cte, *user_columns("u_")).outerjoin(
            USERS, and_(USERS.c.id == cte.c.user_id, USERS.c.state == AccountState.ACTIVE)),
        "update": changed,
        "user": select(*user_columns()).where(USERS.c.id == bindparam("p_user_id"), USERS.c.state == AccountState.ACTIVE),
    }


_CODES, _TOKENS = AuthorizationCode.__table__, RefreshToken.__table__
# Built once (a reused statement skips construction and SQLAlchemy's cache-key walk).
CONSUME_CODE = _consume_statements(
    _CODES, [_CODES.c.code_digest == bindparam("digest"), _CODES.c.client_id == bindparam("p_client_id"),
             _CODES.c.used_at.is_(None), _CODES.c.expires_at > bindparam("now")],
    {"used_at": bindparam("p_now")})
ROTATE_REFRESH = _consume_statements(
    _TOKENS, [_TOKENS.c.token_digest == bindparam("digest"), _TOKENS.c.rotated_at.is_(None),
              _TOKENS.c.revoked_at.is_(None), _TOKENS.c.expires_at > bindparam("now"),
              # The family revoked (a replayed code) while this token was being issued: the
              # revocation's UPDATE could not see it, the family's row does.
              ~exists().where(REVOKED_ACCESS_TOKENS.c.jti == literal("family:").concat(_TOKENS.c.family_id))],
    {"rotated_at": bindparam("p_now")})
SELECT_CLIENT = select(Client.__table__).where(Client.__table__.c.client_id == bindparam("p_client_id"),
                                               Client.__table__.c.active)


def consume(statements: dict[str, Any], table: Any, params: dict[str, Any]) -> Consumed | None:
    """Run a consuming UPDATE (see `_consume_statements`); None when nothing matched."""
    conn = db.session.connection()
    if conn.dialect.name == "postgresql":
        row = conn.execute(statements["postgresql"], params).first()
        if row is None:
            return None
        mapping = row._mapping
        return Consumed({c.key: mapping[c.key] for c in table.c}, UserView.from_row(row, "u_"))
    row = conn.execute(statements["update"], params).first()
    if row is None:
        return None
    item = dict(row._mapping)
    user = conn.execute(statements["user"], {"p_user_id": item["user_id"]}).first()
    return Consumed(item, UserView.from_row(user))


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
        login = current_user.login_session
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

    def query_authorization_code(self, code: str, client: Client) -> Consumed | None:
        """Consume the code atomically: of ten concurrent redemptions exactly one wins."""
        if not isinstance(code, str) or len(code) > 128:
            return None
        digest, now = sha256_hex(code), utcnow()
        item = consume(CONSUME_CODE, _CODES, {"digest": digest, "p_client_id": client.client_id, "now": now, "p_now": now})
        if item is None:
            replayed = db.session.scalar(
                select(AuthorizationCode).where(AuthorizationCode.code_digest == digest,
                                                AuthorizationCode.used_at.is_not(None))
            )
            if replayed is not None:
                # RFC 6749 §4.1.2: a code used twice revokes what it gave.
                revoke_family(db.session, replayed.family_id, issuer().revocation_lifetime(client))
                record("token.code_replayed", subject=replayed.user_id, client_id=client.client_id)
        return item

    def delete_authorization_code(self, authorization_code: Consumed) -> None:
        pass  # consumed in query_authorization_code; expired rows are purged by `idp purge`

    def authenticate_user(self, authorization_code: Consumed) -> UserView | None:
        return authorization_code.active_user

    def generate_token(self, user: Any = None, scope: Any = None, grant_type: Any = None,
                       expires_in: Any = None, include_refresh_token: bool = True) -> dict[str, Any]:
        code: Any = self.request.authorization_code
        token, self.request.new_refresh_row = issuer().issue(db.session, Authorization(
            client=self.request.client, scope=scope, user=user, sid=code.sid, auth_time=code.auth_time,
            amr=code.amr, nonce=code.nonce, family_id=code.family_id,
        ), include_refresh=include_refresh_token, with_nonce=True)
        return token


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> Consumed | None:
        """Rotate atomically; a token presented again after rotation revokes its whole family."""
        if not isinstance(refresh_token, str) or len(refresh_token) > 128:
            return None
        digest, now = sha256_hex(refresh_token), utcnow()
        item = consume(ROTATE_REFRESH, _TOKENS, {"digest": digest, "now": now, "p_now": now})
        if item is None:
            reused = db.session.scalar(
                select(RefreshToken).where(RefreshToken.token_digest == digest, RefreshToken.rotated_at.is_not(None))
            )
            lifetime = issuer().revocation_lifetime(self.request.client)
            if reused is not None and revoke_family(db.session, reused.family_id, lifetime):
                record("token.refresh_reused", subject=reused.user_id, client_id=reused.client_id,
                       family=reused.family_id)
        return item

    def authenticate_user(self, refresh_token: Consumed) -> UserView:
        if refresh_token.active_user is None:
            raise InvalidGrantError("The account is no longer active.")
        return refresh_token.active_user

    def revoke_old_credential(self, refresh_token: Consumed) -> None:
        pass  # rotated in authenticate_refresh_token

    def generate_token(self, user: Any = None, scope: Any = None, grant_type: Any = None,
                       expires_in: Any = None, include_refresh_token: bool = True) -> dict[str, Any]:
        old: Any = self.request.refresh_token
        token, self.request.new_refresh_row = issuer().issue(db.session, Authorization(
            client=self.request.client, scope=scope, user=user, sid=old.sid, auth_time=old.auth_time,
            amr=old.amr, family_id=old.family_id,
        ), include_refresh=True)
        return token


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]

    def generate_token(self, user: Any = None, scope: Any = None, grant_type: Any = None,
                       expires_in: Any = None, include_refresh_token: bool = True) -> dict[str, Any]:
        client: Client = self.request.client
        token, _ = issuer().issue(db.session, Authorization(client=client, scope=client.get_allowed_scope(scope)),
                                  include_refresh=False)
        return token


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

        if self.claims.get("sid") is not None:  # type: ignore[union-attr]
            # A user's token dies with itself, its family, the account or the session (SPEC §5.3):
            # live_user() checks the four in one statement.
            return live_user(db.session, self.claims) is None  # type: ignore[arg-type]
        return access_token_revoked(db.session, self.claims)  # type: ignore[arg-type]


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
            revoke_family(db.session, token.refresh.family_id, issuer().revocation_lifetime(request.client))
            subject = token.refresh.user_id
        else:
            revoke_access_token(db.session, token.claims or {})
            subject = None
        record("token.revoked", subject=subject, client_id=token.client_id,
               kind="refresh_token" if token.refresh else "access_token")


def remember_client_session(sid: str, client_id: str, user_id: uuid.UUID) -> None:
    """Note that this login session signed in to this client (back-channel logout targets)."""
    insert_unless_present(db.session, ClientSession, {"sid": sid, "client_id": client_id, "user_id": user_id,
                                                      "created_at": utcnow()}, ["sid", "client_id"])


def create_server(app: Flask) -> AuthorizationServer:
    cache = ClientCache(float(app.config["CLIENT_CACHE_SECONDS"]))
    # Module-level listeners on the scoped session: registered once per process, whatever the apps.
    event.listen(db.session, "after_flush", _clients_flushed)
    event.listen(db.session, "before_commit", _clients_committing)
    event.listen(db.session, "after_commit", _clients_committed)
    if app.config["DATABASE_URL"].startswith("postgresql"):
        cache.changes = changes = ClientChanges(app.config["DATABASE_URL"], cache)
        with app.app_context():
            event.listen(db.engine, "engine_disposed", lambda _engine: changes.stop())
    app.extensions["client_cache"] = cache
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
