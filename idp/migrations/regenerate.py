"""Regenerate the initial revision from the models (the schema is unreleased: one revision).

Once a release ships, switch to `alembic revision --autogenerate` for each change instead.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from alembic import command

from idp.migrations import HERE, alembic_config


def main() -> None:
    for old in (HERE / "versions").glob("*.py"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = alembic_config(f"sqlite:///{Path(tmp) / 'schema.sqlite3'}")
        command.revision(cfg, message="initial schema", autogenerate=True, rev_id="0001")
    print("idp/migrations/versions regenerated")


if __name__ == "__main__":
    main()
