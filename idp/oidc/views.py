"""OpenID Connect endpoints (stub)."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("oidc", __name__)


def init_app(app: Flask) -> None:
    pass
