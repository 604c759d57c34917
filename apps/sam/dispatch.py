"""Sending awarded offers to the Catalogue (SPEC §7 "Flux vers le CARIF-OREF", issue 13 §7).

An award queues one `CatalogueDispatch` row in the award's transaction (durable: nothing is lost
if the Catalogue is down). `send_due` posts each due row to the Catalogue's `POST /api/v1/actions`
with SAM's client_credentials token (scope `catalogue:write`). The Catalogue is idempotent by the
award id, so a row sent twice (a crash between the answer and our commit) still makes one action.
A refused body (422) is kept as `rejected` with the Catalogue's errors; a network error, a 5xx or
a refused token is retried with exponential backoff.

Nothing here knows Flask: the client and the time are passed in.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from apps.sam.models import CatalogueDispatch
from shared import N_, ApiError, ApiInvalid, ServiceClient

log = logging.getLogger(__name__)
PENDING, SENT, REJECTED = "pending", "sent", "rejected"
STATUS_LABELS = {PENDING: N_("En attente d'envoi au Catalogue"), SENT: N_("Transmise au Catalogue (en modération)"),
                 REJECTED: N_("Refusée par le Catalogue")}
BASE_DELAY, MAX_DELAY = 30, 3600  # seconds


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, … up to an hour between attempts."""
    return timedelta(seconds=min(BASE_DELAY * 2 ** max(attempts - 1, 0), MAX_DELAY))


def send_one(row: CatalogueDispatch, client: ServiceClient, now: datetime) -> None:
    """Post one queued award; the row records the outcome (the caller commits)."""
    row.attempts += 1
    try:
        body = client.json("POST", "/actions", json=json.loads(row.payload))
    except ApiInvalid as exc:
        errors = exc.problem.get("errors") or []
        detail = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in errors if isinstance(e, dict))
        row.status, row.last_error = REJECTED, (detail or exc.detail)[:2000]
        log.warning("Catalogue refused award %s: %s", row.award_id, row.last_error)
        return
    except ApiError as exc:
        row.last_error = exc.detail[:2000]
        row.next_attempt_at = now + backoff(row.attempts)
        log.info("Catalogue unavailable for award %s (attempt %s): %s", row.award_id, row.attempts, exc.detail)
        return
    row.status, row.sent_at, row.last_error = SENT, now, ""
    row.remote_id = str((body or {}).get("id", ""))[:64]


def send_due(session: Session, client: ServiceClient, now: datetime, limit: int = 20) -> int:
    """Send the rows due at `now` (oldest first), each locked so two workers never send one row
    at once; returns how many were sent. Flushes; the caller commits."""
    stmt = (select(CatalogueDispatch).where(CatalogueDispatch.status == PENDING,
                                            CatalogueDispatch.next_attempt_at <= now)
            .order_by(CatalogueDispatch.next_attempt_at, CatalogueDispatch.id).limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    sent = 0
    for row in session.scalars(stmt).all():
        send_one(row, client, now)
        sent += row.status == SENT
    session.flush()
    return sent
