"""Issue 15, the protocol side: each finding of the black-box audit replayed over HTTP, then the
sweep of its class (every endpoint, every token or hint from outside). Tokens are checked and
forged with PyJWT, independently of the IdP's own library."""

from __future__ import annotations

import base64
import json
import time
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import new_siret
from tests.oidc_helpers import (
    CALLBACK,
    authorize_url,
    browse,
    code_flow,
    exchange,
    pkce_pair,
    query,
    refresh,
    verify_jwt,
)


@pytest.fixture
def service(create_client: Any) -> tuple[str, str]:
    return create_client(name="Service API (durcissement)", grant_types=["client_credentials"],
                         scope="structures:read structures:write members:read", redirect_uris=[])


def client_credentials(issuer: str, client: tuple[str, str]) -> requests.Response:
    return requests.post(f"{issuer}/oauth/token", data={"grant_type": "client_credentials"}, auth=client, timeout=10)


def b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def our_key(app: Any, alg: str = "RS256") -> tuple[str, str]:
    """(kid, private PEM) of the IdP's active key: to sign hints the IdP must accept or refuse on
    their claims alone (expired, wrong audience)."""
    from sqlalchemy import select

    from idp.extensions import db
    from idp.models import SigningKey, utcnow

    with app.app_context():
        now = utcnow()
        keys = db.session.scalars(select(SigningKey).where(SigningKey.alg == alg, SigningKey.active_at <= now)
                                  .order_by(SigningKey.active_at.desc())).all()
        key = next(k for k in keys if k.retired_at is None or k.retired_at > now)
        return key.kid, key.private_pem


def other_key_pem() -> str:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode()


