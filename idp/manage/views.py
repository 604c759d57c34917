"""Views of "Gérer ma structure": requests, members, grants, invitations, audit (SPEC §4.3, §4.4)."""

from __future__ import annotations

import uuid

from flask import Blueprint, render_template

from idp import web

bp = Blueprint("manage", __name__, url_prefix="/gestion")


@bp.get("/<uuid:structure_id>/")
@web.login_required
def index(structure_id: uuid.UUID) -> str:
    return render_template("manage/index.html")


@bp.get("/demande/<token>")
@web.login_required
def open_request(token: str) -> str:
    """The "Traiter la demande" link of the e-mail sent to admins: a signed join-request id."""
    return render_template("manage/index.html")
