"""Views of the platform console: structures, entitlements, profiles, applications, users, keys, audit."""

from __future__ import annotations

from flask import Blueprint, render_template

from idp import web

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/")
@web.platform_admin_required
def index() -> str:
    return render_template("admin/index.html")


@bp.get("/moderation")
@web.platform_admin_required
def moderation() -> str:
    """Join requests of structures without an admin."""
    return render_template("admin/index.html")
