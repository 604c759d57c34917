"""Service-to-service calls, both sides (SPEC §4.8, §7 "Flux vers le CARIF-OREF").

- `ServiceClient`: an app calling an API with a client_credentials token, fetched once and reused
  until shortly before it expires (one token call per lifetime, not per request).
- `require_bearer(scope)`: an app receiving such calls; the Bearer token is checked against the
  issuer's published keys (shared.jwks: only an unknown `kid` refetches, at most once per interval), with
  `iss`, `aud` (this app), `exp` and the scope; every refusal is an RFC 9457 problem.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from flask import current_app, g, request
from joserfc import jwt
from joserfc.errors import JoseError
from werkzeug.exceptions import HTTPException

from shared.jwks import KeysUnavailable, RemoteKeys
from shared.web import csrf, problem

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
ALGORITHMS = ["ES256", "RS256", "PS256"]


class ApiError(Exception):
    """The other service refused or could not answer.

    :param detail: the problem's `detail` (or a French summary).
    :param problem: the whole problem document, when there is one.
    """

    def __init__(self, detail: str, problem: dict[str, Any] | None = None, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.problem = problem or {}
        self.status = status


class ApiConflict(ApiError):
    """409: the object exists already (or changed meanwhile)."""


class ApiInvalid(ApiError):
    """400 / 422: the other side found the data invalid."""


class ApiUnavailable(ApiError):
    """Network error, timeout, 5xx, or our credentials refused."""


def _discovery(http: requests.Session, issuer: str, timeout: float) -> dict[str, Any]:
    response = http.get(f"{issuer}/.well-known/openid-configuration", timeout=timeout)
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


class ServiceClient:
    """Calls another service with this app's client_credentials token.

    :param issuer: the IdP's base URL (its discovery gives the token endpoint).
    :param scope: the scopes asked for.
    :param base_url: the API's base URL (the IdP's `/api/v1` when None).
    """

    RENEW_BEFORE = 30  # seconds: a token never dies in flight

    def __init__(self, issuer: str, client_id: str, client_secret: str, scope: str,
                 base_url: str | None = None, timeout: float = 10.0) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id, self.client_secret, self.scope = client_id, client_secret, scope
        self.base_url = (base_url or f"{self.issuer}/api/v1").rstrip("/")
        self.timeout = timeout
        self.http = requests.Session()
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self._token_endpoint: str | None = None
        self.tokens_fetched = 0  # observable: the token is reused

    def token(self, force: bool = False) -> str:
        """A valid access token, fetched once and reused until shortly before it expires."""
        with self._lock:
            if force or self._token is None or time.time() >= self._expires_at:
                self._token, self._expires_at = self._fetch_token()
                self.tokens_fetched += 1
            return self._token

    def _fetch_token(self) -> tuple[str, float]:
        if self._token_endpoint is None:
            self._token_endpoint = _discovery(self.http, self.issuer, self.timeout)["token_endpoint"]
        response = self.http.post(self._token_endpoint, data={"grant_type": "client_credentials", "scope": self.scope},
                                  auth=(self.client_id, self.client_secret), timeout=self.timeout)
        if response.status_code != 200:
            raise ApiUnavailable(f"jeton refusé par le portail ({response.status_code})", status=response.status_code)
        body = response.json()
        return body["access_token"], time.time() + max(0, int(body.get("expires_in", 60)) - self.RENEW_BEFORE)

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One API call; a 401 fetches a new token once (revoked or rotated keys).

        :raises ApiUnavailable: network error, timeout, or our credentials refused.
        """
        try:
            for attempt in (0, 1):
                headers = {"Authorization": f"Bearer {self.token(force=attempt > 0)}", "Accept": "application/json"}
                response = self.http.request(method, f"{self.base_url}{path}", headers=headers,
                                             timeout=self.timeout, **kwargs)
                if response.status_code != 401:
                    return response
            raise ApiUnavailable("le service refuse les identifiants de cette application", status=401)
        except (requests.RequestException, ValueError, KeyError) as exc:
            raise ApiUnavailable(f"service injoignable : {exc}") from exc

    def json(self, method: str, path: str, *, ok: tuple[int, ...] = (200, 201), missing_ok: bool = False,
             **kwargs: Any) -> dict[str, Any] | None:
        """Call and return the JSON body; errors mapped to `ApiConflict`, `ApiInvalid`, `ApiUnavailable`.

        :param missing_ok: a 404 returns None instead of raising.
        """
        response = self.call(method, path, **kwargs)
        body = _json_object(response)
        if response.status_code in ok:
            return body
        if response.status_code == 404 and missing_ok:
            return None
        detail = str(body.get("detail") or body.get("title") or f"réponse {response.status_code}")
        if response.status_code == 409:
            raise ApiConflict(detail, body, response.status_code)
        if response.status_code in (400, 422):
            raise ApiInvalid(detail, body, response.status_code)
        raise ApiUnavailable(f"réponse inattendue du service ({response.status_code})", body, response.status_code)


