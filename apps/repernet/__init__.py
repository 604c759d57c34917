"""REPERNET, the structure registry (SPEC §8): a relying party of the IdP built on `shared/`."""

from __future__ import annotations

from typing import Any

from flask import Flask, render_template
from werkzeug.exceptions import HTTPException

from apps.repernet import config as default_config
from shared import SSO
from shared.db import Database

db = Database("repernet_db")


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build REPERNET: defaults, then REPERNET_* environment variables, then the caller's overrides."""
    app = Flask(__name__)
    app.config.from_object(default_config)
    app.config.from_prefixed_env("REPERNET")
    if config:
        app.config.update(config)
    if app.config["SECRET_KEY"] == default_config.SECRET_KEY and not (app.debug or app.testing or app.config["DEMO"]):
        raise RuntimeError("REPERNET_SECRET_KEY must be set outside the demo and the tests")

    from apps.repernet.idp_api import IdpApi
    from apps.repernet.models import Base
    from apps.repernet.views import bp

    engine = db.init_app(app, app.config["DATABASE_URL"], Base)
    SSO(app, engine=engine)
    app.extensions["repernet.api"] = IdpApi(app.config["OIDC_ISSUER"], app.config["OIDC_CLIENT_ID"],
                                            app.config["OIDC_CLIENT_SECRET"], app.config["API_SCOPE"])
    app.register_blueprint(bp)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Any:
        """Every HTTP error as a French page."""
        messages = {
            400: "La demande est incorrecte.",
            403: "Vous n'avez pas accès à cette page.",
            404: "Cette page n'existe pas, ou vous n'y avez pas accès.",
            405: "Cette action n'est pas possible sur cette page.",
            413: "Le fichier envoyé est trop volumineux.",
        }
        message = messages.get(error.code or 500, "Une erreur est survenue.")
        return render_template("sso/error.html", title=f"Erreur {error.code}", message=message), error.code

    @app.after_request
    def headers(response: Any) -> Any:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    return app
