"""The durable mail outbox of every service (SPEC §4.9): the IdP's and the apps'.

A request enqueues in its own transaction; delivery claims each row, sends it over SMTP and
commits after each message, with backoff on failure, so nothing is lost while SMTP is down and
nothing is sent twice. The outbox table is any mapped class with `OutboxColumns`.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from sqlalchemy import Index, String, Text, select, update
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column

from shared.types import UTCDateTime, utcnow

log = logging.getLogger(__name__)

CLAIM_TIMEOUT = timedelta(minutes=10)
_DELIVERABLE = ("pending", "sending")


class OutboxColumns:
    """Mixin: the columns of an outbox row (`status`: pending / sending / sent / failed)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(255))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:  # noqa: N805
        return (Index(f"ix_{cls.__tablename__}_due", "status", "next_attempt_at"),)  # type: ignore[attr-defined]


M = TypeVar("M", bound=OutboxColumns)
Sender = Callable[[OutboxColumns], None]


def enqueue(session: Session, model: type[M], recipient: str, subject: str, text: str, html: str) -> M:
    """Queue one message; it is durable once the caller commits, whatever SMTP does."""
    mail = model(recipient=recipient, subject=subject, text_body=text, html_body=html)
    session.add(mail)
    return mail


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, ... capped at one hour."""
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


def smtp_sender(smtp_url: str, sender: str, timeout: float = 10) -> Sender:
    """A function sending one outbox row to the server named by smtp[s|+starttls]://[user:pass@]host:port."""
    url = urlsplit(smtp_url)
    host, port = url.hostname or "127.0.0.1", url.port or 25

    def send(mail: OutboxColumns) -> None:
        message = EmailMessage()
        message["From"] = sender
        message["To"] = mail.recipient
        message["Subject"] = mail.subject
        message["Message-ID"] = make_msgid(domain="portail.localhost")
        message.set_content(mail.text_body)
        message.add_alternative(mail.html_body, subtype="html")
        smtp_class = smtplib.SMTP_SSL if url.scheme == "smtps" else smtplib.SMTP
        with smtp_class(host, port, timeout=timeout) as smtp:
            if url.scheme == "smtp+starttls":
                smtp.starttls()
            if url.username:
                smtp.login(unquote(url.username), unquote(url.password or ""))
            smtp.send_message(message)

    return send


def deliver_due(session: Session, model: type[OutboxColumns], send: Sender | None, *, max_attempts: int,
                limit: int = 50, now: datetime | None = None) -> int:
    """Deliver due messages, committing after each so a crash never sends one twice.

    Every transaction it opens is committed before it returns: on SQLite each transaction holds
    the write lock (BEGIN IMMEDIATE), so an idle worker must not sit inside one.

    :param send: the SMTP sender, or None for the dev inbox (the row is marked sent as it is).
    :param now: the clock (tests move it forward to reach a backoff).
    :returns: how many were sent.
    """
    now = now or utcnow()
    due = session.scalars(
        select(model.id).where(model.status.in_(_DELIVERABLE), model.next_attempt_at <= now)
        .order_by(model.id).limit(limit)
    ).all()
    session.commit()
    sent = 0
    for mail_id in due:
        # Claim the row first so two workers never send the same message; a claim left by a
        # crashed worker lapses after CLAIM_TIMEOUT and the message is tried again.
        claimed = session.execute(
            update(model)
            .where(model.id == mail_id, model.status.in_(_DELIVERABLE), model.next_attempt_at <= now)
            .values(status="sending", attempts=model.attempts + 1, next_attempt_at=now + CLAIM_TIMEOUT)
            .execution_options(synchronize_session=False)
        ).rowcount
        session.commit()
        if not claimed:
            continue
        mail = session.get_one(model, mail_id, populate_existing=True)
        try:
            if send is not None:
                send(mail)
        except Exception as exc:
            # Any failure (SMTP refusal, network, a header SMTP can't encode) is recorded on the
            # row and retried with backoff; it must never kill the worker or the request.
            log.warning("mail %s to %s not sent (attempt %s): %r", mail.id, mail.recipient, mail.attempts, exc)
            mail.last_error = f"{type(exc).__name__}: {exc}"[:500]
            mail.status = "failed" if mail.attempts >= max_attempts else "pending"
            mail.next_attempt_at = now + backoff(mail.attempts)
        else:
            mail.status, mail.sent_at, mail.last_error = "sent", utcnow(), None
            sent += 1
        session.commit()
    return sent