def hint_claims(issuer: str, sub: str, aud: str, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": issuer, "sub": sub, "aud": aud, "iat": now, "exp": now + 600, "jti": "x", **extra}


def forged_hints(app: Any, issuer: str, sub: str, aud: str) -> dict[str, str]:
    """Every kind of hint that is not an ID token this IdP issued to this client."""
    kid, pem = our_key(app)
    claims = hint_claims(issuer, sub, aud)
    return {
        "other_key": jwt.encode(claims, other_key_pem(), algorithm="RS256", headers={"kid": kid}),
        "alg_none": f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{b64(claims)}.",
        "wrong_audience": jwt.encode(hint_claims(issuer, sub, "another-client"), pem, algorithm="RS256",
                                     headers={"kid": kid}),
        "wrong_issuer": jwt.encode(hint_claims("https://evil.example", sub, aud), pem, algorithm="RS256",
                                   headers={"kid": kid}),
        "access_token_typ": jwt.encode(claims, pem, algorithm="RS256", headers={"kid": kid, "typ": "at+jwt"}),
        "nul_in_kid": jwt.encode(claims, pem, algorithm="RS256", headers={"kid": kid + "\x00"}),
        "unknown_kid": jwt.encode(claims, pem, algorithm="RS256", headers={"kid": "inconnue"}),
        "garbage": "not.a.jwt",
        "bad_base64": "%%%.%%%.%%%",
        "oversized": jwt.encode({**claims, "pad": "x" * 20000}, pem, algorithm="RS256", headers={"kid": kid}),
    }


# ------------------------------------------------------------------ finding 1: id_token_hint

def test_a_forged_or_foreign_hint_never_yields_a_code(app: Any, live_server: str, browser: requests.Session,
                                                      account: Any, create_account: Any,
                                                      trusted: tuple[str, str]) -> None:
    """OIDC Core §3.1.2.1: the hint must be an ID token this OP issued; prompt=none with another
    user's hint answers login_required."""
    code_flow(live_server, browser, *trusted, account.email)  # the browser's session: `account`
    other = create_account()
    genuine_other = code_flow(live_server, requests.Session(), *trusted, other.email)["id_token"]
    sent = authorize_url(live_server, trusted[0], prompt="none", id_token_hint=genuine_other)
    response = browser.get(sent, allow_redirects=False)
    assert response.status_code == 302 and response.headers["Location"].startswith(CALLBACK)
    params = query(response.headers["Location"])
    assert params["error"] == "login_required" and "code" not in params
    assert params["state"] == query(sent)["state"]

    for kind, hint in forged_hints(app, live_server, str(account.id), trusted[0]).items():
        response = browser.get(authorize_url(live_server, trusted[0], prompt="none", id_token_hint=hint),
                               allow_redirects=False)
        assert response.status_code == 302, (kind, response.status_code)
        params = query(response.headers["Location"])
        assert params.get("error") == "invalid_request" and "code" not in params, (kind, params)


def test_the_users_own_hint_works_even_expired(app: Any, live_server: str, browser: requests.Session,
                                               account: Any, trusted: tuple[str, str]) -> None:
    own = code_flow(live_server, browser, *trusted, account.email)["id_token"]
    response = browser.get(authorize_url(live_server, trusted[0], prompt="none", id_token_hint=own),
                           allow_redirects=False)
    assert "code" in query(response.headers["Location"])
    kid, pem = our_key(app)
    expired = jwt.encode(hint_claims(live_server, str(account.id), trusted[0], exp=int(time.time()) - 7200),
                         pem, algorithm="RS256", headers={"kid": kid})
    response = browser.get(authorize_url(live_server, trusted[0], prompt="none", id_token_hint=expired),
                           allow_redirects=False)
    assert "code" in query(response.headers["Location"])  # expiry tolerated (§3.1.2.1)


def test_another_users_hint_without_prompt_none_asks_to_log_in_again(live_server: str, browser: requests.Session,
                                                                     account: Any, create_account: Any,
                                                                     trusted: tuple[str, str]) -> None:
    code_flow(live_server, browser, *trusted, account.email)
    other = create_account()
    hint = code_flow(live_server, requests.Session(), *trusted, other.email)["id_token"]
    response = browser.get(authorize_url(live_server, trusted[0], id_token_hint=hint), allow_redirects=False)
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert "force=1" in response.headers["Location"]
    # Whoever logs in afresh gets the code: here the hinted user.
    callback = browse(browser, authorize_url(live_server, trusted[0], id_token_hint=hint), email=other.email)
    assert "code" in query(callback)


# ------------------------------------------------------------------ findings 2 and 3: POST, request objects

def test_authorization_request_by_post(live_server: str, browser: requests.Session, account: Any,
                                       trusted: tuple[str, str]) -> None:
    """OIDC Core §3.1.2.1: the OP MUST support POST (form-encoded); it answers with the same request
    as a GET (303), which a browser follows with the session cookie."""
    code_flow(live_server, browser, *trusted, account.email)
    verifier, challenge = pkce_pair()
    params = query(authorize_url(live_server, trusted[0], challenge=challenge))
    first = browser.post(f"{live_server}/oauth/authorize", data=params, allow_redirects=False)
    assert first.status_code == 303, first.text[:300]
    response = browser.get(urljoin(live_server, first.headers["Location"]), allow_redirects=False)
    assert response.status_code == 302, response.text[:300]
    answer = query(response.headers["Location"])
    assert answer["state"] == params["state"] and "code" in answer
    assert exchange(live_server, answer["code"], *trusted, verifier=verifier).status_code == 200


def test_authorization_by_post_through_login_and_consent(live_server: str, account: Any, create_client: Any) -> None:
    client_id, secret = create_client(trusted=False)
    browser = requests.Session()
    verifier, challenge = pkce_pair()
    params = query(authorize_url(live_server, client_id, challenge=challenge))
    first = browser.post(f"{live_server}/oauth/authorize", data=params, allow_redirects=False)
    assert first.status_code == 303 and first.headers["Location"].startswith("/oauth/authorize?")
    callback = browse(browser, urljoin(live_server, first.headers["Location"]), email=account.email)
    answer = query(callback)
    assert answer["state"] == params["state"]
    assert exchange(live_server, answer["code"], client_id, secret, verifier=verifier).status_code == 200


@pytest.mark.parametrize("prompt", [None, "none", "login consent", "select_account"])
def test_an_authorization_post_without_cookie_is_sent_back_as_the_same_get(live_server: str, trusted: tuple[str, str],
                                                                           prompt: str | None) -> None:
    """A cross-site form POST arrives without the SameSite=Lax session cookie: whatever it asks, the
    answer is a 303 to the same request as a GET, every parameter kept (prompt included), never a
    `login_required` decided without the cookie."""
    verifier, challenge = pkce_pair()
    params = query(authorize_url(live_server, trusted[0], challenge=challenge, ui_locales="fr", max_age="600",
                                 login_hint="x@example.test", **({"prompt": prompt} if prompt else {})))
    response = requests.post(f"{live_server}/oauth/authorize", data=params, allow_redirects=False, timeout=10)
    assert response.status_code == 303, response.status_code
    location = response.headers["Location"]
    assert urlsplit(location).path == "/oauth/authorize" and not urlsplit(location).netloc
    assert parse_qs(urlsplit(location).query) == {k: [v] for k, v in params.items()}
    assert "no-store" in response.headers.get("Cache-Control", "")


def test_the_consent_forms_own_post_still_decides(live_server: str, account: Any, create_client: Any) -> None:
    client_id, secret = create_client(trusted=False)
    browser = requests.Session()
    for consent, expected in (("deny", "access_denied"), ("accept", None)):
        callback = browse(browser, authorize_url(live_server, client_id, prompt="consent"), email=account.email,
                          consent=consent)
        assert query(callback).get("error") == expected, (consent, query(callback))


@pytest.mark.parametrize(("name", "error"), [("request", "request_not_supported"),
                                             ("request_uri", "request_uri_not_supported")])
def test_request_objects_are_refused_not_ignored(live_server: str, browser: requests.Session, account: Any,
                                                 trusted: tuple[str, str], name: str, error: str) -> None:
    """OIDC Core §6: an OP that does not support them says so."""
    code_flow(live_server, browser, *trusted, account.email)
    value = "eyJhbGciOiJub25lIn0.e30." if name == "request" else "https://rp.example/request.jwt"
    response = browser.get(authorize_url(live_server, trusted[0], **{name: value}), allow_redirects=False)
    params = query(response.headers["Location"])
    assert params["error"] == error and "code" not in params


# ------------------------------------------------------------------ finding 4: repeated parameters

def test_token_endpoint_refuses_repeated_parameters(live_server: str, browser: requests.Session, account: Any,
                                                    trusted: tuple[str, str]) -> None:
    """RFC 6749 §3.2: parameters MUST NOT be included more than once."""
    code_flow(live_server, browser, *trusted, account.email)
    for repeated in ("code", "grant_type", "redirect_uri", "code_verifier"):
        verifier, challenge = pkce_pair()
        code = query(browse(browser, authorize_url(live_server, trusted[0], challenge=challenge)))["code"]
        data = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", CALLBACK),
                ("code_verifier", verifier)]
        data += [(k, v) for k, v in data if k == repeated]
        response = requests.post(f"{live_server}/oauth/token", data=data, auth=trusted, timeout=10)
        assert response.status_code == 400, (repeated, response.text)
        assert response.json()["error"] == "invalid_request"
        assert "access_token" not in response.json()