def _json_object(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


# ---------------------------------------------------------------- the receiving side

class BearerVerifier:
    """Checks access tokens sent to this app's API (state in `app.extensions["shell.bearer"]`).

    :param audience: this API's name in the tokens' `aud` (the app's name: "catalogue").
    :param refetch_interval: an unknown `kid` refetches the JWKS at most once per interval.
    """

    def __init__(self, issuer: str, audience: str, timeout: float = 10.0, refetch_interval: float = 30.0) -> None:
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.timeout = timeout
        self.http = requests.Session()
        self._metadata: dict[str, Any] | None = None
        self.keys = RemoteKeys(self._fetch_jwks, refetch_interval)

    def _fetch_jwks(self) -> dict[str, Any]:
        if self._metadata is None:
            self._metadata = _discovery(self.http, self.issuer, self.timeout)
        response = self.http.get(self._metadata["jwks_uri"], timeout=self.timeout)
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    def verify(self, value: str) -> dict[str, Any]:
        """The claims of a valid access token for this API.

        :raises ValueError: malformed, not signed by the issuer, expired, or for another audience.
        :raises KeysUnavailable: the issuer's keys could not be fetched.
        """
        if not value or len(value) > 8192:
            raise ValueError("jeton absent ou trop long")
        keys = self.keys.for_token(value)  # a new kid (rotation) refetches, at most once per interval
        try:
            token = jwt.decode(value, keys, algorithms=ALGORITHMS)
            issuer = (self._metadata or {}).get("issuer", self.issuer)
            jwt.JWTClaimsRegistry(leeway=30, iss={"essential": True, "value": issuer}, exp={"essential": True},
                                  aud={"essential": True, "value": self.audience}).validate(token.claims)
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"jeton refusé : {exc}") from exc
        return dict(token.claims)


def require_bearer(scope: str) -> Callable[[F], F]:
    """An API view for other services: a valid token for this app with `scope` (RFC 6750 errors as
    RFC 9457 problems); its claims are in `g.service_claims` (`client_id` names the caller)."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            verifier: BearerVerifier = current_app.extensions["shell.bearer"]
            header = request.headers.get("Authorization", "")
            value = header[7:].strip() if header[:7].lower() == "bearer " else ""
            try:
                claims = verifier.verify(value)
            except ValueError as exc:
                log.info("API call refused: %s", exc)
                return problem(401, "Un jeton d'accès valide pour ce service est requis (Authorization: Bearer).",
                               "Jeton d'accès invalide", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
            except (KeysUnavailable, requests.RequestException, HTTPException) as exc:
                log.warning("cannot read the issuer's keys: %s", exc)
                return problem(503, headers={"Retry-After": "5"})
            if scope not in str(claims.get("scope", "")).split():
                return problem(403, f"Ce jeton n'a pas la portée « {scope} ».", "Portée insuffisante",
                               {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'})
            g.service_claims = claims
            return view(*args, **kwargs)

        return csrf.exempt(wrapped)  # type: ignore[no-any-return] # a Bearer token, no cookie: no CSRF

    return decorator
