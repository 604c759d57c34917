"""The apps' database layer: Flask-SQLAlchemy with typed SQLAlchemy 2.0 models (STYLE §11).

Each app declares `db = make_db()` in its `models.py`; the factory binds it with
the engine options below. SQLite (the embedded default) gets WAL, foreign keys, a busy timeout and
serialised writers; PostgreSQL gets `pool_pre_ping` so a restarted server costs no request.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Engine, MetaData, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import registry as orm_registry

from shared.types import UTCDateTime

# Constraint names Alembic can refer to (and SQLite batch migrations can rebuild).
NAMING = {"ix": "ix_%(column_0_label)s", "uq": "uq_%(table_name)s_%(column_0_name)s",
          "ck": "ck_%(table_name)s_%(constraint_name)s", "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
          "pk": "pk_%(table_name)s"}


def make_db() -> SQLAlchemy:
    """An app's Flask-SQLAlchemy object, with a metadata of its own (apps never share tables, even
    in one process) where `Mapped[datetime]` is an aware UTC datetime."""

    class Model(DeclarativeBase):
        registry = orm_registry(metadata=MetaData(naming_convention=NAMING),
                                type_annotation_map={datetime: UTCDateTime()})

    return SQLAlchemy(model_class=Model)


def database_settings(url: str) -> dict[str, Any]:
    """Flask-SQLAlchemy settings for `url`; a relative SQLite path stays relative to the working
    directory (`var/…`, as `make run` creates it), not to Flask's instance folder."""
    if not url.startswith("sqlite"):
        return {"SQLALCHEMY_DATABASE_URI": url, "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True}}
    parsed = make_url(url)
    database = parsed.database
    if database and database != ":memory:":
        path = Path(database).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        url = parsed.set(database=str(path)).render_as_string(hide_password=False)
    return {"SQLALCHEMY_DATABASE_URI": url, "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": SQLITE_CONNECT_ARGS}}


def init_database(app: Flask, db: SQLAlchemy) -> Engine:
    """Bind `db` to `app` with the settings of its DATABASE_URL; returns the engine."""
    app.config.update(database_settings(app.config["DATABASE_URL"]))
    db.init_app(app)
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "sqlite":
        configure_sqlite(engine)

    @app.after_request
    def end_transaction(response: Any) -> Any:
        # Before the session interface saves the server-side session: an open SQLite transaction
        # (BEGIN IMMEDIATE) would make that write wait on the same request.
        db.session.remove()
        return response

    return engine


# A 30 s busy timeout; transactions begun by SQLAlchemy (see configure_sqlite), not by pysqlite.
SQLITE_CONNECT_ARGS = {"timeout": 30, "isolation_level": None, "check_same_thread": False}


def configure_sqlite(engine: Engine) -> None:
    """WAL, foreign keys, and writers that wait for each other (the IdP's engine and the apps')."""
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


def database_reachable(engine: Engine) -> bool:
    """One round trip (`/readyz`)."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any failure means: not ready
        return False
    return True