def _endpoints(live_server: str, trusted: tuple[str, str]) -> list[tuple[str, str, list[tuple[str, str]]]]:
    authorize = list(query(authorize_url(live_server, trusted[0], challenge=pkce_pair()[1])).items())
    return [
        ("GET", "/oauth/authorize", authorize),
        ("POST", "/oauth/authorize", authorize),
        ("POST", "/oauth/token", [("grant_type", "client_credentials"), ("scope", "openid")]),
        ("POST", "/oauth/token", [("grant_type", "refresh_token"), ("refresh_token", "x")]),
        ("POST", "/oauth/introspect", [("token", "x"), ("token_type_hint", "access_token")]),
        ("POST", "/oauth/revoke", [("token", "x"), ("token_type_hint", "refresh_token")]),
        ("POST", "/oauth/userinfo", [("access_token", "x")]),
        ("GET", "/oauth/logout", [("client_id", trusted[0]), ("post_logout_redirect_uri", CALLBACK)]),
        ("GET", "/api/v1/structures", [("q", "x"), ("page", "1")]),
        ("GET", "/login", [("next", "/account/"), ("login_hint", "a@b.test")]),
        ("GET", "/signup", [("ui_locales", "fr")]),
    ]


def test_every_endpoint_refuses_every_repeated_parameter(live_server: str, trusted: tuple[str, str]) -> None:
    """The class: each endpoint, each of its parameters sent twice → 400 invalid_request, no 500."""
    for method, path, params in _endpoints(live_server, trusted):
        for index, (name, value) in enumerate(params):
            doubled = params[: index + 1] + [(name, value)] + params[index + 1:]
            if method == "GET":
                response = requests.get(f"{live_server}{path}?{urlencode(doubled)}", allow_redirects=False,
                                        timeout=10)
            else:
                response = requests.post(f"{live_server}{path}", data=doubled, auth=trusted, allow_redirects=False,
                                         timeout=10)
            assert response.status_code == 400, (method, path, name, response.status_code)
            assert "Location" not in response.headers, (path, name)
            if path.startswith("/oauth/") and path not in ("/oauth/authorize", "/oauth/logout"):
                assert response.json()["error"] == "invalid_request", (path, name)


def test_a_parameter_split_between_query_and_body_is_repeated(live_server: str, trusted: tuple[str, str]) -> None:
    response = requests.post(f"{live_server}/oauth/token?grant_type=client_credentials",
                             data={"grant_type": "client_credentials"}, auth=trusted, timeout=10)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


# ------------------------------------------------------------------ finding 5: replayed code

