"""The mail outbox (SPEC §4.9): durable, delivered over real SMTP with retries; the dev inbox."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from conftest import Mailbox, _free_port, unique_email
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from idp.core.mail import CLAIM_TIMEOUT, backoff, deliver_due, enqueue, smtp_sender
from idp.models import OutboxMail, utcnow

MAX_ATTEMPTS = 3


@pytest.fixture
def session(app: Any) -> Iterator[Session]:
    """An explicit session on the app's database, starting from an empty outbox."""
    from idp.extensions import db

    with app.app_context():
        db.session.execute(delete(OutboxMail))
        db.session.commit()
        yield db.session()  # this app context's Session itself
        db.session.rollback()
        db.session.execute(delete(OutboxMail))
        db.session.commit()


@pytest.fixture
def send(app: Any) -> Any:
    """The app's SMTP sender, pointed at the test's aiosmtpd server."""
    return smtp_sender(app.config["SMTP_URL"], app.config["MAIL_FROM"], timeout=5)


@pytest.fixture
def send_to_closed_port(app: Any) -> Any:
    """A sender whose SMTP server is down: nothing listens on that port."""
    return smtp_sender(f"smtp://127.0.0.1:{_free_port()}", app.config["MAIL_FROM"], timeout=2)


def queue(session: Session, recipient: str | None = None, subject: str = "Bienvenue") -> OutboxMail:
    mail = enqueue(session, recipient or unique_email("mail"), subject, "Bonjour,\nhttps://portail.test/lien\n",
                   "<p>Bonjour,</p><p><a href=\"https://portail.test/lien\">lien</a></p>")
    session.commit()
    return mail


def row(session: Session, mail_id: int) -> OutboxMail:
    return session.execute(select(OutboxMail).where(OutboxMail.id == mail_id)
                           .execution_options(populate_existing=True)).scalar_one()


# ---------------------------------------------------------------- delivery

def test_enqueued_mail_is_delivered_with_text_and_html(session: Session, send: Any, mailbox: Mailbox,
                                                       app: Any) -> None:
    mail = queue(session, subject="Activez votre compte")
    assert row(session, mail.id).status == "pending"

    assert deliver_due(session, send, max_attempts=MAX_ATTEMPTS) == 1

    message = mailbox.wait_for(mail.recipient, "Activez votre compte")
    assert message["From"] == app.config["MAIL_FROM"]
    assert message["To"] == mail.recipient and message["Subject"] == "Activez votre compte"
    assert message["Message-ID"]
    assert message.get_body(("plain",)).get_content().splitlines() == ["Bonjour,", "https://portail.test/lien"]
    assert '<a href="https://portail.test/lien">' in message.get_body(("html",)).get_content()
    stored = row(session, mail.id)
    assert (stored.status, stored.attempts, stored.last_error) == ("sent", 1, None)
    assert stored.sent_at is not None
    # Delivered once: the next pass finds nothing to do.
    assert deliver_due(session, send, max_attempts=MAX_ATTEMPTS) == 0
    assert len(mailbox.to(mail.recipient)) == 1


def test_non_ascii_content_survives_smtp(session: Session, send: Any, mailbox: Mailbox) -> None:
    mail = enqueue(session, unique_email(), "Réinitialisez votre mot de passe « Portail »",
                   "Élodie, cliquez ici : https://portail.test/réinit", "<p>Élodie — café</p>")
    session.commit()
    assert deliver_due(session, send, max_attempts=MAX_ATTEMPTS) == 1
    message = mailbox.wait_for(mail.recipient)
    assert message["Subject"] == "Réinitialisez votre mot de passe « Portail »"
    assert "Élodie" in message.get_body(("plain",)).get_content()
    assert "café" in message.get_body(("html",)).get_content()


