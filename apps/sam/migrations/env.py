"""Alembic environment of SAM: its models' metadata, on the connection `db upgrade` opens."""

from apps.sam.models import db
from shared import run_env

run_env(db.metadata, unmanaged=["consultation_fts", "ix_consultations_search"])
