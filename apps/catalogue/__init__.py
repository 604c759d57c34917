"""The Catalogue, the training-offer base (SPEC §9): a relying party of the IdP built on the shell."""

from __future__ import annotations

from typing import Any

from flask import Flask

from apps.catalogue import config as default_config
from apps.catalogue.models import db
from shared import create_app as create_shell_app


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the Catalogue: shell and Catalogue defaults, then CATALOGUE_* variables, then `config`."""
    from apps.catalogue.api import bp as api_bp
    from apps.catalogue.views import bp

    app = create_shell_app(__name__, prefix="CATALOGUE", defaults=default_config, db=db, blueprints=[bp, api_bp],
                           overrides=config)
    if app.config["DEMO"] and not app.testing:
        from apps.catalogue.demo import seed_when_empty

        seed_when_empty(app)
    return app


__all__ = ["create_app", "db"]
