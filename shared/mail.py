"""Mail for the apps (SAM alerts, Catalogue moderation mails) through the shell's outbox.

`send_mail("moderation", to, **context)` renders `mails/moderation.txt` (first line: the subject)
and `.html` from the app's templates and enqueues them in the request's transaction; after the
request the embedded mode delivers them (SMTP, or the dev inbox), production leaves it to the
app's `mail worker`.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Flask, current_app, g, render_template
from flask_babel import force_locale
from flask_sqlalchemy import SQLAlchemy

from shared import outbox
from shared.tables import OutboxMail


def render_mail(template: str, **context: Any) -> tuple[str, str, str]:
    """(subject, text, html) of `mails/<template>.txt|.html`; the subject is the text's first line."""
    text = render_template(f"mails/{template}.txt", **context)
    html = render_template(f"mails/{template}.html", **context)
    subject, _, body = text.partition("\n")
    return subject.strip(), body.lstrip("\n"), html


def send_mail(template: str, recipient: str, **context: Any) -> None:
    """Queue one mail in this app's outbox (durable once the request commits). In French whatever
    the page's language: the apps do not know the language of the people they write to."""
    with force_locale(current_app.config["BABEL_DEFAULT_LOCALE"]):
        subject, text, html = render_mail(template, **context)
    db: SQLAlchemy = current_app.extensions["shell.db"]
    outbox.enqueue(db.session, OutboxMail, recipient, subject, text, html)
    g.shell_mail_enqueued = True


def deliver(app: Flask) -> int:
    """Deliver what is due: SMTP when configured, the dev inbox otherwise."""
    smtp_url = app.config["SMTP_URL"]
    sender = outbox.smtp_sender(smtp_url, app.config["MAIL_FROM"]) if smtp_url else None
    db: SQLAlchemy = app.extensions["shell.db"]
    return outbox.deliver_due(db.session, OutboxMail, sender, max_attempts=app.config["MAIL_MAX_ATTEMPTS"])


def deliver_enqueued(app: Flask) -> None:
    """Embedded mode: deliver what this request queued, after its commit."""
    if g.pop("shell_mail_enqueued", False) and app.config["MAIL_DELIVER_IN_REQUEST"]:
        deliver(app)


def run_worker(app: Flask, interval: float, once: bool = False) -> None:
    """Deliver the outbox until stopped (the production worker of an app)."""
    while True:
        with app.app_context():
            deliver(app)
        if once:
            return
        time.sleep(interval)
