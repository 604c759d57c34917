"""UserInfo (OIDC Core §5.3): one function answers it, for a thin WSGI layer in front of Flask and
for the Flask view alike.

The layer serves the requests relying parties send (GET or POST, the token in `Authorization:
Bearer`, or alone in a form body) without a request context, routing, hooks or the ORM, which were
about half of userinfo's CPU (issue 18, bench/README.md). Anything else (a query
string, another `Authorization` scheme, a body it does not recognise, HEAD…) goes on to Flask,
whose guard and view answer it with the same function, so no rule lives in two places.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from flask import Flask
from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from idp.extensions import db
from idp.oidc.claims import ClaimsCache, user_claims
from idp.oidc.provider import ClientCache
from idp.oidc.tokens import MAX_TOKEN_LENGTH, TokenIssuer, live_user_and_structure
from shared.bounds import bounded_int
from shared.db import IDLE_PING_SECONDS, answers_ping
from shared.web import CSP, SECURITY_HEADERS

log = logging.getLogger(__name__)

PATH = "/oauth/userinfo"
FORM = "application/x-www-form-urlencoded"
STATUS = {200: "200 OK", 401: "401 Unauthorized", 403: "403 Forbidden"}
# The form body the layer reads itself: the token alone, in characters a JWT has (RFC 7515 §7.1).
PLAIN_FORM = re.compile(rb"access_token=([A-Za-z0-9._~-]*)")
MAX_PLAIN_FORM = len("access_token=") + MAX_TOKEN_LENGTH


@dataclass(frozen=True, slots=True)
class Answer:
    """A whole HTTP answer: status, the body's bytes and every header (the shell's list included)."""

    status: int
    body: bytes
    headers: list[tuple[str, str]]


def json_bytes(value: Any) -> bytes:
    """JSON as Flask's `jsonify` writes it (sorted keys, ASCII, compact, a final newline): the layer
    and the view send the same bytes."""
    return (json.dumps(value, sort_keys=True, ensure_ascii=True, separators=(",", ":")) + "\n").encode()


def _answer(status: int, body: dict[str, Any], *extra: tuple[str, str]) -> Answer:
    data = json_bytes(body)
    # Personal data, and errors about a credential: never stored by a cache (OIDC Core §5.3.2).
    return Answer(status, data, [("Content-Type", "application/json"), ("Content-Length", str(len(data))),
                                 ("Cache-Control", "no-store"), *extra, ("Content-Security-Policy", CSP),
                                 *SECURITY_HEADERS.items()])


def _bearer_error(error: str, description: str, status: int = 401) -> Answer:
    """RFC 6750 §3: the error in `WWW-Authenticate` and in the body."""
    return _answer(status, {"error": error, "error_description": description},
                   ("WWW-Authenticate", f'Bearer error="{error}", error_description="{description}"'))


# The refusals never change: built once.
INVALID_TOKEN = _bearer_error("invalid_token", "The access token is invalid, expired or revoked.")
INSUFFICIENT_SCOPE = _bearer_error("insufficient_scope", "The token lacks the 'openid' scope.", 403)
UNKNOWN_CLIENT = _bearer_error("invalid_token", "Unknown client.")


def presented_token(authorization: str | None, form_token: str | None) -> str | None:
    """The access token of a UserInfo request: `Authorization: Bearer` (RFC 6750 §2.1), else the
    form body's `access_token` (§2.2, POST only; the caller reads it)."""
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    return form_token or None


def userinfo_answer(conn: Connection | Session, token: str | None, issuer: TokenIssuer, clients: ClientCache,
                    claims_cache: ClaimsCache) -> Answer:
    """The UserInfo answer for this access token: its claims, or the RFC 6750 error.

    Freshness (SPEC §5.3): one statement reads the account (active), the token's and its family's
    revocation, the login session's, and the session's current structure; the structure claims come
    from `claims_cache`, keyed on the account's `updated_at` read in that statement.

    :raises sqlalchemy.exc.DBAPIError: the database failed (the caller answers 503).
    """
    claims = issuer.verify(conn, token) if token else None
    user, current = live_user_and_structure(conn, claims) if claims else (None, None)  # type: ignore[arg-type]
    if user is None or claims is None:
        return INVALID_TOKEN
    scopes = set(str(claims.get("scope", "")).split())
    if "openid" not in scopes:
        return INSUFFICIENT_SCOPE
    client_id = claims.get("client_id")
    client = clients.get(conn, client_id) if isinstance(client_id, str) else None  # type: ignore[arg-type]
    if client is None:
        return UNKNOWN_CLIENT
    sid = claims.get("sid")
    return _answer(200, user_claims(conn, user, scopes, client, sid if isinstance(sid, str) else None,  # type: ignore[arg-type]
                                    current, claims_cache))


class _Held:
    """One request thread's connection. When the thread ends (a development server starts one per
    request), its thread-local storage goes and this returns the connection to the pool."""

    __slots__ = ("conn", "used_at", "__weakref__")

    def __init__(self) -> None:
        self.conn: Connection | None = None
        self.used_at = 0.0

    def drop(self, *, hard: bool = False) -> None:
        """Give the connection back to the pool, or close it for good (`hard`: its pool is gone)."""
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # a broken connection: the pool discards it
                conn.invalidate() if hard else conn.close()

    def __del__(self) -> None:
        self.drop()


