"""The shell's own routes in every app: the health pair, the shared stylesheet, the dev inbox, the
language switcher."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, redirect, render_template, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import select
from werkzeug.wrappers import Response

from shared.i18n import LANG_COOKIE, LANG_COOKIE_MAX_AGE
from shared.migrations import is_current
from shared.sso import safe_next
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


# The language switcher (shared/i18n.py); its blueprint is exempt from CSRF (see the view).
i18n_bp = Blueprint("shell_i18n", __name__)


@i18n_bp.post("/langue")
def language() -> Response:
    """Remember the language chosen in the header, in the portal's cookie, and go back.

    No CSRF token: a token would open a server-side session for every anonymous visitor of the
    public pages, and the most a forged post can do is switch the page's language."""
    response = redirect(safe_next(request.form.get("next")), 303)
    lang = request.form.get("lang", "")
    if lang in current_app.config["LANGUAGES"]:
        response.set_cookie(LANG_COOKIE, lang, max_age=LANG_COOKIE_MAX_AGE, samesite="Lax", httponly=True,
                            secure=current_app.config.get("SESSION_COOKIE_SECURE", False))
    return response
