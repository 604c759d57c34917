"""Driving the OpenID Connect flows as a browser and a client would, and checking tokens with
PyJWT (an independent library) against the published JWKS."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import jwt
import requests

from tests.conftest import PASSWORD, forms

CALLBACK = "http://127.0.0.1:9999/callback"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_url(issuer: str, client_id: str, *, scope: str = "openid profile email", challenge: str | None = None,
                  redirect_uri: str = CALLBACK, **extra: str) -> str:
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "scope": scope,
              "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8), **extra}
    if challenge:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    return f"{issuer}/oauth/authorize?{urlencode(params)}"


def browse(browser: requests.Session, url: str, *, email: str | None = None, password: str = PASSWORD,
           consent: str = "accept", stop: str = CALLBACK, structure: str | None = None) -> str:
    """Follow redirects and fill the login, structure-chooser and consent forms until a redirect
    to `stop`; `structure` (an id) picks the structure, else the pre-selected one is kept."""
    response = browser.get(url, allow_redirects=False)
    for _ in range(12):
        if response.status_code in (301, 302, 303):
            location = urljoin(response.url, response.headers["Location"])
            if location.startswith(stop):
                return location
            response = browser.get(location, allow_redirects=False)
            continue
        assert response.status_code == 200, (response.status_code, response.text[:500])
        form = forms(response.text)[-1]
        if "password" in form["fields"]:
            assert email, "login form shown but no e-mail given"
            data = {**form["fields"], "email": email, "password": password}
        elif "decision" in form.get("buttons", {}):
            data = {**form["fields"], "decision": consent}
        elif 'name="structure"' in response.text:
            first = re.search(r'name="structure" value="([^"]+)"', response.text)
            data = {"structure": first.group(1) if first else "", **form["fields"],
                    **({"structure": structure} if structure else {})}
        else:
            raise AssertionError(f"unexpected page: {response.text[:800]}")
        response = browser.post(urljoin(response.url, form["action"] or response.url), data=data,
                                allow_redirects=False)
    raise AssertionError("too many steps")


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def exchange(issuer: str, code: str, client_id: str, secret: str | None, verifier: str | None = None,
             redirect_uri: str = CALLBACK) -> requests.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if verifier:
        data["code_verifier"] = verifier
    auth = (client_id, secret) if secret else None
    if not secret:
        data["client_id"] = client_id
    return requests.post(f"{issuer}/oauth/token", data=data, auth=auth, timeout=10)


def refresh(issuer: str, token: str, client_id: str, secret: str) -> requests.Response:
    return requests.post(f"{issuer}/oauth/token", data={"grant_type": "refresh_token", "refresh_token": token},
                         auth=(client_id, secret), timeout=10)


def jwks_client(issuer: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(f"{issuer}/oauth/jwks", cache_keys=False, cache_jwk_set=False)


def verify_jwt(issuer: str, token: str, *, audience: str | None, typ: str | None = None,
               algorithms: tuple[str, ...] = ("RS256", "ES256")) -> dict[str, Any]:
    """Verify a JWT with PyJWT against the published JWKS; returns its claims."""
    header = jwt.get_unverified_header(token)
    if typ is not None:
        assert header.get("typ") == typ, header
    key = jwks_client(issuer).get_signing_key_from_jwt(token)
    options = {"require": ["iss", "exp", "iat", "sub", "jti"]}
    if audience is None:
        options["verify_aud"] = False  # type: ignore[assignment]
    return jwt.decode(token, key.key, algorithms=list(algorithms), audience=audience, issuer=issuer,
                      options=options)


def code_flow(issuer: str, browser: requests.Session, client_id: str, secret: str | None, email: str,
              scope: str = "openid profile email", structure: str | None = None, **extra: str) -> dict[str, Any]:
    """A whole code + PKCE flow; returns the token response (asserting success).

    :param structure: the structure id to pick if the IdP asks which one the user acts for.
    """
    verifier, challenge = pkce_pair()
    url = authorize_url(issuer, client_id, scope=scope, challenge=challenge, **extra)
    callback = browse(browser, url, email=email, structure=structure)
    params = query(callback)
    assert "code" in params, params
    assert params["iss"] == issuer
    assert params["state"] == query(url)["state"]
    response = exchange(issuer, params["code"], client_id, secret, verifier)
    assert response.status_code == 200, response.text
    token = response.json()
    token["_nonce"] = query(url)["nonce"]
    return token
