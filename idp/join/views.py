"""Views of "Mes structures" and "Se rattacher à une structure" (SPEC §4.2)."""

from __future__ import annotations

from flask import Blueprint, render_template

from idp import web

bp = Blueprint("join", __name__, url_prefix="/structures")


@bp.get("/")
@web.login_required
def index() -> str:
    return render_template("join/index.html")
