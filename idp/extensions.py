"""Extension objects: created here, bound to an app in create_app(), state kept in app.extensions."""

from __future__ import annotations

from flask import Flask, current_app, request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf import CSRFProtect
from sqlalchemy import Connection, event
from sqlalchemy.orm import Session
from werkzeug.exceptions import RequestEntityTooLarge

from idp.models import Base
from shared.db import init_database, make_db

# Connections the audit pool keeps: one per request thread of a worker (`idp serve` runs 4), so
# concurrent client_credentials requests reuse them rather than open and close a PostgreSQL session
# each (an overflow connection is closed when it is returned; a new session costs the server a fork).
AUDIT_POOL_SIZE = 4

# Typed SQLAlchemy 2.0 models on the IdP's own declarative base; `db.session` ends with the app context.
db = make_db(Base, expire_on_commit=False)


def init_db(app: Flask) -> None:
    """Bind `db` (the shell's database layer, with the engine options of the apps). On PostgreSQL
    the audit connection is a second bind of its own."""
    url = app.config["DATABASE_URL"]
    if url.startswith("postgresql"):
        app.config["SQLALCHEMY_BINDS"] = {"audit": {
            "url": url, "pool_size": AUDIT_POOL_SIZE, "max_overflow": 8, "isolation_level": "AUTOCOMMIT",
            "connect_args": {"options": "-c synchronous_commit=off"}}}
    engine = init_database(app, db)
    postgres = engine.dialect.name == "postgresql"
    # Shares the engine's pool; built once, not per request.
    app.extensions["read_engine"] = engine.execution_options(isolation_level="AUTOCOMMIT") if postgres else engine
    if postgres:
        with app.app_context():
            audit = db.engines["audit"]
        # Closed with the main pool (tests and CLI commands dispose it): no connection left open.
        event.listen(engine, "engine_disposed", lambda _engine: audit.dispose())


def is_postgres() -> bool:
    return db.engine.dialect.name == "postgresql"


def read_session() -> Session:
    """A session for read-only requests (userinfo): on PostgreSQL each statement runs on its own,
    with no BEGIN and no ROLLBACK round trips; elsewhere a plain session. Close it after use."""
    return Session(current_app.extensions["read_engine"], expire_on_commit=False)


def audit_connection() -> Connection:
    """PostgreSQL only: an autocommit connection with `synchronous_commit = off`, for an audit row
    that is a request's only write (client_credentials): one round trip, no wait for the WAL
    flush; the row is visible at once and durable unless the server crashes in the next few
    hundred milliseconds (PostgreSQL's asynchronous commit). Never for codes or refresh tokens."""
    return db.engines["audit"].connect()


def client_ip() -> str:
    """The peer address (the proxy in front sets it via ProxyFix when configured)."""
    return get_remote_address() or "unknown"


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
