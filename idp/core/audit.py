"""audit(): the one way to record a security event (SPEC §4.5)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from idp.core.security import Origin
from idp.models import AuditEvent


def audit(
    session: Session,
    event: str,
    origin: Origin,
    *,
    actor: uuid.UUID | None = None,
    subject: uuid.UUID | None = None,
    structure: uuid.UUID | None = None,
    client_id: str | None = None,
    **details: Any,
) -> AuditEvent:
    """Add an audit record to the session (the caller's commit makes it durable with the change).

    :param event: dotted name, e.g. ``login.failure``, ``token.issued``.
    :param details: JSON-serialisable context; never passwords or tokens.
    """
    record = AuditEvent(
        event=event,
        actor_id=actor,
        subject_id=subject,
        structure_id=structure,
        client_id=client_id,
        ip=origin.ip,
        user_agent=(origin.user_agent or "")[:300] or None,
        details=details,
    )
    session.add(record)
    return record
