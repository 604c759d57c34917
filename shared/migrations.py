"""Alembic migrations per app (`apps/<app>/migrations/`), applied by the app's own `db upgrade`.

An app's `migrations/env.py` is two lines: import its models, call `run_env(db.metadata)`. The
shell's own tables (server-side sessions, mail outbox) are created by `upgrade()` beside them, so
the three apps never carry copies of the shell's schema in their revisions.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Connection, MetaData

from shared.tables import shell_metadata


def _config(folder: Path, connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(folder))
    cfg.attributes["connection"] = connection
    return cfg


def _folder(app: Flask) -> Path:
    return Path(app.root_path) / "migrations"


def upgrade(app: Flask, db: SQLAlchemy) -> None:
    """Bring the app's database to the head revision, and the shell's tables with it."""
    with app.app_context(), db.engine.begin() as connection:
        command.upgrade(_config(_folder(app), connection), "head")
        shell_metadata.create_all(connection)


def revision(app: Flask, db: SQLAlchemy, message: str) -> None:
    """Autogenerate a revision from the models (developers: after a model change)."""
    with app.app_context(), db.engine.begin() as connection:
        command.revision(_config(_folder(app), connection), message=message, autogenerate=True)


def _render_shell_type(type_: str, obj: object, autogen_context: Any) -> str | bool:
    """The shell's column types render as `shared.UTCDateTime(...)`: revisions import only the
    shell's public names, as the apps do."""
    if type_ == "type" and type(obj).__module__ == "shared.types":
        autogen_context.imports.add("import shared")
        return f"shared.{obj!r}"
    return False


def is_current(app: Flask, connection: Connection) -> bool:
    """True when the database is at the head revision (`/readyz`)."""
    head = ScriptDirectory.from_config(_config(_folder(app))).get_current_head()
    return MigrationContext.configure(connection).get_current_revision() == head


def run_env(metadata: MetaData, unmanaged: Iterable[str] = ()) -> None:
    """The body of an app's `migrations/env.py`: migrate on the connection `upgrade()` passes.

    :param unmanaged: what the app's revisions create by hand and its models don't describe (a
        full-text table with its shadow tables, a tsvector column and its index), so that
        autogenerate never proposes to drop them.
    """
    hand_made = tuple(unmanaged)

    def include_name(name: str | None, type_: str, _parent: object) -> bool:
        if type_ == "table" and name in shell_metadata.tables:
            return False  # the shell's own, created by upgrade()
        return not (name and any(name == made or name.startswith(f"{made}_") for made in hand_made))

    connection = context.config.attributes["connection"]
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True, compare_type=True,
                      include_name=include_name, render_item=_render_shell_type)
    with context.begin_transaction():
        context.run_migrations()
