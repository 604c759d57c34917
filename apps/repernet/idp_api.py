"""The IdP's service API (SPEC §4.8) as REPERNET calls it: client_credentials token, cached
until shortly before it expires; errors as RFC 9457 problem details mapped to exceptions."""

from __future__ import annotations

import threading
import time
from typing import Any

import requests


class ApiError(Exception):
    """The IdP refused or could not answer.

    :param detail: the problem's `detail` (or a French summary).
    :param problem: the whole problem document, when there is one.
    """

    def __init__(self, detail: str, problem: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.problem = problem or {}


class ApiConflict(ApiError):
    """409: a structure with this SIRET exists already."""


class ApiInvalid(ApiError):
    """422 (or 400): the IdP found the data invalid."""


class ApiUnavailable(ApiError):
    """Network error, timeout, 5xx, or our credentials refused."""


class IdpApi:
    """A small client of `/api/v1`.

    :param issuer: the IdP's base URL (discovery gives the token endpoint).
    :param scope: the scopes asked with client_credentials.
    """

    def __init__(self, issuer: str, client_id: str, client_secret: str,
                 scope: str = "structures:read structures:write", timeout: float = 10.0) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.scope = scope
        self.timeout = timeout
        self.http = requests.Session()
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self._token_endpoint: str | None = None
        self.tokens_fetched = 0  # observable in tests: the token is cached

    def _fetch_token(self) -> str:
        if self._token_endpoint is None:
            metadata = self.http.get(f"{self.issuer}/.well-known/openid-configuration", timeout=self.timeout)
            metadata.raise_for_status()
            self._token_endpoint = metadata.json()["token_endpoint"]
        response = self.http.post(self._token_endpoint, data={"grant_type": "client_credentials", "scope": self.scope},
                                  auth=(self.client_id, self.client_secret), timeout=self.timeout)
        if response.status_code != 200:
            raise ApiUnavailable(f"jeton refusé par le portail ({response.status_code})")
        body = response.json()
        self._token = body["access_token"]
        # Renew a little before expiry so a token never dies in flight.
        self._expires_at = time.time() + max(0, int(body.get("expires_in", 60)) - 30)
        self.tokens_fetched += 1
        return self._token

    def token(self, force: bool = False) -> str:
        """A valid access token, fetched once and reused until shortly before it expires."""
        with self._lock:
            if force or self._token is None or time.time() >= self._expires_at:
                return self._fetch_token()
            return self._token

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            for attempt in (0, 1):
                headers = {"Authorization": f"Bearer {self.token(force=attempt > 0)}", "Accept": "application/json"}
                response = self.http.request(method, f"{self.issuer}/api/v1{path}", headers=headers,
                                             timeout=self.timeout, **kwargs)
                if response.status_code != 401:
                    return response
            raise ApiUnavailable("le portail refuse les identifiants de REPERNET")
        except (requests.RequestException, ValueError, KeyError) as exc:
            raise ApiUnavailable(f"portail injoignable : {exc}") from exc

    @staticmethod
    def _problem(response: requests.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    def create_structure(self, payload: dict[str, Any]) -> dict[str, Any]:
        """POST /api/v1/structures; returns the structure created.

        :raises ApiConflict: the SIRET is taken. :raises ApiInvalid: refused data.
        :raises ApiUnavailable: anything else.
        """
        response = self._call("POST", "/structures", json=payload)
        if response.status_code in (200, 201):
            return self._problem(response)
        problem = self._problem(response)
        detail = str(problem.get("detail") or problem.get("title") or "")
        if response.status_code == 409:
            raise ApiConflict(detail, problem)
        if response.status_code in (400, 422):
            raise ApiInvalid(detail, problem)
        raise ApiUnavailable(f"réponse inattendue du portail ({response.status_code})", problem)

    def get_structure(self, siret: str) -> dict[str, Any] | None:
        """GET /api/v1/structures/<siret>; None when unknown."""
        response = self._call("GET", f"/structures/{siret}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise ApiUnavailable(f"réponse inattendue du portail ({response.status_code})")
        return self._problem(response)
