"""Two-factor authentication required for administrators (SPEC §4.1, setting TOTP_REQUIRED_FOR_ADMINS).

A platform admin, or an active admin of any structure, who has not enrolled TOTP is sent to the
enrolment page before anything else; their account, login and logout pages stay reachable.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, flash, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import exists, select

from idp.extensions import db
from idp.models import Membership, MembershipRole, MembershipStatus, User

# Pages an admin without a second factor may still use: enrol it, see the account, leave.
ALLOWED_BLUEPRINTS = {"auth", "account", "dev"}
ALLOWED_ENDPOINTS = {"static", "oidc.end_session", "oidc.discovery", "oidc.jwks"}
NEXT_KEY = "after_totp_enrolment"


def needs_second_factor(user: User) -> bool:
    """An admin (platform, or of a structure) without TOTP."""
    if user.totp_enabled:
        return False
    if user.is_admin:
        return True
    return bool(db.session.scalar(select(exists().where(
        Membership.user_id == user.id, Membership.role == MembershipRole.ADMIN,
        Membership.status == MembershipStatus.ACTIVE))))


def _require() -> Any:
    if not current_app.config["TOTP_REQUIRED_FOR_ADMINS"]:
        return None
    if request.blueprint in ALLOWED_BLUEPRINTS or request.endpoint in ALLOWED_ENDPOINTS or request.path.startswith(
            ("/oauth/token", "/oauth/userinfo", "/oauth/introspect", "/oauth/revoke", "/api/")):
        return None
    if not current_user.is_authenticated or not needs_second_factor(current_user):
        return None
    if request.method == "GET":
        session[NEXT_KEY] = request.full_path.rstrip("?")
    flash(_("La double authentification est obligatoire pour les administrateurs : activez-la pour continuer."),
          "warning")
    return redirect(url_for("account.totp_enroll"))


def continue_url() -> str | None:
    """Where the admin was going before enrolling (a path on this site), once."""
    target = session.pop(NEXT_KEY, None)
    return target if isinstance(target, str) and target.startswith("/") and not target.startswith("//") else None


def init_app(app: Flask) -> None:
    app.before_request(_require)
