"""SAM, the tendering platform (SPEC §7): a relying party of the IdP built on the shell."""

from __future__ import annotations

from typing import Any

from flask import Flask

from apps.sam import config as default_config
from apps.sam.models import db
from shared import ServiceClient, utcnow
from shared import create_app as create_shell_app


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build SAM: shell and SAM defaults, then SAM_* variables, then `config`."""
    from apps.sam import response_views  # noqa: F401 - the response pages join SAM's blueprint
    from apps.sam.views import bp

    app = create_shell_app(__name__, prefix="SAM", defaults=default_config, db=db, blueprints=[bp], overrides=config)
    if app.config["SIGNING_DEMO"] is None:
        app.config["SIGNING_DEMO"] = bool(app.testing or app.config["DEMO"])
    app.extensions["sam.clock"] = utcnow  # SAM's clock: deadlines are judged by it (tests move it)
    # The two APIs SAM calls with its client_credentials token (SPEC §7): one client each, its own scope.
    for name, scope, url in (("catalogue", "catalogue:write", "CATALOGUE_API_URL"),
                             ("repernet", "repernet:read", "REPERNET_API_URL")):
        app.extensions[f"sam.{name}"] = ServiceClient(
            app.config["OIDC_ISSUER"], app.config["OIDC_CLIENT_ID"], app.config["OIDC_CLIENT_SECRET"], scope,
            base_url=app.config[url], timeout=app.config["SERVICE_TIMEOUT"])
    return app


__all__ = ["create_app", "db"]
