"""Endpoints of the service API (SPEC §4.8)."""

from __future__ import annotations

from flask import Blueprint

from idp.extensions import csrf

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)
