"""The relying-party kit as a Flask extension (SPEC §6, STYLE §9).

    sso = SSO(app, engine=engine)       # or SSO() then sso.init_app(app, engine=engine)

Settings (with the app's own prefix, e.g. REPERNET_OIDC_ISSUER):
OIDC_ISSUER, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_SCOPE, SSO_APP_NAME, SSO_APP_TITLE,
SSO_CLAIMS_MAX_AGE (seconds between two readings of the claims, SPEC §5.3), SSO_SESSION_LIFETIME,
SSO_JWKS_REFETCH_SECONDS (an unknown `kid` fetches the IdP's keys again at most this often).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

from authlib.integrations.flask_client import OAuth
from flask import (
    Blueprint,
    Flask,
    current_app,
    g,
    has_request_context,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_wtf.csrf import generate_csrf, validate_csrf
from joserfc import jwt
from joserfc.errors import JoseError
from sqlalchemy import Engine
from werkzeug.wrappers import Response

from shared.bounds import MAX_REDIRECT, ascii_digits, redirect_length
from shared.guard import RoleMissing
from shared.i18n import chosen_locale
from shared.identity import Identity
from shared.jwks import KeysUnavailable, RemoteKeys
from shared.sessions import Login, ServerSession, ServerSessionInterface, SessionStore

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
DEFAULTS: dict[str, Any] = {
    "OIDC_ISSUER": "http://127.0.0.1:8000",
    "OIDC_SCOPE": "openid profile email structures",
    "SSO_CLAIMS_MAX_AGE": 60,
    "SSO_SESSION_LIFETIME": 12 * 3600,
    "SSO_HTTP_TIMEOUT": 10,
    "SSO_JWKS_REFETCH_SECONDS": 30,
}

bp = Blueprint("sso", __name__, url_prefix="/auth", template_folder="templates")


class SSO:
    """OpenID Connect login for one relying party.

    :param app: the Flask app (or call `init_app` later).
    :param engine: the app's database, which holds the server-side sessions.
    """

    def __init__(self, app: Flask | None = None, engine: Engine | None = None) -> None:
        if app is not None:
            assert engine is not None
            self.init_app(app, engine)

    def init_app(self, app: Flask, engine: Engine) -> None:
        """Config defaults, the OIDC client, server-side sessions, the blueprint, template helpers."""
        for key, value in DEFAULTS.items():
            app.config.setdefault(key, value)
        name = app.config.setdefault("SSO_APP_NAME", app.import_name.rsplit(".", 1)[-1])
        app.config.setdefault("SSO_APP_TITLE", name)
        app.config.setdefault("OIDC_CLIENT_ID", name)
        # Apps on one host share cookies across ports: each needs its own cookie name (SPEC §6).
        if app.config.get("SESSION_COOKIE_NAME") in (None, "session"):
            app.config["SESSION_COOKIE_NAME"] = f"{name}_session"
        for key in ("OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET", "SECRET_KEY"):
            if not app.config.get(key):
                raise RuntimeError(f"{name}: the {key} setting is required")

        oauth = OAuth(app)
        issuer = app.config["OIDC_ISSUER"].rstrip("/")
        client = oauth.register(
            name="idp",
            client_id=app.config["OIDC_CLIENT_ID"],
            client_secret=app.config["OIDC_CLIENT_SECRET"],
            server_metadata_url=f"{issuer}/.well-known/openid-configuration",
            client_kwargs={"scope": app.config["OIDC_SCOPE"], "code_challenge_method": "S256",
                           "timeout": app.config["SSO_HTTP_TIMEOUT"]},
        )
        store = SessionStore(engine)
        # The logout tokens' keys: authlib's fetch, which also refreshes the keys it checks ID tokens with.
        keys = RemoteKeys(lambda: client.fetch_jwk_set(force=True), app.config["SSO_JWKS_REFETCH_SECONDS"])
        app.extensions["sso"] = _State(client=client, store=store, issuer=issuer, keys=keys)
        app.session_interface = ServerSessionInterface(store, app.config["SSO_SESSION_LIFETIME"])
        app.register_blueprint(bp)
        app.before_request(_refresh_if_due)
        app.jinja_env.globals.update(current_identity=current_identity, sso_csrf_token=generate_csrf,
                                     sso_app_title=app.config["SSO_APP_TITLE"])
        csrf = app.extensions.get("csrf")
        if csrf is not None:
            csrf.exempt(backchannel_logout)  # a server-to-server POST: the logout token is the proof
            csrf.exempt(logout)  # checks its token itself, to answer with the kit's own page


class _State:
    def __init__(self, client: Any, store: SessionStore, issuer: str, keys: RemoteKeys) -> None:
        self.client = client
        self.store = store
        self.issuer = issuer
        self.keys = keys


def _state() -> _State:
    return current_app.extensions["sso"]  # type: ignore[no-any-return]


def _session() -> ServerSession:
    assert isinstance(session._get_current_object(), ServerSession)  # type: ignore[attr-defined]
    return session._get_current_object()  # type: ignore[attr-defined,no-any-return]


# ---------------------------------------------------------------- the current person

def current_identity() -> Identity | None:
    """The logged-in person of this request, or None (anonymous, or the session was ended)."""
    if not has_request_context():
        return None
    if "sso_identity" not in g:
        login = _session().login
        g.sso_identity = Identity.from_claims({**login.claims, "sid": login.sid}) if login else None
    return g.sso_identity  # type: ignore[no-any-return]


def access_token() -> str | None:
    """The current access token (to call an API as the user), refreshed with the claims."""
    login = _session().login
    return login.tokens.get("access_token") if login else None


def login_url(next_url: str | None = None) -> str:
    """The kit's login, coming back to `next_url` (by default the page asked for; without its query,
    or to the home page, when the way back would not fit in a `Location` header: MAX_REDIRECT)."""
    for target in (next_url or request.full_path.rstrip("?"), request.path):
        url = url_for("sso.login", next=target)
        if len(url) <= MAX_REDIRECT:
            return url
    return url_for("sso.login", next="/")


def login_required(view: F) -> F:
    """Send anonymous visitors to the IdP first, then back here."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_identity() is None:
            return redirect(login_url())
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def requires_role(*roles: str) -> Callable[[F], F]:
    """Allow a view to holders of one of `roles` in the current structure; others get a French
    403 page that says which role is missing and where to ask for it (never a 500)."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            identity = current_identity()
            if identity is None:
                return redirect(login_url())
            if not identity.has_role(*roles):
                raise RoleMissing(roles)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def forbidden(roles: tuple[str, ...] | list[str] = (), message: str | None = None) -> Response:
    """The shell's 403 page (which role is missing, or why), as a response."""
    from shared.web import error_page

    return error_page(403, message, template="shell/forbidden.html", roles=tuple(roles))


