"""The shell's own routes in every app: the health pair, the shared stylesheet, the dev inbox."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, render_template
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import select
from werkzeug.wrappers import Response

from shared.migrations import is_current
from shared.tables import OutboxMail

bp = Blueprint("shell", __name__, template_folder="templates")
# The stylesheet and macros of the four services (the IdP registers this one too).
assets = Blueprint("shell_assets", __name__, static_folder="static", static_url_path="/shell-static",
                   template_folder="templates")


@bp.get("/livez")
def livez() -> Response:
    """Liveness: the process answers (no database, no network)."""
    response = jsonify(status="ok")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Readiness: the database answers and its schema is at the head revision."""
    db: SQLAlchemy = current_app.extensions["shell.db"]
    checks = {"database": "ok", "schema": "ok"}
    try:
        with db.engine.connect() as connection:
            if not is_current(current_app, connection):
                checks["schema"] = "not at the head revision: run `db upgrade`"
    except Exception:  # noqa: BLE001 - any failure means: not ready
        checks = {"database": "unreachable", "schema": "unknown"}
    ready = all(value == "ok" for value in checks.values())
    response = jsonify(status="ok" if ready else "unavailable", checks=checks)
    response.headers["Cache-Control"] = "no-store"
    if not ready:
        response.headers["Retry-After"] = "5"
    return response, 200 if ready else 503


@bp.get("/dev/inbox")
def dev_inbox() -> str:
    """The mail this app sent, when no SMTP server is configured (demo and tests only)."""
    if not current_app.config["DEV_INBOX"]:
        abort(404)
    db: SQLAlchemy = current_app.extensions["shell.db"]
    mails = db.session.scalars(select(OutboxMail).order_by(OutboxMail.id.desc()).limit(100)).all()
    return render_template("shell/inbox.html", mails=mails)
