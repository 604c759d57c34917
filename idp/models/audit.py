"""The audit trail (SPEC §4.5): one row per security-relevant event."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.models.base import Base, utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    event: Mapped[str] = mapped_column(String(64), index=True)
    # No foreign keys: the trail outlives deleted accounts (pseudonymised, SPEC §4.1).
    actor_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    subject_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    structure_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    client_id: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)

    __table_args__ = (Index("ix_audit_events_subject_at", "subject_id", "at"),)
