"""Declarative base, naming convention (stable Alembic names) and the UTC timestamp type."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, MetaData
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import registry as orm_registry

from shared.types import UTCDateTime, utcnow

__all__ = ["Base", "JSONType", "UTCDateTime", "new_uuid", "utcnow"]


def new_uuid() -> uuid.UUID:
    return uuid.uuid4()


# JSONB on PostgreSQL, JSON text elsewhere.
JSONType = JSON().with_variant(postgresql.JSONB(), "postgresql")


class Base(DeclarativeBase):
    # One registry carrying the metadata and the type map: Flask-SQLAlchemy builds `db.Model` from
    # this class (idp.extensions) and shares them, where a per-class type map would be refused.
    registry = orm_registry(
        metadata=MetaData(
            naming_convention={
                "ix": "ix_%(table_name)s_%(column_0_N_name)s",
                "uq": "uq_%(table_name)s_%(column_0_N_name)s",
                "ck": "ck_%(table_name)s_%(constraint_name)s",
                "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
                "pk": "pk_%(table_name)s",
            }
        ),
        type_annotation_map={datetime: UTCDateTime(), dict[str, Any]: JSONType, list[str]: JSONType},
    )