def test_smtp_down_keeps_the_message_and_retries_with_backoff(
    session: Session, send: Any, send_to_closed_port: Any, mailbox: Mailbox
) -> None:
    mail = queue(session)
    start = utcnow()

    assert deliver_due(session, send_to_closed_port, max_attempts=MAX_ATTEMPTS, now=start) == 0
    stored = row(session, mail.id)
    assert (stored.status, stored.attempts) == ("pending", 1)
    assert "ConnectionRefusedError" in stored.last_error
    assert stored.next_attempt_at == start + backoff(1)

    # Not due yet: even with the server back, nothing is sent before the backoff ends.
    assert deliver_due(session, send, max_attempts=MAX_ATTEMPTS, now=start + backoff(1) / 2) == 0
    assert row(session, mail.id).attempts == 1

    # Still down at the next try: the wait doubles.
    later = start + backoff(1)
    assert deliver_due(session, send_to_closed_port, max_attempts=MAX_ATTEMPTS, now=later) == 0
    stored = row(session, mail.id)
    assert (stored.status, stored.attempts) == ("pending", 2)
    assert stored.next_attempt_at == later + backoff(2)
    assert backoff(2) == 2 * backoff(1)

    # The server is up again: the message goes out, nothing lost.
    assert deliver_due(session, send, max_attempts=MAX_ATTEMPTS, now=later + backoff(2)) == 1
    assert mailbox.wait_for(mail.recipient)
    stored = row(session, mail.id)
    assert (stored.status, stored.attempts, stored.last_error) == ("sent", 3, None)


def test_backoff_grows_then_caps_at_one_hour() -> None:
    waits = [backoff(n) for n in range(1, 12)]
    assert waits[0] == timedelta(seconds=30)
    assert waits == sorted(waits)
    assert waits[-1] == timedelta(hours=1)


def test_gives_up_after_max_attempts(session: Session, send_to_closed_port: Any, send: Any,
                                     mailbox: Mailbox) -> None:
    mail = queue(session)
    now = utcnow()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        deliver_due(session, send_to_closed_port, max_attempts=MAX_ATTEMPTS, now=now)
        stored = row(session, mail.id)
        assert stored.attempts == attempt
        assert stored.status == ("failed" if attempt == MAX_ATTEMPTS else "pending")
        now = stored.next_attempt_at
    # A failed message is kept (for the operator) but never tried again.
    assert deliver_due(session, send, max_attempts=MAX_ATTEMPTS, now=now + timedelta(days=1)) == 0
    assert row(session, mail.id).status == "failed" and mailbox.to(mail.recipient) == []


def test_any_sender_error_is_recorded_not_raised(session: Session) -> None:
    """A message SMTP can't encode must neither kill the worker nor fail the user's request."""
    mail = queue(session)

    def broken(_mail: OutboxMail) -> None:
        raise UnicodeEncodeError("ascii", "é", 0, 1, "ordinal not in range")

    assert deliver_due(session, broken, max_attempts=MAX_ATTEMPTS) == 0
    stored = row(session, mail.id)
    assert stored.status == "pending" and stored.last_error.startswith("UnicodeEncodeError")


def test_a_claim_left_by_a_crashed_worker_is_retried(session: Session, send: Any, mailbox: Mailbox) -> None:
    mail = queue(session)
    now = utcnow()

    def crash(_mail: OutboxMail) -> None:
        raise KeyboardInterrupt  # the process dies mid-send: no except clause runs

    with pytest.raises(KeyboardInterrupt):
        deliver_due(session, crash, max_attempts=MAX_ATTEMPTS, now=now)
    session.rollback()
    stored = row(session, mail.id)
    assert (stored.status, stored.attempts) == ("sending", 1)

    # Another worker meanwhile leaves the claim alone...
    assert deliver_due(session, send, max_attempts=MAX_ATTEMPTS, now=now + CLAIM_TIMEOUT / 2) == 0
    # ...until it lapses.
    assert deliver_due(session, send, max_attempts=MAX_ATTEMPTS, now=now + CLAIM_TIMEOUT) == 1
    assert mailbox.wait_for(mail.recipient)
    assert row(session, mail.id).status == "sent"


def test_concurrent_workers_never_send_a_message_twice(app: Any, session: Session) -> None:
    recipients = [unique_email("concurrent") for _ in range(20)]
    ids = [queue(session, recipient).id for recipient in recipients]
    sent: list[int] = []
    lock = threading.Lock()

    def slow_send(mail: OutboxMail) -> None:
        time.sleep(0.01)  # long enough for the other worker to try the same rows
        with lock:
            sent.append(mail.id)

    from idp.extensions import db

    make_session = sessionmaker(db.engine, expire_on_commit=False)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker() -> None:
        with make_session() as own:
            try:
                start.wait()
                deliver_due(own, slow_send, max_attempts=MAX_ATTEMPTS)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert Counter(sent) == Counter(ids)  # each exactly once
    assert {row(session, mail_id).status for mail_id in ids} == {"sent"}


def test_an_idle_pass_holds_no_transaction(session: Session, send: Any) -> None:
    """On SQLite a transaction holds the write lock: a polling worker must not keep one open."""
    assert deliver_due(session, send, max_attempts=MAX_ATTEMPTS) == 0
    assert not session.in_transaction()
    queue(session)
    assert deliver_due(session, send, max_attempts=MAX_ATTEMPTS) == 1
    assert not session.in_transaction()