def test_replayed_code_revokes_access_and_refresh_tokens(live_server: str, browser: requests.Session, account: Any,
                                                         trusted: tuple[str, str]) -> None:
    """RFC 6749 §4.1.2, RFC 9700 §4.5: every token issued from a replayed code is revoked."""
    verifier, challenge = pkce_pair()
    code = query(browse(browser, authorize_url(live_server, trusted[0], challenge=challenge),
                        email=account.email))["code"]
    first = exchange(live_server, code, *trusted, verifier=verifier).json()
    bearer = {"Authorization": f"Bearer {first['access_token']}"}
    assert requests.get(f"{live_server}/oauth/userinfo", headers=bearer, timeout=10).status_code == 200
    assert exchange(live_server, code, *trusted, verifier=verifier).status_code == 400

    assert requests.get(f"{live_server}/oauth/userinfo", headers=bearer, timeout=10).status_code == 401
    introspected = requests.post(f"{live_server}/oauth/introspect", data={"token": first["access_token"]},
                                 auth=trusted, timeout=10).json()
    assert introspected == {"active": False}
    assert refresh(live_server, first["refresh_token"], *trusted).json()["error"] == "invalid_grant"


def test_a_reused_refresh_token_revokes_the_access_tokens_of_its_family(live_server: str, browser: requests.Session,
                                                                        account: Any, trusted: tuple[str, str]) -> None:
    first = code_flow(live_server, browser, *trusted, account.email)
    rotated = refresh(live_server, first["refresh_token"], *trusted).json()
    bearer = {"Authorization": f"Bearer {rotated['access_token']}"}
    assert requests.get(f"{live_server}/oauth/userinfo", headers=bearer, timeout=10).status_code == 200
    assert refresh(live_server, first["refresh_token"], *trusted).json()["error"] == "invalid_grant"  # reuse
    assert requests.get(f"{live_server}/oauth/userinfo", headers=bearer, timeout=10).status_code == 401


# ------------------------------------------------------------------ findings 6 and 7: discovery, headers

def test_discovery_advertises_only_what_is_signed(live_server: str) -> None:
    document = requests.get(f"{live_server}/.well-known/openid-configuration", timeout=10).json()
    for key, values in document.items():
        if key.endswith("_alg_values_supported"):
            assert "none" not in values, key
    assert document["request_parameter_supported"] is False
    assert document["request_uri_parameter_supported"] is False


@pytest.mark.parametrize("path", ["/login", "/signup", "/password/forgot", "/oauth/authorize?client_id=nope",
                                  "/page-inexistante"])
def test_html_pages_send_cross_origin_opener_policy(live_server: str, path: str) -> None:
    response = requests.get(f"{live_server}{path}", allow_redirects=False, timeout=10)
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"


# ------------------------------------------------------------------ finding 13: key caches

def test_an_unknown_kid_on_the_api_does_not_break_token_issuance(app: Any, live_server: str,
                                                                 service: tuple[str, str]) -> None:
    """The key ring must never keep ORM objects of a request's session: the API's 401 rolls back,
    which used to leave the cached keys expired and detached (DetachedInstanceError → 500)."""
    kid, pem = our_key(app, "ES256")
    from cryptography.hazmat.primitives.asymmetric import ec

    foreign = ec.generate_private_key(ec.SECP256R1())
    now = int(time.time())
    forged = jwt.encode({"iss": live_server, "sub": service[0], "client_id": service[0], "exp": now + 60,
                         "jti": "j", "scope": "structures:read"}, foreign, algorithm="ES256",
                        headers={"kid": "inconnue-" + str(now), "typ": "at+jwt"})
    for _ in range(3):
        refused = requests.get(f"{live_server}/api/v1/structures", headers={"Authorization": f"Bearer {forged}"},
                               timeout=10)
        assert refused.status_code == 401
        for _ in range(3):
            assert client_credentials(live_server, service).status_code == 200


