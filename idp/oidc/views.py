"""OpenID Connect endpoints: discovery, JWKS, authorize (+consent), token, userinfo,
introspection, revocation, end-session (SPEC §4.7)."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oidc.rpinitiated import EndSessionEndpoint as _EndSessionEndpoint
from flask import (
    Blueprint,
    Flask,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from idp.core.memberships import active_memberships, choose_structure
from idp.extensions import csrf, db, limiter, read_session
from idp.models import (
    AuthorizationCode,
    Client,
    Consent,
    LoginSession,
    Membership,
    MembershipStatus,
    Structure,
    User,
)
from idp.oidc import freshness, logout
from idp.oidc.claims import CLAIMS_SUPPORTED, SCOPES_SUPPORTED, ClaimsCache
from idp.oidc.keys import KeyRing, etag_of
from idp.oidc.logout import sessions_ended
from idp.oidc.provider import create_server, issuer
from idp.oidc.tokens import TokenIssuer
from idp.oidc.userinfo import init_app as init_userinfo
from idp.oidc.userinfo import presented_token
from idp.web import end_login_session, record
from idp.web import origin as web_origin
from shared.bounds import ascii_digits, bounded_int
from shared.web import CSP, SECURITY_HEADERS

bp = Blueprint("oidc", __name__)

PROMPTS = {"none", "login", "consent", "select_account"}
MAX_AGE_LIMIT = 999_999_999  # seconds (31 years): any larger max_age is refused as malformed
# Parameters kept with the code, no longer than their columns: refused, never cut short (SQLite) nor a
# "value too long" from PostgreSQL (a 500).
KEPT_LENGTHS = {name: AuthorizationCode.__table__.c[name].type.length for name in ("nonce", "scope")}
# Our own forms posted back to /oauth/authorize (consent): not parameters of the request.
OWN_FIELDS = frozenset({"decision", "csrf_token"})


def server() -> Any:
    return current_app.extensions["authorization_server"]


@bp.get("/.well-known/openid-configuration")
def discovery() -> Response:
    """OpenID Provider metadata (OIDC Discovery 1.0, RFC 8414), serialised once at start-up."""
    return _json_response(current_app.extensions["discovery_bytes"], current_app.extensions["discovery_etag"],
                          "public, max-age=3600")


@bp.get("/oauth/jwks")
def jwks() -> Response:
    """The published public keys, including the next key before it signs (serialised once per
    key-set change)."""
    keyring = issuer().keyring
    return _json_response(keyring.jwks_bytes(db.session), keyring.jwks_etag(db.session),
                          f"public, max-age={current_app.config['JWKS_MAX_AGE']}")


def not_modified(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 §13.1.2: weak comparison, a list or `*`."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))


def _json_response(body: bytes, etag: str, cache_control: str) -> Response:
    headers = {"Cache-Control": cache_control, "ETag": etag}
    if not_modified(request.headers.get("If-None-Match"), etag):
        return Response(status=304, headers=headers)
    return Response(body, content_type="application/json", headers=headers)


class PublishedDocuments:
    """WSGI middleware answering GET discovery and GET JWKS from prebuilt bytes, before Flask builds
    a request context (issue 2 item 9: these are fetched by every relying party, often).

    The headers are those the Flask views send after `idp.web`'s after_request hooks. The JWKS is
    served here only while the key ring is fresh; otherwise the request goes on to the Flask view,
    which reloads the keys."""

    def __init__(self, app: Flask, wrapped: Any) -> None:
        self.app, self.wrapped = app, wrapped
        self.discovery_path = "/.well-known/openid-configuration"
        self.jwks_path = "/oauth/jwks"

        self.discovery_cache = "public, max-age=3600"
        self.jwks_cache = f"public, max-age={app.config['JWKS_MAX_AGE']}"
        # The discovery document never changes in a process: its whole answer is built once.
        body, etag = app.extensions["discovery_bytes"], app.extensions["discovery_etag"]
        self.discovery = (body, self._headers(body, etag, self.discovery_cache),
                          self._headers(None, etag, self.discovery_cache), etag)
        self._jwks: tuple[bytes, list[tuple[str, str]], list[tuple[str, str]], str] | None = None

    @staticmethod
    def _headers(body: bytes | None, etag: str, cache_control: str) -> list[tuple[str, str]]:
        """200's headers with a body, 304's without (RFC 9110 §15.4.5: ETag and Cache-Control kept)."""
        head = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))] if body is not None else []
        return [*head, ("ETag", etag), ("Cache-Control", cache_control), ("Content-Security-Policy", CSP),
                *SECURITY_HEADERS.items()]

    def _jwks_answer(self) -> tuple[bytes, list[tuple[str, str]], list[tuple[str, str]], str] | None:
        cached = self.app.extensions["token_issuer"].keyring.cached_jwks()
        if cached is None:
            return None
        answer = self._jwks
        if answer is None or answer[0] is not cached[0]:  # headers rebuilt once per key-set change
            body, etag = cached
            answer = self._jwks = (body, self._headers(body, etag, self.jwks_cache),
                                   self._headers(None, etag, self.jwks_cache), etag)
        return answer

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("REQUEST_METHOD") == "GET" and not environ.get("QUERY_STRING"):
            path = environ.get("PATH_INFO")
            answer = None
            if path == self.discovery_path:
                answer = self.discovery
            elif path == self.jwks_path:
                answer = self._jwks_answer()
            if answer is not None:
                body, headers, headers_304, etag = answer
                if not_modified(environ.get("HTTP_IF_NONE_MATCH"), etag):
                    start_response("304 Not Modified", headers_304)
                    return []
                start_response("200 OK", headers)
                return [body]
        return self.wrapped(environ, start_response)


# ------------------------------------------------------------------ authorize

def _param(name: str) -> str | None:
    """An authorization request parameter, sent by GET (query) or POST (form): OIDC Core §3.1.2.1."""
    return request.values.get(name) if name not in OWN_FIELDS else None


def _request_items() -> list[tuple[str, str]]:
    return [(k, v) for k, v in request.values.items(multi=True) if k not in OWN_FIELDS]


def _error_redirect(redirect_uri: str, error: str, description: str | None = None) -> Response:
    params = {"error": error, "iss": current_app.config["ISSUER"]}
    if description:
        params["error_description"] = description
    if _param("state"):
        params["state"] = _param("state")
    return redirect(add_params_to_uri(redirect_uri, list(params.items())))


def _invalid_request_page(description: str) -> tuple[str, int]:
    """An error shown, not redirected: the request could not be trusted far enough to redirect."""
    return render_template("oidc/error.html", error="invalid_request", description=description), 400


def _authorization_error(error: OAuth2Error) -> Response | tuple[str, int]:
    """Redirect to a redirect URI already validated for the client; otherwise show the error
    (RFC 6749 §4.1.2.1: never redirect to an unchecked URI)."""
    if error.redirect_uri:
        return _error_redirect(error.redirect_uri, error.error, error.description)
    return render_template("oidc/error.html", error=error.error, description=error.description), 400


def _login_redirect(force: bool, drop: frozenset[str] = frozenset()) -> Response:
    """Off to the login page, coming back here without what the login satisfies."""
    next_url = _authorize_url_without_prompts({"login"}, drop_max_age=True, drop=drop)
    args: dict[str, Any] = {"next": next_url}
    if force:
        args["force"] = 1
    if _param("login_hint"):
        args["login_hint"] = _param("login_hint")
    if _param("ui_locales"):
        args["ui_locales"] = _param("ui_locales")
    return redirect(url_for("auth.login", **args))


def _authorize_url_without_prompts(remove: set[str], drop_max_age: bool = False,
                                   drop: frozenset[str] = frozenset()) -> str:
    """This request as a GET URL (also when it came by POST), less the prompts already satisfied."""
    items = []
    for key, value in _request_items():
        if (key == "max_age" and drop_max_age) or key in drop:
            continue
        if key == "prompt":
            value = " ".join(p for p in value.split() if p not in remove)
            if not value:
                continue
        items.append((key, value))
    return f"{url_for('oidc.authorize')}?{urlencode(items)}"


def _consent_covers(user: User, client: Client, scope: str) -> bool:
    consent = db.session.scalar(
        select(Consent).where(Consent.user_id == user.id, Consent.client_id == client.client_id)
    )
    return consent is not None and set(scope.split()) <= set(consent.scope.split())


def _save_consent(user: User, client: Client, scope: str) -> None:
    consent = db.session.scalar(
        select(Consent).where(Consent.user_id == user.id, Consent.client_id == client.client_id)
    )
    if consent is None:
        db.session.add(Consent(user_id=user.id, client_id=client.client_id, scope=scope))
    else:
        consent.scope = " ".join(sorted(set(consent.scope.split()) | set(scope.split())))
    record("consent.granted", actor=user.id, subject=user.id, client_id=client.client_id, scope=scope)


def _apply_siret_hint(login: LoginSession) -> None:
    """`siret_hint`: an RP asks for one of the user's structures; ignored when not a member."""
    hint = _param("siret_hint") or ""
    if not ascii_digits(hint, 14):
        return
    structure_id = db.session.scalar(
        select(Membership.structure_id).join(Structure)
        .where(Membership.user_id == login.user_id, Membership.status == MembershipStatus.ACTIVE,
               Structure.siret == hint))
    if structure_id is not None and structure_id != login.current_structure_id:
        choose_structure(db.session, login, structure_id, web_origin())


