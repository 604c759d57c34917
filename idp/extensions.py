"""Extension objects: created here, bound to an app in create_app(), state kept in app.extensions."""

from __future__ import annotations

import time
from typing import Any

from flask import Flask, current_app, request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf import CSRFProtect
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, scoped_session, sessionmaker
from werkzeug.exceptions import RequestEntityTooLarge

from shared.db import SQLITE_CONNECT_ARGS, configure_sqlite

# A pooled PostgreSQL connection idle for longer than this is pinged before use (see make_engine).
IDLE_PING_SECONDS = 10.0
# Connections the audit pool keeps: one per request thread of a worker (`idp serve` runs 4), so
# concurrent client_credentials requests reuse them rather than open and close a PostgreSQL session
# each (an overflow connection is closed when it is returned; a new session costs the server a fork).
AUDIT_POOL_SIZE = 4


class Database:
    """One engine and one scoped session per app; the session ends with the app context."""

    def init_app(self, app: Flask) -> None:
        engine = make_engine(app.config["DATABASE_URL"])
        app.extensions["db"] = _State(engine)

        @app.teardown_appcontext
        def remove_session(_exc: BaseException | None) -> None:
            app.extensions["db"].session.remove()

    @property
    def session(self) -> Session:
        return current_app.extensions["db"].session()

    @property
    def engine(self) -> Engine:
        return current_app.extensions["db"].engine

    @property
    def is_postgres(self) -> bool:
        return current_app.extensions["db"].engine.dialect.name == "postgresql"

    def read_session(self) -> Session:
        """A session for read-only requests (userinfo): on PostgreSQL each statement runs on its own,
        with no BEGIN and no ROLLBACK round trips; elsewhere a plain session. Close it after use."""
        state = current_app.extensions["db"]
        return Session(state.read_engine, expire_on_commit=False)

    def audit_connection(self) -> Any:
        """PostgreSQL only: an autocommit connection with `synchronous_commit = off`, for an audit row
        that is a request's only write (client_credentials): one round trip, no wait for the WAL
        flush; the row is visible at once and durable unless the server crashes in the next few
        hundred milliseconds (PostgreSQL's asynchronous commit). Never for codes or refresh tokens."""
        return current_app.extensions["db"].audit_engine.connect()


class _State:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.session = scoped_session(sessionmaker(engine, expire_on_commit=False))
        postgres = engine.dialect.name == "postgresql"
        self.read_engine = engine.execution_options(isolation_level="AUTOCOMMIT") if postgres else engine
        self._audit_engine: Engine | None = None
        # The audit engine has its own pool: closed with the main one (no connection left open).
        event.listen(engine, "engine_disposed", lambda _engine: self._audit_engine and self._audit_engine.dispose())

    @property
    def audit_engine(self) -> Engine:
        if self._audit_engine is None:
            self._audit_engine = make_engine(
                self.engine.url.render_as_string(hide_password=False), pool_size=AUDIT_POOL_SIZE, max_overflow=8,
                isolation_level="AUTOCOMMIT", connect_args={"options": "-c synchronous_commit=off"})
        return self._audit_engine


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL and serialised writers so concurrent requests wait, not fail."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args=SQLITE_CONNECT_ARGS, **kwargs)
        configure_sqlite(engine)  # the shell's: WAL, foreign keys, serialised writers
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    engine = create_engine(url, **kwargs)

    # pool_pre_ping would cost one round trip on every request; ping only a connection that sat
    # idle in the pool (a restarted server or a dropped link is found before use). A connection
    # broken while busy fails one request, and SQLAlchemy then renews the whole pool.
    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        returned_at = record.info.get("returned_at")
        if returned_at is not None and time.monotonic() - returned_at > IDLE_PING_SECONDS:
            try:
                engine.dialect.do_ping(dbapi_conn)
            except Exception as exc:  # noqa: BLE001 - any failure means: use another connection
                raise DisconnectionError() from exc

    return engine


def client_ip() -> str:
    """The peer address (the proxy in front sets it via ProxyFix when configured)."""
    return get_remote_address() or "unknown"


db = Database()
csrf = CSRFProtect()
babel = Babel()
limiter = Limiter(key_func=client_ip, default_limits=[], headers_enabled=True)

# Paths with no rate limit of their own: the limiter does nothing for them, not even look.
# Introspection is not among them: it authenticates clients (failures are limited, issue 15).
UNLIMITED_PREFIXES = ("/.well-known/", "/oauth/jwks", "/oauth/userinfo", "/static/")


@limiter.request_filter
def _unlimited() -> bool:
    return request.path.startswith(UNLIMITED_PREFIXES)


def locale_selector() -> str:
    """ui_locales (OIDC), then the choice remembered in the session (or the account, at login) or the
    switcher's cookie, then the browser, then French."""
    from flask import session

    languages = current_app.config["LANGUAGES"]
    try:
        ui_locales = request.values.get("ui_locales") or ""
    except RequestEntityTooLarge:  # rendering the 413 page itself must not read the body again
        ui_locales = request.args.get("ui_locales") or ""
    for tag in ui_locales.split():
        base = tag.split("-")[0].lower()
        if base in languages:
            session["lang"] = base
            return base
    if session.get("lang") in languages:
        return session["lang"]
    chosen = request.cookies.get(current_app.config["LANG_COOKIE"])  # the switcher's choice, kept by this browser
    if chosen in languages:
        return chosen
    return request.accept_languages.best_match(languages) or current_app.config["BABEL_DEFAULT_LOCALE"]
