"""One factory for the apps (STYLE §1): a flat list of setup steps, nothing at import time.

    app = create_app(__name__, prefix="SAM", defaults=config, db=db, blueprints=[bp], overrides=config)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any, TypeVar

from flask import Blueprint, Flask, redirect, session
from flask_babel import Babel, get_locale, gettext
from flask_sqlalchemy import SQLAlchemy
from werkzeug.wrappers import Response

from shared import config as shell_config
from shared import mail
from shared.applications import role_label, role_title
from shared.db import init_database
from shared.forms import CONFLICT_MESSAGE
from shared.guard import RoleMissing
from shared.i18n import (
    LANGUAGE_NAMES,
    TRANSLATIONS,
    install_plural,
    page_language,
    paris_shown,
    select_locale,
)
from shared.identity import Identity
from shared.keys import init_rotation
from shared.locking import StaleVersion
from shared.service import BearerVerifier, ServiceClient
from shared.sso import SSO, current_identity, login_url
from shared.views import assets as shell_assets
from shared.views import bp as shell_bp
from shared.views import i18n_bp
from shared.web import (
    apply_security_headers,
    csrf,
    database_unavailable,
    error_page,
    init_login,
    register_error_pages,
)

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_SECRET = "dev-only-change-me"  # noqa: S105 - refused at start-up outside the demo and the tests


def create_app(import_name: str, *, prefix: str, defaults: ModuleType, db: SQLAlchemy,
               blueprints: Iterable[Blueprint], overrides: dict[str, Any] | None = None) -> Flask:
    """Build an app on the shell: shell defaults, the app's, its `<PREFIX>_` environment, overrides.

    :param db: the app's Flask-SQLAlchemy object (its models' `db`).
    :raises RuntimeError: a required setting is missing (the secret key outside the demo and tests).
    """
    app = Flask(import_name)
    app.config.from_object(shell_config)
    app.config.from_object(defaults)
    app.config.from_prefixed_env(prefix)
    app.config.update(overrides or {})
    _check_settings(app, prefix)

    engine = init_database(app, db)
    app.extensions["shell.db"] = db
    app.after_request(_end_transaction)
    csrf.init_app(app)
    # The shell's catalog, then the app's own (`<app>/translations`): merged, the app's entries win.
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", f"{TRANSLATIONS};translations")
    Babel(app, locale_selector=lambda: select_locale(_claimed_locale), timezone_selector=lambda: app.config["BABEL_DEFAULT_TIMEZONE"])
    install_plural(app)
    SSO(app, engine=engine)
    _init_login(app)
    if app.config["SERVICE_SCOPE"]:
        app.extensions["shell.service"] = ServiceClient(
            app.config["OIDC_ISSUER"], app.config["OIDC_CLIENT_ID"], app.config["OIDC_CLIENT_SECRET"],
            app.config["SERVICE_SCOPE"], timeout=app.config["SSO_HTTP_TIMEOUT"])
    if app.config["API_AUDIENCE"]:
        app.extensions["shell.bearer"] = BearerVerifier(app.config["OIDC_ISSUER"], app.config["API_AUDIENCE"],
                                                        timeout=app.config["SSO_HTTP_TIMEOUT"],
                                                        refetch_interval=app.config["SSO_JWKS_REFETCH_SECONDS"])
    if app.config["DEV_INBOX"] is None:
        app.config["DEV_INBOX"] = not app.config["SMTP_URL"] and bool(app.testing or app.config["DEMO"])

    app.register_blueprint(shell_bp)
    app.register_blueprint(shell_assets)
    app.register_blueprint(i18n_bp)
    csrf.exempt(i18n_bp)
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    register_error_pages(app, rollback=lambda: db.session.rollback())
    app.register_error_handler(RoleMissing, _role_missing)
    app.register_error_handler(StaleVersion, _stale_version)
    app.before_request(_session_unavailable)
    app.after_request(apply_security_headers)
    app.after_request(_deliver_mail)
    app.jinja_env.globals.update(role_label=lambda name, role: role_label(name, role, page_language()),
                                 role_title=lambda name, role: role_title(name, role, page_language()),
                                 app_name=app.config["SSO_APP_NAME"], home_path=app.config["HOME_PATH"],
                                 dev_inbox=app.config["DEV_INBOX"], LANGUAGE_NAMES=LANGUAGE_NAMES,
                                 get_locale=get_locale)
    app.jinja_env.filters["paris"] = paris_shown
    # `label|tr`: a French label held in data (marked N_ in the code) in the page's language, then
    # escaped like any value (`_(value)` in a template would mark it safe: never on data).
    app.jinja_env.filters["tr"] = gettext
    return app


def form_view(view: F) -> F:
    """Mark a view that validates a Flask-WTF form itself: its CSRF check is the form's, so an
    expired token re-renders the form with what the person typed (not a bare 400 page)."""
    return csrf.exempt(view)  # type: ignore[return-value]


def _check_settings(app: Flask, prefix: str) -> None:
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = DEFAULT_SECRET
    if app.config["SECRET_KEY"] == DEFAULT_SECRET and not (app.debug or app.testing or app.config["DEMO"]):
        raise RuntimeError(f"{prefix}_SECRET_KEY must be set outside the demo and the tests")
    init_rotation(app)  # <PREFIX>_SECRET_KEY_FALLBACKS: forms opened before a key rotation still post


def _claimed_locale() -> str:
    identity = current_identity()
    return identity.locale if identity else ""


def _init_login(app: Flask) -> None:
    """Flask-Login's `current_user` is the identity the IdP's claims describe (no user table)."""
    init_login(app, anonymous=_Anonymous, unauthorized=lambda: redirect(login_url())).request_loader(
        lambda _request: current_identity())


class _Anonymous:
    is_authenticated = False
    is_active = False
    is_anonymous = True
    roles: tuple[str, ...] = ()
    structure = None
    structures: tuple[Any, ...] = ()

    def get_id(self) -> None:
        return None

    def has_role(self, *_roles: str) -> bool:
        return False


def _end_transaction(response: Response) -> Response:
    """End the request's transaction before the session interface saves the server-side session:
    an open SQLite transaction (BEGIN IMMEDIATE) would make that write wait on the same request."""
    from flask import current_app

    current_app.extensions["shell.db"].session.remove()
    return response


def _session_unavailable() -> Response | None:
    """The session's row could not be read (database down): 503, not an anonymous page."""
    return database_unavailable() if getattr(session, "unavailable", False) else None


def _role_missing(error: RoleMissing) -> Response:
    return error_page(403, error.message, template="shell/forbidden.html", roles=error.roles)


def _stale_version(_error: StaleVersion) -> Response:
    return error_page(409, CONFLICT_MESSAGE)


def _deliver_mail(response: Response) -> Response:
    from flask import current_app

    mail.deliver_enqueued(current_app._get_current_object())  # type: ignore[attr-defined]
    return response


__all__ = ["Identity", "create_app"]