def switch_url(siret: str | None = None, next_url: str | None = None) -> str:
    """A link that changes the current structure at the IdP and comes back here with fresh claims."""
    params = {"next": next_url or request.full_path.rstrip("?")}
    if siret:
        params["siret"] = siret
    return url_for("sso.switch", **params)


# ---------------------------------------------------------------- freshness (SPEC §5.3)

def _refresh_if_due() -> None:
    """Re-read the claims with the refresh token (rotated each time) when they are older than
    SSO_CLAIMS_MAX_AGE, so a role removed at the IdP stops here within that delay even if the
    back-channel logout got lost. Any failure ends the local session: access fails closed."""
    if request.blueprint == "sso" and request.endpoint != "sso.switch":
        return
    sess = _session()
    login = sess.login
    if login is None or sess.key is None:
        return
    if time.time() - login.claims_read_at < current_app.config["SSO_CLAIMS_MAX_AGE"]:
        return
    state = _state()
    if not state.store.claim_refresh(sess.key):
        return  # another request of this session is refreshing right now
    try:
        token = state.client.fetch_access_token(grant_type="refresh_token",
                                                refresh_token=login.tokens.get("refresh_token"))
        claims = _id_token_claims(token, nonce=None)
        if claims.get("sub") != login.sub:
            raise ValueError("the refreshed ID token names another subject")
    except Exception as exc:  # noqa: BLE001 - invalid_grant, network, bad token: all end the session
        log.info("token refresh failed, local session ended: %s", exc)
        _end_local_session()
        return
    tokens = _keep_tokens(token, login.tokens)
    if state.store.refreshed(sess.key, claims, tokens):
        sess.login = Login(login.sub, login.sid, claims, tokens, time.time())
    else:
        _end_local_session()  # ended by a back-channel logout while we refreshed
    g.pop("sso_identity", None)


