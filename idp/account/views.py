"""My account: information, password, contact e-mail, two-factor, sessions."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("account", __name__, url_prefix="/account")


@bp.get("/")
def index() -> str:
    """Account home (stub)."""
    return "account"
