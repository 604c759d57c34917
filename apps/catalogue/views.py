"""The Catalogue's pages: thin views (parse the form, call one domain function, map errors, commit)."""

from __future__ import annotations

from flask import Blueprint, render_template

from shared import RoleMissing, current_identity

bp = Blueprint("catalogue", __name__, template_folder="templates")

ROLES = ("editeur", "lecteur", "moderateur")


@bp.get("/", endpoint="index")
def index() -> str:
    """Home: what the Catalogue is for; signed in, the person's roles in it for the current structure."""
    identity = current_identity()
    if identity is not None and not identity.has_role(*ROLES):
        raise RoleMissing(ROLES)
    return render_template("catalogue/index.html")