def _unsupported_parameter(redirect_uri: str) -> Response | None:
    """OIDC Core §6.1-6.2: request objects are not supported, and say so rather than ignore them."""
    if "request" in request.values:
        return _error_redirect(redirect_uri, "request_not_supported", "Request objects are not supported.")
    if "request_uri" in request.values:
        return _error_redirect(redirect_uri, "request_uri_not_supported", "'request_uri' is not supported.")
    return None


def _hinted_subject(client: Client) -> str | None:
    """The `sub` of a valid `id_token_hint` issued to this client; "" when there is no hint.

    :raises ValueError: when the hint is not an ID token this OP issued to this client.
    """
    hint = _param("id_token_hint")
    if hint is None:
        return ""
    claims = issuer().verify_id_token_hint(db.session, hint)
    audience = claims.get("aud") if claims else None
    if claims is None or client.client_id not in (audience if isinstance(audience, list) else [audience]):
        raise ValueError("id_token_hint")
    return str(claims["sub"])


@bp.route("/oauth/authorize", methods=["GET", "POST"])
@csrf.exempt  # an RP may send the request by POST (OIDC Core §3.1.2.1); our consent form is checked below
def authorize() -> Any:
    """Authorization endpoint (GET or POST): checks the request, the login, the prompt, the consent;
    issues a code."""
    decision = request.form.get("decision") if request.method == "POST" else None
    if request.method == "POST" and decision is None:
        # An RP's POST (OIDC Core §3.1.2.1): from another site it comes without our SameSite=Lax
        # session cookie, and a signed-in user would look signed out (prompt=none: login_required).
        # The same request as a GET, every parameter kept, is a top-level navigation: the cookie comes.
        return redirect(_authorize_url_without_prompts(set()), 303)
    if decision is not None:
        csrf.protect()  # the consent form is ours: its CSRF token is checked
    login = current_user.login_session
    user = login.user if login else None
    try:
        grant = server().get_consent_grant(end_user=user)
    except OAuth2Error as error:
        return _authorization_error(error)
    except ValueError:  # authlib refuses to quote what we were sent (control, quote, non-ASCII)
        return _invalid_request_page("Malformed authorization request.")
    client: Client = grant.client
    redirect_uri: str = grant.redirect_uri
    unsupported = _unsupported_parameter(redirect_uri)
    if unsupported is not None:
        return unsupported
    prompts = set((_param("prompt") or "").split())
    if not prompts <= PROMPTS or ("none" in prompts and len(prompts) > 1):
        return _error_redirect(redirect_uri, "invalid_request", "Invalid 'prompt' parameter.")
    for name, length in KEPT_LENGTHS.items():
        if len(_param(name) or "") > length:
            return _error_redirect(redirect_uri, "invalid_request", f"The '{name}' parameter is too long.")
    max_age_text = _param("max_age")
    max_age = bounded_int(max_age_text, 0, MAX_AGE_LIMIT) if max_age_text is not None else None
    if max_age_text is not None and max_age is None:
        return _error_redirect(redirect_uri, "invalid_request", "Invalid 'max_age' parameter.")
    try:
        hinted = _hinted_subject(client)
    except ValueError:
        return _error_redirect(redirect_uri, "invalid_request", "Invalid 'id_token_hint' parameter.")

    too_old = login is not None and max_age is not None and time.time() - login.auth_time.timestamp() > max_age
    if user is None or "login" in prompts or too_old:
        if "none" in prompts:
            return _error_redirect(redirect_uri, "login_required")
        return _login_redirect(force=user is not None)
    assert login is not None
    if hinted and hinted != str(user.id):
        # The hint names someone else than the session's user (OIDC Core §3.1.2.1): never a code
        # for the wrong person silently; without prompt=none, whoever logs in afresh decides.
        if "none" in prompts:
            return _error_redirect(redirect_uri, "login_required", "The session is not the hinted user's.")
        return _login_redirect(force=True, drop=frozenset({"id_token_hint"}))

    _apply_siret_hint(login)
    if "select_account" in prompts and decision is None:
        # The account and the structure it acts for (SPEC §5.3): the switch page comes back here.
        continue_url = _authorize_url_without_prompts({"select_account"})
        return render_template("oidc/select_account.html", client=client, user=user, continue_url=continue_url,
                               memberships=active_memberships(db.session, user.id),
                               switch_url=url_for("account.switch_structure", next=continue_url),
                               other_url=url_for("auth.login", force=1,
                                                 next=_authorize_url_without_prompts({"select_account", "login"})))

    scope = grant.request.scope
    if not client.trusted and ("consent" in prompts or not _consent_covers(user, client, scope)):
        if "none" in prompts:
            return _error_redirect(redirect_uri, "consent_required")
        if decision == "deny":
            record("consent.denied", actor=user.id, subject=user.id, client_id=client.client_id)
            db.session.commit()
            return _error_redirect(redirect_uri, "access_denied", "The user refused.")
        if decision != "accept":
            return render_template("oidc/consent.html", client=client, user=user, scopes=scope.split(),
                                   action=_authorize_url_without_prompts(set()))
        _save_consent(user, client, scope)

    try:
        response = server().create_authorization_response(grant=grant, grant_user=user)
    except ValueError:
        return _invalid_request_page("Malformed authorization request.")
    db.session.commit()
    return response