def test_an_api_404_after_a_key_reload_does_not_break_token_issuance(app: Any, live_server: str,
                                                                     service: tuple[str, str]) -> None:
    token = client_credentials(live_server, service).json()["access_token"]
    ring = app.extensions["token_issuer"].keyring
    for _ in range(3):
        ring._loaded_at = -1e9  # the cache has aged: this request reloads the keys  # noqa: SLF001
        missing = requests.get(f"{live_server}/api/v1/structures/{new_siret()}",
                               headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert missing.status_code == 404
        assert client_credentials(live_server, service).status_code == 200


def test_unknown_kids_reload_the_keys_a_bounded_number_of_times(app: Any, live_server: str) -> None:
    from idp.oidc import keys

    ring = app.extensions["token_issuer"].keyring
    reloads = []
    original = ring.refresh

    def counting(session: Any, force: bool = False) -> None:
        if force:
            reloads.append(1)
        original(session, force)

    ring.refresh = counting  # type: ignore[method-assign]
    try:
        ring._loaded_at = time.monotonic()  # noqa: SLF001 - fresh: only forced reloads count
        for n in range(40):
            forged = f"{b64({'alg': 'ES256', 'typ': 'at+jwt', 'kid': f'k{n}'})}.{b64({'sub': 'x'})}.c2ln"
            requests.get(f"{live_server}/oauth/userinfo", headers={"Authorization": f"Bearer {forged}"}, timeout=10)
    finally:
        del ring.refresh
    assert len(reloads) <= 1 + int(40 * 0.05 / keys.UNKNOWN_KID_RELOAD_SECONDS) + 1


# ------------------------------------------------------------------ findings 15 and 17: malformed input

@pytest.mark.parametrize("value", ["code\x00", "code\r\nX-Injected: 1", 'co"de', "cöde", "code\\", "\x7f"])
@pytest.mark.parametrize("name", ["response_type", "redirect_uri", "scope", "state", "client_id", "prompt"])
def test_authorization_parameters_with_odd_characters_never_500(live_server: str, trusted: tuple[str, str],
                                                                name: str, value: str) -> None:
    params = query(authorize_url(live_server, trusted[0], challenge=pkce_pair()[1]))
    params[name] = value if name != "redirect_uri" else CALLBACK + value
    posted = requests.post(f"{live_server}/oauth/authorize", data=params, allow_redirects=False, timeout=10)
    assert posted.status_code in (303, 400), (name, value, posted.status_code)  # 303: the same request by GET
    assert "\r" not in posted.headers.get("Location", "") and "\n" not in posted.headers.get("Location", "")
    followed = (requests.get(urljoin(live_server, posted.headers["Location"]), allow_redirects=False, timeout=10)
                if posted.status_code == 303 else posted)
    for response in (requests.get(f"{live_server}/oauth/authorize", params=params, allow_redirects=False, timeout=10),
                     followed):
        assert response.status_code in (302, 400), (name, value, response.status_code)
        assert "X-Injected" not in response.headers
        location = response.headers.get("Location", "")
        assert "\r" not in location and "\n" not in location


@pytest.mark.parametrize("value", ["client_credentials\x00", 'client"credentials', "clïent", "a\r\nb"])
def test_token_parameters_with_odd_characters_never_500(live_server: str, trusted: tuple[str, str], value: str) -> None:
    for data in ({"grant_type": value}, {"grant_type": "refresh_token", "refresh_token": value},
                 {"grant_type": "authorization_code", "code": value, "redirect_uri": CALLBACK}):
        response = requests.post(f"{live_server}/oauth/token", data=data, auth=trusted, timeout=10)
        assert response.status_code == 400, (data, response.status_code)
        assert response.json()["error"] in ("invalid_request", "unsupported_grant_type", "invalid_grant")
    for path in ("/oauth/introspect", "/oauth/revoke"):
        response = requests.post(f"{live_server}{path}", data={"token": value, "token_type_hint": value},
                                 auth=trusted, timeout=10)
        assert response.status_code in (200, 400, 401), (path, response.status_code)  # authlib: 401 unsupported_token_type


@pytest.mark.parametrize("credentials", ["//46AA==", "gA==", "////", "bm9jb2xvbg==", "!!!", "YQ", "AA==",
                                         base64.b64encode("é:é".encode("latin-1")).decode()])
@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/introspect", "/oauth/revoke"])
def test_undecodable_basic_credentials_are_invalid_client(live_server: str, credentials: str, path: str) -> None:
    response = requests.post(f"{live_server}{path}", data={"grant_type": "client_credentials", "token": "x"},
                             headers={"Authorization": f"Basic {credentials}"}, timeout=10)
    assert response.status_code == 401, (credentials, response.status_code, response.text)
    assert response.json()["error"] == "invalid_client"


def test_logout_hints_are_parsed_safely(app: Any, live_server: str, account: Any, trusted: tuple[str, str]) -> None:
    """Finding 17 (a NUL byte in the kid) and the rest of the class at end-session."""
    for kind, hint in forged_hints(app, live_server, str(account.id), trusted[0]).items():
        for response in (
            requests.get(f"{live_server}/oauth/logout", params={"id_token_hint": hint}, allow_redirects=False,
                         timeout=10),
            requests.post(f"{live_server}/oauth/logout", data={"id_token_hint": hint}, allow_redirects=False,
                          timeout=10),
        ):
            if kind == "wrong_audience":  # a genuine ID token of ours: no client_id to contradict it
                assert response.status_code in (200, 400), (kind, response.status_code)
            else:
                assert response.status_code == 400, (kind, response.status_code)
            assert "Location" not in response.headers, kind


@pytest.mark.parametrize("header", [
    "Bearer " + "x" * 9000, "Bearer a.b.c", "Bearer ..", "Bearer \u00e9.\u00e9.\u00e9", "Basic //46AA==",
    "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
])
@pytest.mark.parametrize("path", ["/oauth/userinfo", "/api/v1/structures"])
def test_bearer_tokens_are_parsed_safely(live_server: str, header: str, path: str) -> None:
    try:
        response = requests.get(f"{live_server}{path}", headers={"Authorization": header}, timeout=10)
    except UnicodeEncodeError:
        response = requests.get(f"{live_server}{path}", headers={"Authorization": header.encode()}, timeout=10)
    assert response.status_code == 401, (header[:20], response.status_code)


def test_forged_access_tokens_are_refused_everywhere(app: Any, live_server: str, service: tuple[str, str],
                                                     account: Any) -> None:
    """Bearer tokens of every forged kind: userinfo, the API and introspection all refuse them."""
    kid, pem = our_key(app, "ES256")
    hints = forged_hints(app, live_server, str(account.id), service[0])
    hints.pop("access_token_typ")  # signed with our own key: not a forgery
    for kind, token in hints.items():
        for path in ("/oauth/userinfo", "/api/v1/structures"):
            response = requests.get(f"{live_server}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10)
            assert response.status_code == 401, (kind, path, response.status_code)
        introspected = requests.post(f"{live_server}/oauth/introspect", data={"token": token}, auth=service,
                                     timeout=10)
        assert introspected.status_code in (200, 413) and introspected.json().get("active") in (False, None), kind


# ------------------------------------------------------------------ finding 18: floods

@pytest.fixture
def tight_limits(app: Any) -> Any:
    saved = {k: app.config[k] for k in ("RATELIMIT_CLIENT_AUTH_IP", "RATELIMIT_CLIENT_AUTH_CLIENT",
                                        "RATELIMIT_API_CLIENT")}
    app.config.update(RATELIMIT_CLIENT_AUTH_IP="25/minute", RATELIMIT_CLIENT_AUTH_CLIENT="10/minute",
                      RATELIMIT_API_CLIENT="15/minute")
    yield
    app.config.update(saved)


def test_failed_client_authentication_is_limited_per_client(live_server: str, service: tuple[str, str],
                                                            create_client: Any, tight_limits: None) -> None:
    wrong = (service[0], "not-the-secret")
    codes = [client_credentials(live_server, wrong).status_code for _ in range(12)]
    assert codes[:10] == [401] * 10 and codes[10:] == [429, 429], codes
    limited = client_credentials(live_server, service)  # the right secret too: no oracle
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert limited.json()["error"]
    other = create_client(grant_types=["client_credentials"], scope="structures:read", redirect_uris=[])
    assert client_credentials(live_server, other).status_code == 200  # another client is not affected
    for path in ("/oauth/introspect", "/oauth/revoke"):
        assert requests.post(f"{live_server}{path}", data={"token": "x"}, auth=wrong, timeout=10).status_code == 429


def test_failed_client_authentication_is_limited_per_address(live_server: str, service: tuple[str, str],
                                                             tight_limits: None) -> None:
    codes = [client_credentials(live_server, (f"inconnu-{n}", "x")).status_code for n in range(27)]
    assert codes[:25] == [401] * 25 and codes[25:] == [429, 429], codes
    # Forged proxy headers change nothing (no IDP_PROXY_FIX): still the same address.
    response = requests.post(f"{live_server}/oauth/token", data={"grant_type": "client_credentials"},
                             auth=service, headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10)
    assert response.status_code == 429 and "Retry-After" in response.headers


def test_the_service_api_is_limited_per_client(live_server: str, service: tuple[str, str], tight_limits: None) -> None:
    token = client_credentials(live_server, service).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    codes = [requests.get(f"{live_server}/api/v1/structures", headers=headers, timeout=10).status_code
             for _ in range(16)]
    assert codes[:15] == [200] * 15 and codes[15] == 429, codes
    limited = requests.get(f"{live_server}/api/v1/structures", headers=headers, timeout=10)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert limited.headers["Content-Type"].startswith("application/problem+json")
    # Without a valid token: limited per address.
    codes = [requests.get(f"{live_server}/api/v1/structures", headers={"Authorization": "Bearer x.y.z"},
                          timeout=10).status_code for _ in range(16)]
    assert codes[-1] == 429


def test_after_floods_code_exchange_and_client_credentials_still_work(app: Any, live_server: str,
                                                                      browser: requests.Session,
                                                                      account: Any, trusted: tuple[str, str],
                                                                      service: tuple[str, str]) -> None:
    """The audit's sequence: 300 bad client authentications and 300 bogus API calls, then the
    normal flows (which used to answer 500)."""
    for n in range(150):
        requests.post(f"{live_server}/oauth/token", data={"grant_type": "client_credentials"},
                      auth=(f"bidon-{n % 7}", "x"), timeout=10)
        requests.get(f"{live_server}/api/v1/structures",
                     headers={"Authorization": f"Bearer {b64({'alg': 'ES256', 'kid': f'k{n}', 'typ': 'at+jwt'})}."
                                               f"{b64({'sub': 'x'})}.c2ln"}, timeout=10)
    from idp.extensions import limiter

    with app.app_context():
        limiter.reset()  # the floods hit the per-address limit, as they should; the flows must still work
    assert client_credentials(live_server, service).status_code == 200
    code_flow(live_server, browser, *trusted, account.email)


def test_client_assertions_are_parsed_safely(app: Any, live_server: str, create_client: Any) -> None:
    """private_key_jwt: forged, unsigned, NUL-kid, oversized assertions are invalid_client, never 500."""
    from joserfc.jwk import ECKey

    public = ECKey.generate_key("P-256").as_dict(private=False) | {"kid": "rp-key", "use": "sig", "alg": "ES256"}
    client_id, _ = create_client(redirect_uris=[], grant_types=["client_credentials"], scope="structures:read",
                                 token_endpoint_auth_method="private_key_jwt", jwks={"keys": [public]})
    assertions = forged_hints(app, live_server, client_id, f"{live_server}/oauth/token")
    assertions["nul_in_rp_kid"] = jwt.encode(hint_claims(live_server, client_id, f"{live_server}/oauth/token"),
                                             other_key_pem(), algorithm="RS256", headers={"kid": "rp-key\x00"})
    for kind, assertion in assertions.items():
        response = requests.post(f"{live_server}/oauth/token", data={
            "grant_type": "client_credentials", "client_id": client_id,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion}, timeout=10)
        assert response.status_code in (400, 401), (kind, response.status_code)
        assert response.json()["error"] in ("invalid_client", "invalid_request"), kind


def test_a_refresh_token_issued_while_its_family_was_revoked_is_refused(app: Any, live_server: str,
                                                                         browser: requests.Session, account: Any,
                                                                         trusted: tuple[str, str]) -> None:
    """The race behind ten concurrent replays of one code: the winner's refresh token is written after
    a loser's revocation ran; the family's revocation row still stops it."""
    from sqlalchemy import select

    from idp.core.security import sha256_hex
    from idp.extensions import db
    from idp.models import RefreshToken
    from idp.oidc.tokens import revoke_family

    first = code_flow(live_server, browser, *trusted, account.email)
    with app.app_context():
        row = db.session.scalar(select(RefreshToken).where(RefreshToken.token_digest == sha256_hex(first["refresh_token"])))
        revoke_family(db.session, row.family_id, 300)
        row.revoked_at = None  # as if written after the revocation's UPDATE
        db.session.commit()
    assert refresh(live_server, first["refresh_token"], *trusted).json()["error"] == "invalid_grant"


# ------------------------------------------------------------------ the review: Unicode digits, long values

# "²" passes str.isdigit() but not int() (a 500); int() takes "٣" (Arabic-Indic three): only ASCII counts.
ODD_NUMBERS = ["²", "٣", "-1", "1.5", "1e3", "1_0", "9" * 40, "", "0x10"]


@pytest.mark.parametrize("value", ODD_NUMBERS)
def test_odd_max_age_values_are_invalid_request(live_server: str, browser: requests.Session, account: Any,
                                                trusted: tuple[str, str], value: str) -> None:
    """max_age is a number of seconds (OIDC Core §3.1.2.1): anything else is `invalid_request`,
    redirected with the state, also with a signed-in session (where the value is used)."""
    code_flow(live_server, browser, *trusted, account.email)
    sent = authorize_url(live_server, trusted[0], max_age=value)
    response = browser.get(sent, allow_redirects=False)
    assert response.status_code == 302, response.status_code
    params = query(response.headers["Location"])
    assert params.get("error") == "invalid_request" and "code" not in params, params
    assert params["state"] == query(sent)["state"]


def test_a_plain_max_age_still_works(live_server: str, browser: requests.Session, account: Any,
                                     trusted: tuple[str, str]) -> None:
    code_flow(live_server, browser, *trusted, account.email)
    response = browser.get(authorize_url(live_server, trusted[0], max_age="3600"), allow_redirects=False)
    assert "code" in query(response.headers["Location"])


@pytest.mark.parametrize("nonce", ["²", "٣", "é" * 20, '"<b>\'', "a b", "x" * 255])
def test_odd_nonces_come_back_in_the_id_token(live_server: str, browser: requests.Session, account: Any,
                                              trusted: tuple[str, str], nonce: str) -> None:
    """The nonce is opaque (OIDC Core §3.1.2.1): returned as sent, whatever its characters."""
    token = code_flow(live_server, browser, *trusted, account.email, nonce=nonce)
    assert verify_jwt(live_server, token["id_token"], audience=trusted[0])["nonce"] == nonce


@pytest.mark.parametrize(("name", "value"), [("nonce", "x" * 256), ("nonce", "é" * 300),
                                             ("scope", "openid " + "profile " * 70)])
def test_values_longer_than_their_column_are_invalid_request(live_server: str, browser: requests.Session,
                                                             account: Any, trusted: tuple[str, str], name: str,
                                                             value: str) -> None:
    """A nonce or scope longer than the column that keeps it with the code: refused, never cut short
    by SQLite nor a 500 from PostgreSQL (value too long)."""
    code_flow(live_server, browser, *trusted, account.email)
    response = browser.get(authorize_url(live_server, trusted[0], **{name: value}), allow_redirects=False)
    assert response.status_code == 302, response.status_code
    params = query(response.headers["Location"])
    assert params.get("error") == "invalid_request" and "code" not in params, params


@pytest.mark.parametrize("value", ODD_NUMBERS)
@pytest.mark.parametrize("name", ["page", "per_page"])
def test_odd_page_numbers_on_the_api_are_400(live_server: str, service: tuple[str, str], name: str, value: str) -> None:
    token = client_credentials(live_server, service).json()["access_token"]
    response = requests.get(f"{live_server}/api/v1/structures", params={name: value},
                            headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 400, (value, response.status_code)
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert f"« {name} » doit être un entier positif" in response.json()["detail"]


def header_bytes(value: str) -> bytes:
    """A header as sent on the wire: ISO-8859-1 when it can be (how the server reads it back, so "²"
    arrives as "²"), else UTF-8."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode()


@pytest.mark.parametrize("tag", ['"²"', '"¹³"', '"٣"', 'W/"²"', '"9999999999"', '"-1"'])
def test_odd_if_match_tags_are_412(live_server: str, service: tuple[str, str], tag: str) -> None:
    """A tag that names no version matches none (RFC 9110 §13.1.1): 412, never a 500."""
    token = client_credentials(live_server, service).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    siret = new_siret()
    created = requests.post(f"{live_server}/api/v1/structures", json={"siret": siret, "name": "Étiquettes"},
                            headers=headers, timeout=10)
    assert created.status_code == 201
    response = requests.patch(f"{live_server}/api/v1/structures/{siret}", json={"name": "Autre"},
                              headers={**headers, "If-Match": header_bytes(tag)}, timeout=10)
    assert response.status_code == 412, (tag, response.status_code)


def _set_active(app: Any, client_id: str, active: bool) -> None:
    from sqlalchemy import select

    from idp.core.console import set_client_active
    from idp.core.security import SYSTEM
    from idp.extensions import db
    from idp.models import Client

    with app.test_request_context():
        client = db.session.scalar(select(Client).where(Client.client_id == client_id))
        set_client_active(db.session, client, active, SYSTEM, actor=None)
        db.session.commit()


def test_a_disabled_clients_service_tokens_stop_at_once(app: Any, live_server: str, service: tuple[str, str],
                                                       account: Any, trusted: tuple[str, str]) -> None:
    """Disabling a client stops its unexpired tokens everywhere they are checked at the IdP: the API
    (401 invalid_token, RFC 6750 §3.1), introspection (the client cannot authenticate) and userinfo."""
    token = client_credentials(live_server, service).json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert requests.get(f"{live_server}/api/v1/structures", headers=bearer, timeout=10).status_code == 200
    user_token = code_flow(live_server, requests.Session(), *trusted, account.email)["access_token"]
    _set_active(app, service[0], False)
    _set_active(app, trusted[0], False)
    try:
        refused = requests.get(f"{live_server}/api/v1/structures", headers=bearer, timeout=10)
        assert refused.status_code == 401, refused.status_code
        assert refused.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
        assert refused.headers["Content-Type"].startswith("application/problem+json")
        introspected = requests.post(f"{live_server}/oauth/introspect", data={"token": token}, auth=service, timeout=10)
        assert introspected.status_code == 401 and introspected.json()["error"] == "invalid_client"
        userinfo = requests.get(f"{live_server}/oauth/userinfo", headers={"Authorization": f"Bearer {user_token}"},
                                timeout=10)
        assert userinfo.status_code == 401 and 'error="invalid_token"' in userinfo.headers["WWW-Authenticate"]
    finally:
        _set_active(app, service[0], True)
        _set_active(app, trusted[0], True)
    # Enabled again, the same unexpired token works: the check is the client's state, not a revocation.
    assert requests.get(f"{live_server}/api/v1/structures", headers=bearer, timeout=10).status_code == 200


def test_a_deleted_clients_service_tokens_stop(app: Any, live_server: str, service: tuple[str, str]) -> None:
    from sqlalchemy import delete

    from idp.extensions import db
    from idp.models import Client

    token = client_credentials(live_server, service).json()["access_token"]
    with app.app_context():
        db.session.execute(delete(Client).where(Client.client_id == service[0]))
        db.session.commit()
        app.extensions["client_cache"].clear()  # a Core DELETE: no ORM event empties the cache
    response = requests.get(f"{live_server}/api/v1/structures", headers={"Authorization": f"Bearer {token}"},
                            timeout=10)
    assert response.status_code == 401
