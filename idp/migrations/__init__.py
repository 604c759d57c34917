"""Alembic migrations, run by `idp db upgrade` (the app's DATABASE_URL) or from tests."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.orm import Session

from shared.db import make_engine

HERE = Path(__file__).parent


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate up to `revision`; creates the SQLite file's directory (var/) when missing.

    At head, the reference data every install needs (applications, roles, profiles: SPEC §3)
    is added where missing, so a fresh database is usable at once.
    """
    if database_url.startswith("sqlite:///") and not database_url.startswith("sqlite:///:memory:"):
        Path(database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(database_url), revision)
    if revision == "head":
        from idp.core.catalogue import ensure_catalogue

        engine = make_engine(database_url)
        try:
            with Session(engine) as session:
                ensure_catalogue(session)
                session.commit()
        finally:
            engine.dispose()


def downgrade(database_url: str, revision: str = "base") -> None:
    """Migrate down to `revision` (`base`: drop every table)."""
    command.downgrade(alembic_config(database_url), revision)


def head_revision() -> str | None:
    """The revision the code expects."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(database_url: str) -> str | None:
    """The revision the database is at (None: never migrated)."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
