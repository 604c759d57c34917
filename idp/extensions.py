"""Extension objects: created here, bound to an app in create_app(), state kept in app.extensions."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf import CSRFProtect
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, scoped_session, sessionmaker
from werkzeug.exceptions import RequestEntityTooLarge


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


class _State:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.session = scoped_session(sessionmaker(engine, expire_on_commit=False))


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL and serialised writers so concurrent requests wait, not fail."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": 30, "isolation_level": None, "check_same_thread": False},
            **kwargs,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        # pysqlite's deferred BEGIN lets two readers both try to upgrade and one fails at once
        # with "database is locked"; BEGIN IMMEDIATE makes the second one wait its turn.
        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, **kwargs)


def client_ip() -> str:
    """The peer address (the proxy in front sets it via ProxyFix when configured)."""
    return get_remote_address() or "unknown"


db = Database()
csrf = CSRFProtect()
babel = Babel()
limiter = Limiter(key_func=client_ip, default_limits=[], headers_enabled=True)


def locale_selector() -> str:
    """ui_locales (OIDC), then the choice remembered in the session, then the browser, then French."""
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
    return request.accept_languages.best_match(languages) or current_app.config["BABEL_DEFAULT_LOCALE"]
