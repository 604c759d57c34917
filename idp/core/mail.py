"""The IdP's mail outbox (SPEC §4.9): the shell's outbox (`shared.outbox`) bound to `OutboxMail`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from idp.models import OutboxMail
from shared.outbox import CLAIM_TIMEOUT, Sender, backoff, smtp_sender
from shared.outbox import deliver_due as _deliver_due
from shared.outbox import enqueue as _enqueue

__all__ = ["CLAIM_TIMEOUT", "backoff", "deliver_due", "enqueue", "smtp_sender"]


def enqueue(session: Session, recipient: str, subject: str, text: str, html: str) -> OutboxMail:
    """Queue one message in the IdP's outbox; durable once the caller commits."""
    return _enqueue(session, OutboxMail, recipient, subject, text, html)


def deliver_due(session: Session, send: Sender | None, *, max_attempts: int, limit: int = 50,
                now: datetime | None = None) -> int:
    """Deliver the IdP's due messages (see `shared.outbox.deliver_due`)."""
    return _deliver_due(session, OutboxMail, send, max_attempts=max_attempts, limit=limit, now=now)
