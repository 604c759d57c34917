"""The Alembic migrations (SPEC §10.2): they build exactly the models' schema, up and down."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

import idp.models
from idp.extensions import db
from idp.migrations import (
    alembic_config,
    current_revision,
    downgrade,
    head_revision,
    upgrade,
)
from shared.db import make_engine


def schema_diffs(database_url: str) -> list[Any]:
    """What `alembic revision --autogenerate` would write: empty when migrations match the models
    (the tables of the IdP's Flask-SQLAlchemy layer, which are its declarative base's)."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, db.metadata)
    finally:
        engine.dispose()


def tables(database_url: str) -> set[str]:
    engine = make_engine(database_url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_the_database_layer_maps_every_model() -> None:
    """Flask-SQLAlchemy's `db` shares the typed models' registry: one metadata, every table."""
    assert db.metadata is idp.models.Base.metadata
    assert db.Model.registry is idp.models.Base.registry
    assert {"users", "login_sessions", "oauth_clients", "memberships"} <= set(db.metadata.tables)


def test_one_linear_history() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1, "branched migrations: merge them"
    assert head_revision() is not None


def test_migrations_build_the_models_schema(database_url: str) -> None:
    """On the suite's database (SQLite, or PostgreSQL with IDP_TEST_DATABASE_URL)."""
    upgrade(database_url)
    assert current_revision(database_url) == head_revision()
    diffs = schema_diffs(database_url)
    assert diffs == [], "models changed without a migration: run `python -m idp.migrations.regenerate`"


def test_upgrade_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'var' / 'idp.sqlite3'}"
    assert current_revision(f"sqlite:///{tmp_path / 'empty.sqlite3'}") is None
    upgrade(url)
    before = tables(url)
    upgrade(url)
    assert tables(url) == before
    assert current_revision(url) == head_revision()
    assert schema_diffs(url) == []


def test_downgrade_to_base_then_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'idp.sqlite3'}"
    upgrade(url)
    model_tables = set(idp.models.Base.metadata.tables)
    assert model_tables <= tables(url)
    downgrade(url, "base")
    assert tables(url) == {"alembic_version"}
    assert current_revision(url) is None
    upgrade(url)
    assert model_tables <= tables(url)
    assert schema_diffs(url) == []


def test_offline_sql_for_postgresql(tmp_path: Path, capsys: Any) -> None:
    """`alembic upgrade --sql`: the script a DBA reviews before a production upgrade."""
    from alembic import command

    command.upgrade(alembic_config("postgresql+psycopg://dba@db.invalid/portail"), "head", sql=True)
    sql = capsys.readouterr().out
    for table in idp.models.Base.metadata.tables:
        assert f"CREATE TABLE {table} " in sql
    assert "JSONB" in sql