def _id_token_claims(token: dict[str, Any], nonce: str | None) -> dict[str, Any]:
    userinfo = _state().client.parse_id_token(token, nonce=nonce)
    if userinfo is None:
        raise ValueError("no ID token in the token response")
    return dict(userinfo)


def _keep_tokens(token: dict[str, Any], previous: dict[str, Any] | None = None) -> dict[str, Any]:
    previous = previous or {}
    return {
        "access_token": token.get("access_token"),
        "refresh_token": token.get("refresh_token") or previous.get("refresh_token"),
        "id_token": token.get("id_token") or previous.get("id_token"),
        "expires_at": token.get("expires_at") or time.time() + float(token.get("expires_in") or 0),
    }


def _end_local_session() -> None:
    sess = _session()
    sess.clear()
    sess.login = None
    sess.ended = True
    g.pop("sso_identity", None)


# ---------------------------------------------------------------- the blueprint

def safe_next(value: str | None) -> str:
    """A local path to go back to; anything else (other host, scheme, `//`, backslashes, longer than
    MAX_REDIRECT once encoded) gives '/'."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if redirect_length(value) > MAX_REDIRECT:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def _authorize(**params: str) -> Response:
    session["sso_next"] = safe_next(request.args.get("next"))
    lang = chosen_locale()
    if lang:  # the language chosen here follows the person to the IdP's pages (OIDC ui_locales)
        params.setdefault("ui_locales", lang)
    try:
        return _state().client.authorize_redirect(url_for("sso.callback", _external=True), **params)
    except Exception as exc:  # noqa: BLE001 - discovery unreachable or malformed
        log.warning("cannot reach the identity provider: %s", exc)
        return _error(_("Le portail de connexion est injoignable pour le moment. Réessayez dans quelques instants."),
                      503)


def _error(message: str, status: int, title: str | None = None) -> Response:
    html = render_template("shell/error.html", title=title or _("La connexion n'a pas abouti"), message=message,
                           status=status)
    return current_app.make_response((html, status))


@bp.get("/login")
def login() -> Response:
    """Start the authorization code flow with PKCE and a nonce."""
    return _authorize()


@bp.get("/switch")
def switch() -> Response:
    """Change the current structure at the IdP (a chosen SIRET at once, else the IdP's chooser)."""
    siret = request.args.get("siret", "")
    if ascii_digits(siret, 14):
        return _authorize(siret_hint=siret)
    return _authorize(prompt="select_account")


@bp.get("/callback")
def callback() -> Response:
    """Redirection endpoint: check state, exchange the code (PKCE), verify the ID token and nonce."""
    if "error" in request.args:
        error = request.args.get("error", "")
        if error == "access_denied":
            return _error(_("Vous avez refusé la connexion à cette application."), 403)
        return _error(_("Le portail de connexion a refusé la demande. Réessayez depuis la page d'accueil."), 400)
    if not request.args.get("state") or not request.args.get("code"):
        return _error(_("Cette adresse de retour est incomplète. Reprenez la connexion depuis la page d'accueil."), 400)
    try:
        token = _state().client.authorize_access_token()
        claims = dict(token["userinfo"]) if token.get("userinfo") else None
    except Exception as exc:  # noqa: BLE001 - bad state, code refused, ID token invalid
        log.info("login callback refused: %s", exc)
        return _error(_("La connexion a expiré ou n'est plus valable. Reprenez-la depuis la page d'accueil."), 400)
    if not claims or not claims.get("sub"):
        return _error(_("Le portail de connexion n'a pas renvoyé d'identité."), 400)
    sess = _session()
    next_url = safe_next(sess.pop("sso_next", None))
    for key in [k for k in sess if k.startswith("_state_")]:
        sess.pop(key)
    sess.pending_login = Login(str(claims["sub"]), claims.get("sid"), claims, _keep_tokens(token), time.time())
    sess.login = sess.pending_login
    g.pop("sso_identity", None)
    _state().store.purge()
    return redirect(next_url)


@bp.post("/logout")
def logout() -> Response:
    """End the local session, then the IdP session (RP-initiated logout with id_token_hint)."""
    try:
        validate_csrf(request.form.get("csrf_token"))
    except Exception:  # noqa: BLE001 - flask-wtf raises wtforms' ValidationError
        return _error(_("Le formulaire de déconnexion a expiré. Rechargez la page puis réessayez."), 400,
                      title=_("Déconnexion impossible"))
    login = _session().login
    _end_local_session()
    home = current_app.config.get("SSO_POST_LOGOUT_REDIRECT_URI") or request.host_url
    if login is None:
        return redirect(home)
    try:
        end_session = _state().client.load_server_metadata()["end_session_endpoint"]
    except Exception:  # noqa: BLE001
        return redirect(home)
    params = {"id_token_hint": login.tokens.get("id_token") or "", "post_logout_redirect_uri": home,
              "client_id": current_app.config["OIDC_CLIENT_ID"]}
    return redirect(f"{end_session}?{urlencode(params)}")


@bp.post("/backchannel-logout")
def backchannel_logout() -> Response:
    """OIDC Back-Channel Logout 1.0 §2.5-2.8: verify the logout token, end the matching sessions."""
    value = request.form.get("logout_token", "")
    try:
        claims = verify_logout_token(value)
    except (JoseError, ValueError) as exc:
        log.info("back-channel logout refused: %s", exc)
        response = jsonify(error="invalid_request", error_description=str(exc))
        response.status_code = 400
    except KeysUnavailable:
        response = jsonify(error="temporarily_unavailable", error_description="The IdP's keys are unavailable.")
        response.status_code = 503
        response.headers["Retry-After"] = "5"
    else:
        ended = _state().store.end(sid=claims.get("sid"), sub=claims.get("sub"))
        log.info("back-channel logout: %s local session(s) ended", ended)
        response = current_app.make_response(("", 200))
    response.headers["Cache-Control"] = "no-store"
    return response


def verify_logout_token(value: str) -> dict[str, Any]:
    """The claims of a valid logout token from our IdP for this client.

    :raises ValueError: missing, not signed by the IdP's published keys, or not a logout token.
    :raises KeysUnavailable: the IdP's keys could not be fetched.
    """
    if not value or len(value) > 8192:
        raise ValueError("missing logout_token")
    state = _state()
    algorithms = ["RS256", "ES256", "PS256"]
    # Anyone may post here: a forged token fetches the keys again only if its kid is new, and
    # never more often than SSO_JWKS_REFETCH_SECONDS (a rotated key still comes in: shared.jwks).
    token = jwt.decode(value, state.keys.for_token(value), algorithms=algorithms)
    registry = jwt.JWTClaimsRegistry(
        leeway=60,
        iss={"essential": True, "value": state.client.load_server_metadata().get("issuer", state.issuer)},
        aud={"essential": True, "value": current_app.config["OIDC_CLIENT_ID"]},
        iat={"essential": True},
        jti={"essential": True},
    )
    registry.validate(token.claims)
    claims = token.claims
    events = claims.get("events")
    if not isinstance(events, dict) or BACKCHANNEL_EVENT not in events:
        raise ValueError("not a back-channel logout token (events)")
    if "nonce" in claims:
        raise ValueError("a logout token never carries a nonce")
    if not claims.get("sid") and not claims.get("sub"):
        raise ValueError("a logout token names a sid or a sub")
    return claims