def test_web_deliver_mail_uses_the_configured_smtp(app: Any, session: Session, mailbox: Mailbox) -> None:
    from idp.web import deliver_mail

    mail = queue(session, subject="Par deliver_mail")
    assert deliver_mail(app) == 1
    assert mailbox.wait_for(mail.recipient, "Par deliver_mail")


def test_without_smtp_the_mail_goes_to_the_dev_inbox(session: Session, mailbox: Mailbox) -> None:
    mail = queue(session)
    assert deliver_due(session, None, max_attempts=MAX_ATTEMPTS) == 1
    assert row(session, mail.id).status == "sent"
    assert mailbox.to(mail.recipient) == []


# ---------------------------------------------------------------- the dev inbox

def test_dev_inbox_lists_and_shows_messages_escaped(testclient: Any, session: Session) -> None:
    mail = enqueue(session, unique_email("inbox"), "<b>Objet</b> & co",
                   "Bonjour <script>alert(1)</script>\nValidez : https://portail.test/signup/verify/abc?x=1&y=2\n",
                   "<p>Bonjour</p>")
    session.commit()

    page = testclient.get("/dev/inbox")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert mail.recipient in html
    assert "&lt;b&gt;Objet&lt;/b&gt; &amp; co" in html and "<b>Objet</b>" not in html
    assert f'href="/dev/inbox/{mail.id}"' in html

    page = testclient.get(f"/dev/inbox/{mail.id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
    assert '<a href="https://portail.test/signup/verify/abc?x=1&amp;y=2"' in html
    assert f'href="/dev/inbox/{mail.id}/html"' in html


def test_dev_inbox_html_part_is_sandboxed(testclient: Any, session: Session) -> None:
    mail = enqueue(session, unique_email(), "HTML", "texte", '<p>Bonjour</p><script>alert(1)</script>')
    session.commit()
    response = testclient.get(f"/dev/inbox/{mail.id}/html")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert "<p>Bonjour</p>" in response.get_data(as_text=True)
    csp = response.headers["Content-Security-Policy"]
    assert csp.startswith("sandbox") and "script-src" not in csp and "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp and response.headers["X-Frame-Options"] == "DENY"


def test_dev_inbox_empty(testclient: Any, session: Session) -> None:
    assert "Aucun message." in testclient.get("/dev/inbox").get_data(as_text=True)


def test_dev_inbox_unknown_message_is_404(testclient: Any, session: Session) -> None:
    for path in ("/dev/inbox/999999999", "/dev/inbox/999999999/html", "/dev/inbox/abc"):
        response = testclient.get(path)
        assert response.status_code == 404
        assert "Page introuvable" in response.get_data(as_text=True)


def test_dev_inbox_shows_the_delivery_error(testclient: Any, session: Session, send_to_closed_port: Any) -> None:
    mail = queue(session)
    deliver_due(session, send_to_closed_port, max_attempts=MAX_ATTEMPTS)
    html = testclient.get(f"/dev/inbox/{mail.id}").get_data(as_text=True)
    assert "ConnectionRefusedError" in html
    assert "en attente" in testclient.get("/dev/inbox").get_data(as_text=True)


def test_dev_inbox_is_not_served_in_production(app: Any, session: Session) -> None:
    """An instance with a real secret key that merely lacks IDP_SMTP_URL must not publish its mail."""
    mail = queue(session)
    app.testing = False
    try:
        response = app.test_client().get(f"/dev/inbox/{mail.id}")
        assert response.status_code == 404
    finally:
        app.testing = True


def test_mail_stays_in_the_outbox_when_the_request_commits_and_smtp_fails(
    app: Any, session: Session
) -> None:
    """The embedded mode delivers in the request; a down server loses nothing and fails nothing."""
    from idp.extensions import db

    mail = queue(session)
    configured = app.config["SMTP_URL"]
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{_free_port()}"
    try:
        from idp.web import deliver_mail

        assert deliver_mail(app) == 0
    finally:
        app.config["SMTP_URL"] = configured
    stored = row(db.session, mail.id)
    assert stored.status == "pending" and stored.attempts == 1
    session.execute(update(OutboxMail).where(OutboxMail.id == mail.id).values(next_attempt_at=utcnow()))
    session.commit()
    from idp.web import deliver_mail

    assert deliver_mail(app) == 1