# ------------------------------------------------------------------ token and friends

def _client_auth_ip_limit() -> str:
    return current_app.config["RATELIMIT_CLIENT_AUTH_IP"]


def _client_auth_client_limit() -> str:
    return current_app.config["RATELIMIT_CLIENT_AUTH_CLIENT"]


def _presented_client_key() -> str:
    """The client id a request claims (Basic user name, else the form's client_id), for the
    per-client limit on failed authentications: read before, and whether or not, it is proven."""
    auth = request.authorization
    claimed = (auth.username if auth is not None and auth.type == "basic" else None) or request.form.get("client_id")
    return "client-auth:" + (claimed or "-")[:64]


def _client_auth_failed(response: Response) -> bool:
    """Only failed client authentications count (RFC 6749 §5.2 `invalid_client`)."""
    if response.status_code not in (400, 401):
        return False
    body = response.get_json(silent=True)
    return isinstance(body, dict) and body.get("error") == "invalid_client"


def limit_client_authentication(view: Any) -> Any:
    """Failed client authentications limited per client address and per client id (issue 15 finding
    18); past the limit every attempt gets 429 with Retry-After, the right secret included: a
    guess must not be confirmed by a different answer."""
    view = _PER_CLIENT(view)
    return _PER_ADDRESS(view)


