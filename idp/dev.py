"""The dev inbox (SPEC §4.9): delivered mail, readable when no SMTP server is configured."""

from __future__ import annotations

from flask import Blueprint, abort, render_template
from sqlalchemy import select

from idp.extensions import db
from idp.models import OutboxMail

bp = Blueprint("dev", __name__, url_prefix="/dev")


@bp.get("/inbox")
def inbox() -> str:
    """List the last 100 messages."""
    mails = db.session.scalars(select(OutboxMail).order_by(OutboxMail.id.desc()).limit(100)).all()
    return render_template("dev/inbox.html", mails=mails)


@bp.get("/inbox/<int:mail_id>")
def message(mail_id: int) -> str:
    """Show one message with its links."""
    mail = db.session.get(OutboxMail, mail_id) or abort(404)
    return render_template("dev/message.html", mail=mail)
