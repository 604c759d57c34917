"""audit(): the one way to record a security event (SPEC §4.5)."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from idp.core.security import Origin
from idp.models import AuditEvent, User
from shared.timefmt import PARIS


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


def events_query(*, structure_id: uuid.UUID | None = None, event: str | None = None,
                 person: uuid.UUID | None = None, since: datetime | None = None,
                 until: datetime | None = None) -> Select[tuple[AuditEvent]]:
    """Audit events, newest first, filtered; `structure_id` confines a structure admin's view.

    :param event: a prefix such as ``membership.`` or ``login.failure``.
    :param person: events where this account is the actor or the subject.
    """
    query = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    if structure_id is not None:
        query = query.where(AuditEvent.structure_id == structure_id)
    if event:
        query = query.where(AuditEvent.event.startswith(event, autoescape=True))
    if person is not None:
        query = query.where(or_(AuditEvent.actor_id == person, AuditEvent.subject_id == person))
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if until is not None:
        query = query.where(AuditEvent.at < until)
    return query


# The date with its zone: Europe/Paris, the offset in the value (2026-12-07T07:30:00+01:00).
CSV_COLUMNS = ["date", "evenement", "auteur", "personne", "structure", "application", "ip", "navigateur", "details"]


def events_csv(session: Session, events: Iterable[AuditEvent]) -> str:
    """The events as CSV (`;`-separated, as French spreadsheets expect), people by e-mail."""
    events = list(events)
    ids = {e.actor_id for e in events} | {e.subject_id for e in events}
    emails = dict(session.execute(select(User.id, User.email).where(User.id.in_(ids - {None}))).all()) if ids else {}
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(CSV_COLUMNS)
    for e in events:
        writer.writerow(_cell(v) for v in [
            _paris_iso(e.at), e.event,
            emails.get(e.actor_id, e.actor_id or ""), emails.get(e.subject_id, e.subject_id or ""),
            e.structure_id or "", e.client_id or "", e.ip or "", e.user_agent or "",
            " ".join(f"{k}={v}" for k, v in sorted(e.details.items())),
        ])
    return out.getvalue()


def _paris_iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(PARIS).isoformat(timespec="seconds")


def _cell(value: object) -> str:
    """No spreadsheet formulas from user-typed text (CSV injection, OWASP)."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
