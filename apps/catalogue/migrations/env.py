"""Alembic environment of the Catalogue: its models' metadata, on the connection `db upgrade` opens."""

from apps.catalogue.models import db
from shared import run_env

run_env(db.metadata, unmanaged=["public_action_fts", "search_vector", "ix_public_actions_fts"])
