"""Alembic environment of REPERNET: its models' metadata, on the connection `db upgrade` opens."""

from apps.repernet.models import db
from shared import run_env

run_env(db.metadata)
