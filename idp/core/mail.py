"""Mail outbox (SPEC §4.9): enqueue in the caller's transaction, deliver over SMTP with backoff."""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import unquote, urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from idp.models import OutboxMail, utcnow

log = logging.getLogger(__name__)


def enqueue(session: Session, recipient: str, subject: str, text: str, html: str) -> OutboxMail:
    """Queue one message; it is durable once the caller commits, whatever SMTP does."""
    mail = OutboxMail(recipient=recipient, subject=subject, text_body=text, html_body=html)
    session.add(mail)
    return mail


_DELIVERABLE = ("pending", "sending")
CLAIM_TIMEOUT = timedelta(minutes=10)


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, ... capped at one hour."""
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


def smtp_sender(smtp_url: str, sender: str, timeout: float = 10) -> Callable[[OutboxMail], None]:
    """Return a function sending one outbox row to the server named by smtp://[user:pass@]host:port."""
    url = urlsplit(smtp_url)
    host, port = url.hostname or "127.0.0.1", url.port or 25

    def send(mail: OutboxMail) -> None:
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


def deliver_due(
    session: Session,
    send: Callable[[OutboxMail], None] | None,
    *,
    max_attempts: int,
    limit: int = 50,
    now: datetime | None = None,
) -> int:
    """Deliver due messages, committing after each so a crash never sends one twice.

    Every transaction it opens is committed before it returns: on SQLite each transaction holds
    the write lock (BEGIN IMMEDIATE), so an idle worker must not sit inside one.

    :param send: the SMTP sender, or None for the dev inbox (the row is marked sent as it is).
    :param now: the clock (tests move it forward to reach a backoff).
    :returns: how many were sent.
    """
    now = now or utcnow()
    due = session.scalars(
        select(OutboxMail.id)
        .where(OutboxMail.status.in_(_DELIVERABLE), OutboxMail.next_attempt_at <= now)
        .order_by(OutboxMail.id)
        .limit(limit)
    ).all()
    session.commit()
    sent = 0
    for mail_id in due:
        # Claim the row first so two workers never send the same message; a claim left by a
        # crashed worker lapses after CLAIM_TIMEOUT and the message is tried again.
        claimed = session.execute(
            update(OutboxMail)
            .where(
                OutboxMail.id == mail_id,
                OutboxMail.status.in_(_DELIVERABLE),
                OutboxMail.next_attempt_at <= now,
            )
            .values(
                status="sending",
                attempts=OutboxMail.attempts + 1,
                next_attempt_at=now + CLAIM_TIMEOUT,
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        session.commit()
        if not claimed:
            continue
        mail = session.get_one(OutboxMail, mail_id, populate_existing=True)
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