class HeldConnections:
    """PostgreSQL: each request thread keeps one autocommit connection of the read-only engine
    between requests, instead of a checkout and a return per request (the pool's bookkeeping and
    the isolation level set and reset were a fifth of userinfo's CPU). Pinged after sitting idle,
    as the pool's own connections are (`shared.db.ping_when_idle`); any failure drops it."""

    def __init__(self, engine: Engine, base: Engine) -> None:
        """`engine` (the read-only options of) `base`, whose disposal (tests, commands, shutdown)
        closes every held connection."""
        self.engine = engine
        self.held = engine.dialect.name == "postgresql"
        self._local = threading.local()
        self._every: weakref.WeakSet[_Held] = weakref.WeakSet()
        if self.held:
            event.listen(base, "engine_disposed", lambda _engine: self.drop_all())

    def drop_all(self) -> None:
        for held in list(self._every):
            held.drop(hard=True)

    @contextlib.contextmanager
    def connection(self) -> Iterator[Connection]:
        if not self.held:  # SQLite: a connection per request (a held one would keep its snapshot)
            with self.engine.connect() as conn:
                yield conn
            return
        held: _Held | None = getattr(self._local, "held", None)
        if held is None:
            held = self._local.held = _Held()
            self._every.add(held)
        conn = held.conn
        if conn is not None and time.monotonic() - held.used_at > IDLE_PING_SECONDS \
                and not answers_ping(self.engine, conn.connection.dbapi_connection):
            held.drop(hard=True)  # idle, and the server or the link went away meanwhile: as the pool does
            conn = None
        if conn is None:
            conn = held.conn = self.engine.connect()
        try:
            yield conn
            if conn.in_transaction():  # a cache miss ran statements through Core: nothing to undo
                conn.rollback()        # in autocommit, but Core's own bookkeeping ends here
        except BaseException:
            held.drop()
            raise
        held.used_at = time.monotonic()


@dataclass(frozen=True)
class Userinfo:
    """What the answer needs from the app, gathered once (no app context on the layer's path)."""

    connections: HeldConnections  # of the read-only engine of `read_session()`: no BEGIN/ROLLBACK on PostgreSQL
    issuer: TokenIssuer
    clients: ClientCache
    claims_cache: ClaimsCache

    def answer(self, conn: Connection | Session, token: str | None) -> Answer:
        return userinfo_answer(conn, token, self.issuer, self.clients, self.claims_cache)


class UserinfoLayer:
    """WSGI middleware: `/oauth/userinfo` answered before Flask for the requests relying parties
    send; every other request (and every unusual userinfo one) goes on to `wrapped`."""

    def __init__(self, app: Flask, wrapped: Any) -> None:
        self.app, self.wrapped = app, wrapped
        self.userinfo: Userinfo = app.extensions["userinfo"]

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH or environ.get("QUERY_STRING"):
            return self.wrapped(environ, start_response)
        plain, token = self._plain_request(environ)
        if not plain:
            return self.wrapped(environ, start_response)
        try:
            with self.userinfo.connections.connection() as conn:
                answer = self.userinfo.answer(conn, token)
        except (DBAPIError, PoolTimeout) as exc:
            return self._handled_by_flask(environ, start_response, exc)
        start_response(STATUS[answer.status], answer.headers)
        return [answer.body]

    @staticmethod
    def _plain_request(environ: dict[str, Any]) -> tuple[bool, str | None]:
        """(True, the token) for a GET or POST the layer answers; (False, None) for Flask. A body
        read here is put back for Flask."""
        authorization = environ.get("HTTP_AUTHORIZATION")
        if authorization and authorization[:7].lower() != "bearer ":
            return False, None  # another scheme: the guard's (e.g. undecodable Basic credentials)
        length = environ.get("CONTENT_LENGTH") or "0"
        method = environ.get("REQUEST_METHOD")
        if environ.get("HTTP_TRANSFER_ENCODING") or method not in ("GET", "POST"):
            return False, None
        if length == "0":
            return True, presented_token(authorization, None)
        size = bounded_int(length, 1, MAX_PLAIN_FORM)  # ASCII digits only: "²" passes isdigit(), not int()
        if method != "POST" or size is None:
            return False, None
        body = environ["wsgi.input"].read(size)
        environ["wsgi.input"] = io.BytesIO(body)  # whoever reads next (Flask) reads it all again
        content_type = (environ.get("CONTENT_TYPE") or "").partition(";")[0].strip().lower()
        found = PLAIN_FORM.fullmatch(body) if content_type == FORM else None
        if found is None:
            return False, None
        return True, presented_token(authorization, found.group(1).decode("ascii"))

    def _handled_by_flask(self, environ: dict[str, Any], start_response: Any, exc: Exception) -> Iterable[bytes]:
        """A database failure answered by the app's own handler (503 with Retry-After,
        `temporarily_unavailable`, SPEC §10.4), with its after-request headers: one error path."""
        with self.app.request_context(environ):
            response = self.app.finalize_request(self.app.handle_user_exception(exc), from_error_handler=True)
        return response(environ, start_response)


def init_app(app: Flask) -> None:
    """Answer userinfo before Flask (called by `idp.oidc.views.init_app`, once the issuer and the
    caches exist)."""
    with app.app_context():
        connections = HeldConnections(app.extensions["read_engine"], db.engine)
    app.extensions["userinfo"] = Userinfo(connections, app.extensions["token_issuer"], app.extensions["client_cache"],
                                          app.extensions["claims_cache"])
    app.wsgi_app = UserinfoLayer(app, app.wsgi_app)  # type: ignore[method-assign]
