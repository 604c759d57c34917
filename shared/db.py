"""A small database helper the relying parties share: one engine and one scoped session per app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session, sessionmaker


class Database:
    """Binds an engine and a scoped session to each app (state in `app.extensions[name]`).

    :param name: the key in `app.extensions`, so two apps in one process never share state.
    """

    def __init__(self, name: str = "rp_db") -> None:
        self.name = name

    def init_app(self, app: Flask, url: str, base: type[DeclarativeBase] | None = None) -> Engine:
        """Create the engine for `url`, the tables of `base` when given, and end sessions per request."""
        engine = make_engine(url)
        app.extensions[self.name] = _State(engine)
        if base is not None:
            base.metadata.create_all(engine)

        @app.after_request
        def end_transaction(response: Response) -> Response:
            # Before the session interface saves the server-side session: an open SQLite
            # transaction (BEGIN IMMEDIATE) would make that write wait for ever on the same request.
            app.extensions[self.name].session.remove()
            return response

        @app.teardown_appcontext
        def remove_session(_exc: BaseException | None) -> None:
            app.extensions[self.name].session.remove()

        return engine

    @property
    def session(self) -> Session:
        return current_app.extensions[self.name].session()

    @property
    def engine(self) -> Engine:
        return current_app.extensions[self.name].engine

    def dispose(self, app: Flask) -> None:
        """Close the app's connections (tests, shutdown)."""
        state = app.extensions[self.name]
        state.session.remove()
        state.engine.dispose()


class _State:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.session = scoped_session(sessionmaker(engine, expire_on_commit=False))


def make_engine(url: str) -> Engine:
    """An engine; SQLite files get their folder, WAL, and writers that wait for each other."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "isolation_level": None, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # Without it two deferred transactions may both try to write and one fails at once.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
