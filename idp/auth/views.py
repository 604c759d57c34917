"""Sign-up, e-mail verification, login (+TOTP), logout, forgotten password."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login() -> str:
    """Log in (stub: replaced by the accounts work)."""
    return "login"


@bp.post("/logout")
def logout() -> str:
    """Log out."""
    return "logout"


@bp.route("/signup", methods=["GET", "POST"])
def signup() -> str:
    """Create an account."""
    return "signup"
