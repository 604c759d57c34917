"""The durable mail outbox (SPEC §4.9): a request enqueues, a worker delivers with backoff."""

from __future__ import annotations

from idp.models.base import Base
from shared.outbox import OutboxColumns


class OutboxMail(OutboxColumns, Base):
    """The IdP's queued mail; its delivery is the shell's (`shared.outbox`)."""

    __tablename__ = "mail_outbox"
