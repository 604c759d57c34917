"""The dev inbox (SPEC §4.9): delivered mail, readable when no SMTP server is configured.

Registered by create_app() when DEV_INBOX is on. It shows password-reset and invitation links
to anyone, so it also refuses to serve outside the demo, debug or tests: a production instance
that merely forgot IDP_SMTP_URL must not publish its mail.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template
from sqlalchemy import select
from werkzeug.wrappers import Response

from idp.extensions import db
from idp.models import OutboxMail

bp = Blueprint("dev", __name__, url_prefix="/dev")

# The HTML part is the sender's markup: show it alone, sandboxed (no script, no form, no fetch).
HTML_PART_CSP = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'none'"


@bp.before_request
def only_in_demo() -> None:
    """404 unless this instance runs the demo, in debug or under test."""
    if not (current_app.config.get("DEMO") or current_app.debug or current_app.testing):
        abort(404)


@bp.get("/inbox")
def inbox() -> str:
    """List the last 100 messages."""
    mails = db.session.scalars(select(OutboxMail).order_by(OutboxMail.id.desc()).limit(100)).all()
    return render_template("dev/inbox.html", mails=mails)


@bp.get("/inbox/<int:mail_id>")
def message(mail_id: int) -> str:
    """Show one message: its text part with clickable links."""
    mail = db.session.get(OutboxMail, mail_id) or abort(404)
    return render_template("dev/message.html", mail=mail)


@bp.get("/inbox/<int:mail_id>/html")
def message_html(mail_id: int) -> Response:
    """Show one message's HTML part as the recipient's mail client would, sandboxed."""
    mail = db.session.get(OutboxMail, mail_id) or abort(404)
    response = Response(mail.html_body, mimetype="text/html")
    response.headers["Content-Security-Policy"] = HTML_PART_CSP
    return response
