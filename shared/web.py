"""What every service answers the same way: security headers, French error pages or RFC 9457
problems, the health pair. The IdP uses the header list too (one list for the four services)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from flask_login import LoginManager
from flask_wtf import CSRFProtect
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.wrappers import Response

from shared.i18n import N_

log = logging.getLogger(__name__)
csrf = CSRFProtect()  # every unsafe request of every app is checked, but for form views and APIs

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
PROBLEM = "application/problem+json"
RETRY_AFTER_SECONDS = 5

# (title, detail) in French for each status a service answers itself; pages show them in the
# person's language, problems (APIs) in French.
ERRORS: dict[int, tuple[str, str]] = {
    400: (N_("Demande incorrecte"), N_("La demande est incorrecte ou incomplète.")),
    401: (N_("Authentification requise"), N_("Un jeton d'accès valide est requis.")),
    403: (N_("Accès refusé"), N_("Vous n'avez pas accès à cette page.")),
    404: (N_("Page introuvable"), N_("Cette page n'existe pas, ou vous n'y avez pas accès.")),
    405: (N_("Méthode non permise"), N_("Cette action n'est pas possible sur cette page.")),
    409: (N_("Conflit"), N_("Cette fiche a été modifiée entre-temps : rechargez-la puis recommencez.")),
    413: (N_("Envoi trop volumineux"), N_("Le fichier ou le formulaire envoyé dépasse la taille permise.")),
    415: (N_("Type de contenu non pris en charge"), N_("Envoyez du JSON (Content-Type: application/json).")),
    422: (N_("Données invalides"), N_("Certaines données envoyées sont invalides.")),
    429: (N_("Trop de requêtes"), N_("Trop de requêtes : réessayez dans un instant.")),
    500: (N_("Erreur interne"), N_("Une erreur inattendue s'est produite ; réessayez plus tard.")),
    503: (N_("Service indisponible"), N_("Le service est momentanément indisponible ; réessayez dans quelques instants.")),
}


def apply_security_headers(response: Response) -> Response:
    """The headers of every response (CSP with `frame-ancestors 'none'`, nosniff, referrer, COOP);
    HTML is never cached (it holds personal data and CSRF tokens)."""
    response.headers.setdefault("Content-Security-Policy", CSP)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if response.mimetype == "text/html":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def init_login(app: Flask, *, anonymous: type, unauthorized: Callable[[], Response]) -> LoginManager:
    """Flask-Login as the four services use it. Who is signed in is read on every request from the
    server side (the IdP's login-session row, an app's server-side session), so nothing else is
    trusted: no remember-me cookie is ever set, and session protection is off (the server-side
    record decides, not a hash of the address and browser: a phone changing networks stays signed
    in, and the cookie is not rewritten). Visitors are `anonymous`; `login_required` answers them
    `unauthorized()`."""
    manager = LoginManager(app)
    # Its after-request hook only manages the remember-me cookie we never set, and it reads the
    # session on every response: that adds `Vary: Cookie` to discovery, JWKS and userinfo answers
    # (defeating shared caches) and opens a session nobody asked for. Unhooked.
    app.after_request_funcs[None].remove(manager._update_remember_cookie)
    manager.session_protection = None  # type: ignore[assignment]
    manager.anonymous_user = anonymous
    manager.unauthorized_handler(unauthorized)
    return manager


def problem(status: int, detail: str | None = None, title: str | None = None,
            headers: dict[str, str] | None = None, **extra: Any) -> Response:
    """An RFC 9457 problem document in French."""
    default_title, default_detail = ERRORS.get(status, (f"Erreur {status}", f"Erreur HTTP {status}."))
    body = {"type": "about:blank", "title": title or default_title, "status": status,
            "detail": detail or default_detail, **extra}
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM
    response.headers.update(headers or {})
    return response


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different: a repeated field is refused, not silently the last
    one (the RFC 6749 §3.1 rule, applied to the APIs' bodies)."""
    data = dict(pairs)
    if len(data) != len(pairs):
        raise ValueError("repeated key")
    return data


def json_body() -> Any:
    """The request's body as JSON, for the four services' APIs; None when it is not JSON: not UTF-8,
    malformed, a key given twice, or nested beyond reason (Flask's `get_json` lets the parser's
    RecursionError through: a 500). The caller answers None with a 400 problem."""
    try:
        return json.loads(request.get_data(cache=True), object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError):
        return None


def wants_problem() -> bool:
    """API routes (and clients asking for JSON) get problems, people get pages."""
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def error_page(status: int, detail: str | None = None, headers: dict[str, str] | None = None,
               template: str = "shell/error.html", **context: Any) -> Response:
    """The page (French, or the person's language) or the problem (French) for `status`."""
    if wants_problem():
        return problem(status, detail, headers=headers)
    title, default_detail = ERRORS.get(status, ("", ""))
    title = _(title) if title else _("Erreur %(status)d", status=status)
    html = render_template(template, status=status, title=title, message=detail or (_(default_detail) if default_detail else ""),
                           **context)
    response = Response(html, status=status, mimetype="text/html")
    response.headers.update(headers or {})
    return response


def register_error_pages(app: Flask, rollback: Callable[[], None]) -> None:
    """French pages for every HTTP error; a database outage is a 503 with Retry-After, never a 500.

    :param rollback: ends the request's transaction (a failed one must not leak into the page).
    """

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        rollback()
        detail = exc.description if isinstance(exc.description, str) and _ours(exc) else None
        headers = {k: v for k, v in exc.get_headers() if k.lower() in ("allow", "retry-after")}
        return error_page(exc.code or 500, detail, headers)

    @app.errorhandler(DBAPIError)
    def database_error(exc: DBAPIError) -> Response:
        _safe(rollback)
        status, detail = database_failure(exc)
        return database_unavailable() if status == 503 else error_page(status, _(detail))

    @app.errorhandler(InternalServerError)
    def internal(exc: InternalServerError) -> Response:
        _safe(rollback)
        return error_page(500)


# What a database error tells the person (translated where shown).
DUPLICATE = N_("Cette opération vient déjà d'être enregistrée (envoi en double, ou par quelqu'un d'autre) : "
               "rechargez la page pour voir son résultat.")
TOO_LARGE = N_("Une valeur envoyée dépasse ce que ce service accepte.")


def database_failure(exc: Exception) -> tuple[int, str]:
    """What a database error the code did not catch means for the request, for the four services
    (each answers it in its endpoint's language): a unique-key race (two submissions racing past the
    checks, the second meets the first one's row) is a 409, a value the column refuses a 400, anything
    else (server down, connection lost, pool exhausted) a 503 to retry, never a 500.

    :param exc: the SQLAlchemy error (a `DBAPIError`, or the pool's `TimeoutError`).
    :returns: (status, French detail).
    """
    if isinstance(exc, IntegrityError):
        log.info("integrity error answered 409: %s", exc.orig)
        return 409, DUPLICATE
    if isinstance(exc, DataError):
        return 400, TOO_LARGE
    log.warning("database unavailable: %s", exc)
    return 503, ERRORS[503][1]


def database_unavailable() -> Response:
    """503 with Retry-After: clients and proxies retry, people read that it is temporary."""
    return error_page(503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def _ours(exc: HTTPException) -> bool:
    # A description given by our own code (abort(404, "…")) is French; werkzeug's defaults are not.
    return type(exc).description != exc.description


def _safe(action: Callable[[], None]) -> None:
    try:
        action()
    except Exception:  # noqa: BLE001 - the database is what failed: don't fail the error page too
        log.debug("rollback failed", exc_info=True)