# Shared by the token, introspection and revocation endpoints: one count across the three.
_PER_CLIENT = limiter.shared_limit(_client_auth_client_limit, scope="client-auth-client",
                                   key_func=_presented_client_key, deduct_when=_client_auth_failed)
_PER_ADDRESS = limiter.shared_limit(_client_auth_ip_limit, scope="client-auth-ip", deduct_when=_client_auth_failed)


@bp.post("/oauth/token")
@csrf.exempt
@limiter.limit(lambda: current_app.config["RATELIMIT_TOKEN_IP"] or "1000000/second",
               exempt_when=lambda: not current_app.config["RATELIMIT_TOKEN_IP"])
@limit_client_authentication
def token() -> Response:
    """Token endpoint: code exchange, refresh (rotating), client credentials."""
    try:
        response = server().create_token_response()
    except ValueError:
        return _malformed()
    db.session.commit()  # also keeps what an error decided: a burnt code, a revoked family
    return response


def _malformed() -> Response:
    """authlib refuses to quote a value it was sent in its error (quotes, non-ASCII): still a 400."""
    db.session.rollback()
    response = jsonify(error="invalid_request", error_description="Malformed request.")
    response.status_code = 400
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/oauth/userinfo", methods=["GET", "POST"])
@csrf.exempt
def userinfo() -> Response:
    """UserInfo (OIDC Core §5.3), GET or POST: what the WSGI layer leaves to Flask (idp.oidc.userinfo)."""
    form_token = (request.form.get("access_token") if request.method == "POST"
                  and request.mimetype == "application/x-www-form-urlencoded" else None)
    session = read_session()  # reads only: no transaction round trips on PostgreSQL
    try:
        answer = current_app.extensions["userinfo"].answer(
            session, presented_token(request.headers.get("Authorization"), form_token))
    finally:
        session.close()
    return Response(answer.body, answer.status, answer.headers)


