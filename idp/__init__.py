"""Portail's OpenID Connect identity provider."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, jsonify, render_template, request
from flask_babel import get_locale
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from idp import config as default_config
from shared.keys import init_rotation


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the IdP: defaults, then IDP_* environment variables, then the caller's overrides."""
    app = Flask(__name__)
    from idp import guard

    app.url_map.converters["int"] = guard.BoundedIntConverter  # before any route is added
    app.config.from_object(default_config)
    app.config.from_prefixed_env("IDP")
    if config:
        app.config.update(config)
    _check_settings(app)
    if app.config.get("PROXY_FIX"):
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]

    from idp import health, web
    from idp.core.passwords import make_hasher
    from idp.extensions import babel, csrf, init_db, limiter, locale_selector

    init_db(app)
    app.extensions["hasher"] = make_hasher(
        app.config["ARGON2_TIME_COST"],
        app.config["ARGON2_MEMORY_COST"],
        app.config["ARGON2_PARALLELISM"],
        app.config["ARGON2_MAX_CONCURRENCY"],
    )
    csrf.init_app(app)
    babel.init_app(app, locale_selector=locale_selector)
    app.jinja_env.globals["get_locale"] = get_locale
    app.config["RATELIMIT_STORAGE_URI"] = app.config["REDIS_URL"] or "memory://"
    limiter.init_app(app)
    web.init_app(app)
    guard.init_app(app)
    health.init_app(app)  # /livez, /readyz; a database outage is a 503 (SPEC §10.4)
    from idp import ui

    ui.init_app(app)  # Paris times, human labels, the journal in words, the language switcher

    from idp.account.views import bp as account_bp
    from idp.admin.views import bp as admin_bp
    from idp.api.views import bp as api_bp
    from idp.auth import second_factor
    from idp.auth.views import bp as auth_bp
    from idp.console.views import bp as console_bp
    from idp.dev import bp as dev_bp
    from idp.home.views import bp as home_bp
    from idp.join.views import bp as join_bp
    from idp.legacy.views import bp as legacy_bp
    from idp.manage.views import bp as manage_bp
    from idp.oidc.views import bp as oidc_bp
    from idp.oidc.views import init_app as init_oidc
    from shared.views import assets as shell_assets

    app.register_blueprint(shell_assets)  # the stylesheet the four services share
    app.register_blueprint(home_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(account_bp)
    app.register_blueprint(oidc_bp)
    for blueprint in (join_bp, manage_bp, admin_bp, console_bp, api_bp, legacy_bp):
        app.register_blueprint(blueprint)
    if app.config["DEV_INBOX"] is None:
        # Only where mail is not really sent and nobody real reads it: demo, debug, tests.
        app.config["DEV_INBOX"] = not app.config["SMTP_URL"] and bool(
            app.debug or app.testing or app.config.get("DEMO"))
    if app.config["DEV_INBOX"]:
        app.register_blueprint(dev_bp)
    init_oidc(app)
    second_factor.init_app(app)

    from idp.cli import register_commands

    register_commands(app)
    _register_error_pages(app)
    return app


def _check_settings(app: Flask) -> None:
    if app.config.get("DEMO") and "IDP_TOTP_REQUIRED_FOR_ADMINS" not in os.environ:
        # The embedded demo's admins log in without an authenticator app unless asked otherwise.
        app.config["TOTP_REQUIRED_FOR_ADMINS"] = False
    if app.config["SECRET_KEY"] == default_config.SECRET_KEY and not (app.debug or app.testing or app.config.get("DEMO")):
        raise RuntimeError("IDP_SECRET_KEY must be set outside the demo and the tests")
    app.config["ISSUER"] = app.config["ISSUER"].rstrip("/")
    init_rotation(app)  # IDP_SECRET_KEY_FALLBACKS: sessions, CSRF and signed links still verify


def _wants_json() -> bool:
    return request.path.startswith(("/api/", "/oauth/", "/.well-known/")) or request.accept_mimetypes.best == "application/json"


def _register_error_pages(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        """Every HTTP error as a French page, or JSON for API clients; never a stack trace."""
        from idp.extensions import db

        db.session.rollback()
        code = exc.code or 500
        if request.path.startswith("/api/"):  # the service API speaks RFC 9457 everywhere
            from idp.api.views import http_problem

            return http_problem(exc)
        if _wants_json():
            response = jsonify(error=exc.name.lower().replace(" ", "_"), error_description=exc.description)
            response.status_code = code
            return response
        return render_template("error.html", code=code, error=exc), code
