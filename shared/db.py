"""One database layer for the IdP and the apps: Flask-SQLAlchemy with typed SQLAlchemy 2.0 models.

Each app declares `db = make_db()` in its `models.py`, the IdP `make_db(Base, ...)` with its own
declarative base; both are bound by `init_database()` with the engine options below, one piece of
code for the four services. SQLite (the embedded default) gets WAL, foreign keys, a busy timeout and
serialised writers; PostgreSQL gets a pool and a ping for the connections that sat idle.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Engine, MetaData, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import registry as orm_registry

from shared.types import UTCDateTime

# Constraint names Alembic can refer to (and SQLite batch migrations can rebuild).
NAMING = {"ix": "ix_%(column_0_label)s", "uq": "uq_%(table_name)s_%(column_0_name)s",
          "ck": "ck_%(table_name)s_%(constraint_name)s", "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
          "pk": "pk_%(table_name)s"}

# A pooled PostgreSQL connection idle for longer than this is pinged before use (see ping_when_idle).
IDLE_PING_SECONDS = 10.0
POOL_SIZE, MAX_OVERFLOW = 10, 20


def make_db(model_class: type[DeclarativeBase] | None = None, **session_options: Any) -> SQLAlchemy:
    """A service's Flask-SQLAlchemy object. An app's has a metadata of its own (apps never share
    tables, even in one process) where `Mapped[datetime]` is an aware UTC datetime; the IdP passes
    its own declarative base (`model_class`).

    :param session_options: for `db.session`'s sessionmaker (the IdP: `expire_on_commit=False`).
    """
    if model_class is None:
        class Model(DeclarativeBase):
            registry = orm_registry(metadata=MetaData(naming_convention=NAMING),
                                    type_annotation_map={datetime: UTCDateTime()})

        model_class = Model
    return SQLAlchemy(model_class=model_class, session_options=session_options)


def engine_options(url: str) -> dict[str, Any]:
    """create_engine() options for `url`, whether Flask-SQLAlchemy or a migration creates the engine."""
    if url.startswith("sqlite"):
        return {"connect_args": dict(SQLITE_CONNECT_ARGS)}
    return {"pool_size": POOL_SIZE, "max_overflow": MAX_OVERFLOW}


def configure_engine(engine: Engine) -> None:
    """What options cannot say: SQLite's pragmas and serialised writers, PostgreSQL's idle ping."""
    if engine.dialect.name == "sqlite":
        configure_sqlite(engine)
    else:
        ping_when_idle(engine)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine outside any app (migrations, CLI set-up), configured as the apps' are."""
    engine = create_engine(url, **{**engine_options(url), **kwargs})
    configure_engine(engine)
    return engine


def database_settings(url: str) -> dict[str, Any]:
    """Flask-SQLAlchemy settings for `url`; a relative SQLite path stays relative to the working
    directory (`var/…`, as `make run` creates it), not to Flask's instance folder."""
    if url.startswith("sqlite"):
        parsed = make_url(url)
        database = parsed.database
        if database and database != ":memory:":
            path = Path(database).resolve()
            path.parent.mkdir(parents=True, exist_ok=True)
            url = parsed.set(database=str(path)).render_as_string(hide_password=False)
    return {"SQLALCHEMY_DATABASE_URI": url, "SQLALCHEMY_ENGINE_OPTIONS": engine_options(url)}


def init_database(app: Flask, db: SQLAlchemy) -> Engine:
    """Bind `db` to `app` with the settings of its DATABASE_URL (and any SQLALCHEMY_BINDS the
    service set); returns the default engine."""
    app.config.update(database_settings(app.config["DATABASE_URL"]))
    db.init_app(app)
    with app.app_context():
        for engine in db.engines.values():
            configure_engine(engine)
        return db.engine


# A 30 s busy timeout; transactions begun by SQLAlchemy (see configure_sqlite), not by pysqlite.
SQLITE_CONNECT_ARGS = {"timeout": 30, "isolation_level": None, "check_same_thread": False}


def configure_sqlite(engine: Engine) -> None:
    """WAL, foreign keys, and writers that wait for each other."""
    event.listen(engine, "connect", _sqlite_pragmas)
    # pysqlite's deferred BEGIN lets two readers both try to upgrade and one fails at once with
    # "database is locked"; BEGIN IMMEDIATE makes the second one wait its turn (busy timeout).
    event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before use only when it sat idle: a restarted server or a dropped
    link is found before a request uses it. (`pool_pre_ping` would cost one round trip on every
    checkout.) A connection broken while busy fails one request, and SQLAlchemy renews the pool."""

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        returned_at = record.info.get("returned_at")
        if returned_at is not None and time.monotonic() - returned_at > IDLE_PING_SECONDS \
                and not answers_ping(engine, dbapi_conn):
            raise DisconnectionError()


def answers_ping(engine: Engine, dbapi_conn: Any) -> bool:
    """One round trip on a connection that sat idle: False if the server or the link is gone."""
    try:
        engine.dialect.do_ping(dbapi_conn)
    except Exception:  # noqa: BLE001 - any failure means: use another connection
        return False
    return True


def database_reachable(engine: Engine) -> bool:
    """One round trip (`/readyz`)."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any failure means: not ready
        return False
    return True