@bp.post("/oauth/introspect")
@csrf.exempt
@limit_client_authentication
def introspect() -> Response:
    """Token introspection (RFC 7662), for the client the token was issued to."""
    try:
        return server().create_endpoint_response("introspection")
    except ValueError:
        return _malformed()


@bp.post("/oauth/revoke")
@csrf.exempt
@limit_client_authentication
def revoke() -> Response:
    """Token revocation (RFC 7009)."""
    try:
        response = server().create_endpoint_response("revocation")
    except ValueError:
        return _malformed()
    db.session.commit()
    return response


# ------------------------------------------------------------------ logout

class EndSessionEndpoint(_EndSessionEndpoint):
    def get_server_jwks(self) -> Any:
        return issuer().keyring.keyset(db.session)

    def _validate_id_token_hint(self, id_token_hint: str) -> dict[str, Any]:
        """The same check as at /oauth/authorize (one parser for every hint from outside)."""
        claims = issuer().verify_id_token_hint(db.session, id_token_hint)
        if claims is None:
            raise InvalidRequestError("Invalid 'id_token_hint' parameter.")
        return claims

    def end_session(self, end_session_request: Any) -> None:
        claims = end_session_request.id_token_claims or {}
        login = current_user.login_session
        # An id_token_hint for another session must not log out this browser's session.
        if login is not None and claims.get("sid") not in (None, login.id):
            return
        ended = end_login_session()
        if ended is not None:
            record("logout", actor=ended.user_id, subject=ended.user_id,
                   client_id=end_session_request.client.client_id if end_session_request.client else None)
            sessions_ended(db.session, [ended])


@bp.route("/oauth/logout", methods=["GET", "POST"])
@csrf.exempt
def end_session() -> Any:
    """RP-initiated logout: with a valid id_token_hint at once, otherwise after confirmation."""
    try:
        req = server().validate_endpoint_request("end_session")
    except OAuth2Error as error:
        return render_template("oidc/error.html", error=error.error, description=error.description), 400
    except ValueError:
        return _invalid_request_page("Malformed logout request.")
    if req.needs_confirmation and request.form.get("confirm") != "1":
        if not current_user.is_authenticated:
            return render_template("oidc/logged_out.html", client=req.client, redirect_uri=req.redirect_uri)
        return render_template("oidc/confirm_logout.html", client=req.client)
    if req.needs_confirmation:
        csrf.protect()  # the confirmation form is ours: check its token
    response = server().create_endpoint_response("end_session", req)
    db.session.commit()
    return response or render_template("oidc/logged_out.html", client=req.client, redirect_uri=None)


def init_app(app: Flask) -> None:
    """Build the authorization server, the key ring, the token issuer and the discovery document."""
    keyring = KeyRing(ttl=app.config["KEY_CACHE_SECONDS"])
    app.extensions["token_issuer"] = TokenIssuer(app.config["ISSUER"], keyring, app.config)
    logout.init_app(app)  # the core's "access ended" signals: refresh tokens, back-channel logout
    app.extensions["claims_cache"] = ClaimsCache()
    freshness.init_app(app)
    authorization_server = create_server(app)
    authorization_server.register_endpoint(EndSessionEndpoint)
    app.extensions["authorization_server"] = authorization_server
    iss = app.config["ISSUER"]
    discovery_document = app.extensions["discovery"] = {
        "issuer": iss,
        "authorization_endpoint": f"{iss}/oauth/authorize",
        "token_endpoint": f"{iss}/oauth/token",
        "userinfo_endpoint": f"{iss}/oauth/userinfo",
        "jwks_uri": f"{iss}/oauth/jwks",
        "introspection_endpoint": f"{iss}/oauth/introspect",
        "revocation_endpoint": f"{iss}/oauth/revoke",
        "end_session_endpoint": f"{iss}/oauth/logout",
        "scopes_supported": SCOPES_SUPPORTED,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "ES256"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": CLAIMS_SUPPORTED,
        "acr_values_supported": ["urn:portail:acr:pwd", "urn:portail:acr:mfa"],
        "prompt_values_supported": sorted(PROMPTS),
        "ui_locales_supported": list(app.config["LANGUAGES"]),
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "frontchannel_logout_supported": False,
    }
    app.extensions["discovery_bytes"] = json.dumps(discovery_document, separators=(",", ":")).encode()
    app.extensions["discovery_etag"] = etag_of(app.extensions["discovery_bytes"])
    app.wsgi_app = PublishedDocuments(app, app.wsgi_app)  # type: ignore[method-assign]
    init_userinfo(app)  # /oauth/userinfo answered before Flask's request machinery too (issue 18)
