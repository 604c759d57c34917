"""OpenID Connect, driven over HTTP against the live server, tokens checked with PyJWT (SPEC §4.7)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urljoin

import jwt
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.conftest import form_fields
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

# ------------------------------------------------------------------ discovery and keys

def test_discovery_names_every_endpoint(live_server: str) -> None:
    meta = requests.get(f"{live_server}/.well-known/openid-configuration", timeout=5).json()
    assert meta["issuer"] == live_server
    for name in ("authorization", "token", "userinfo", "introspection", "revocation", "end_session"):
        assert meta[f"{name}_endpoint"].startswith(live_server)
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert set(meta["id_token_signing_alg_values_supported"]) == {"RS256", "ES256"}
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert meta["backchannel_logout_session_supported"] is True


def test_jwks_publishes_rsa_and_ec_public_keys_only(live_server: str) -> None:
    keys = requests.get(f"{live_server}/oauth/jwks", timeout=5).json()["keys"]
    assert {k["kty"] for k in keys} >= {"RSA", "EC"}
    for key in keys:
        assert "d" not in key and "p" not in key  # never a private part
        assert key["kid"] and key["use"] == "sig"


# ------------------------------------------------------------------ the code flow

def test_authlib_client_completes_code_flow_with_pkce(live_server: str, browser: requests.Session,
                                                     account: Any, trusted: tuple[str, str]) -> None:
    client_id, secret = trusted
    oauth = OAuth2Session(client_id, secret, scope="openid profile email", redirect_uri=CALLBACK,
                          code_challenge_method="S256")
    verifier, _ = pkce_pair()
    url, state = oauth.create_authorization_url(f"{live_server}/oauth/authorize", code_verifier=verifier,
                                                nonce="n-0S6_WzA2Mj")
    callback = browse(browser, url, email=account.email)
    assert query(callback)["iss"] == live_server
    token = oauth.fetch_token(f"{live_server}/oauth/token", authorization_response=callback,
                              code_verifier=verifier, state=state)

    id_claims = verify_jwt(live_server, token["id_token"], audience=client_id, algorithms=("RS256",))
    assert jwt.get_unverified_header(token["id_token"])["alg"] == "RS256"
    assert id_claims["sub"] == str(account.id)
    assert id_claims["nonce"] == "n-0S6_WzA2Mj"
    assert id_claims["email"] == account.email and id_claims["given_name"] == "Camille"
    assert id_claims["amr"] == ["pwd"] and id_claims["acr"] == "urn:portail:acr:pwd"
    assert id_claims["sid"] and abs(id_claims["auth_time"] - time.time()) < 60
    assert id_claims["at_hash"]

    access = verify_jwt(live_server, token["access_token"], audience=client_id, typ="at+jwt", algorithms=("ES256",))
    assert access["client_id"] == client_id and access["sub"] == str(account.id)
    assert access["exp"] - access["iat"] == 300
    assert token["refresh_token"] and token["expires_in"] == 300

    me = oauth.get(f"{live_server}/oauth/userinfo").json()
    assert me["sub"] == str(account.id) and me["email"] == account.email and me["email_verified"] is True
    posted = requests.post(f"{live_server}/oauth/userinfo", data={"access_token": token["access_token"]}, timeout=5)
    assert posted.status_code == 200 and posted.json()["sub"] == str(account.id)


def test_es256_client_gets_es256_id_tokens(live_server: str, browser: requests.Session, account: Any,
                                           create_client: Any) -> None:
    client_id, secret = create_client(trusted=True, id_token_signed_response_alg="ES256")
    token = code_flow(live_server, browser, client_id, secret, account.email)
    assert jwt.get_unverified_header(token["id_token"])["alg"] == "ES256"
    claims = verify_jwt(live_server, token["id_token"], audience=client_id, algorithms=("ES256",))
    assert claims["nonce"] == token["_nonce"]


def test_scope_limits_claims(live_server: str, browser: requests.Session, account: Any,
                             trusted: tuple[str, str]) -> None:
    token = code_flow(live_server, browser, trusted[0], trusted[1], account.email, scope="openid")
    claims = verify_jwt(live_server, token["id_token"], audience=trusted[0])
    assert "email" not in claims and "given_name" not in claims
    me = requests.get(f"{live_server}/oauth/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"},
                      timeout=5).json()
    assert set(me) == {"sub"}


def test_public_client_needs_pkce_and_no_secret(live_server: str, browser: requests.Session, account: Any,
                                                create_client: Any) -> None:
    client_id, secret = create_client(public=True, trusted=True)
    assert secret is None
    url = authorize_url(live_server, client_id)  # no code_challenge
    browser_login = browse(browser, url, email=account.email)
    assert query(browser_login)["error"] == "invalid_request"
    token = code_flow(live_server, browser, client_id, None, account.email)
    assert token["id_token"]


def test_plain_pkce_is_refused(live_server: str, account: Any, trusted: tuple[str, str],
                               browser: requests.Session) -> None:
    url = authorize_url(live_server, trusted[0], code_challenge="a" * 43, code_challenge_method="plain")
    callback = browse(browser, url, email=account.email)
    assert query(callback)["error"] == "invalid_request"


def test_wrong_code_verifier_is_invalid_grant_and_burns_the_code(live_server: str, browser: requests.Session,
                                                                  account: Any, trusted: tuple[str, str]) -> None:
    verifier, challenge = pkce_pair()
    callback = browse(browser, authorize_url(live_server, trusted[0], challenge=challenge), email=account.email)
    code = query(callback)["code"]
    bad = exchange(live_server, code, *trusted, verifier="x" * 50)
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"
    assert exchange(live_server, code, *trusted, verifier=verifier).json()["error"] == "invalid_grant"


def test_code_is_single_use_under_concurrency(live_server: str, browser: requests.Session, account: Any,
                                              trusted: tuple[str, str]) -> None:
    verifier, challenge = pkce_pair()
    code = query(browse(browser, authorize_url(live_server, trusted[0], challenge=challenge),
                        email=account.email))["code"]
    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda _: exchange(live_server, code, *trusted, verifier=verifier), range(10)))
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200] + [400] * 9, statuses


def test_replayed_code_revokes_the_tokens_it_gave(live_server: str, browser: requests.Session, account: Any,
                                                  trusted: tuple[str, str]) -> None:
    verifier, challenge = pkce_pair()
    code = query(browse(browser, authorize_url(live_server, trusted[0], challenge=challenge),
                        email=account.email))["code"]
    first = exchange(live_server, code, *trusted, verifier=verifier).json()
    assert exchange(live_server, code, *trusted, verifier=verifier).status_code == 400
    assert refresh(live_server, first["refresh_token"], *trusted).json()["error"] == "invalid_grant"


# ------------------------------------------------------------------ redirect URIs and errors

def test_unregistered_redirect_uri_is_shown_never_followed(live_server: str, trusted: tuple[str, str]) -> None:
    url = authorize_url(live_server, trusted[0], redirect_uri="http://evil.example/cb")
    response = requests.get(url, allow_redirects=False, timeout=5)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "Demande de connexion invalide" in response.text


@pytest.mark.parametrize("redirect_uri", [CALLBACK + "/", CALLBACK + "?x=1", CALLBACK.upper(), "http://127.0.0.1:9999/callback#f"])
def test_redirect_uri_matching_is_exact(live_server: str, trusted: tuple[str, str], redirect_uri: str) -> None:
    response = requests.get(authorize_url(live_server, trusted[0], redirect_uri=redirect_uri),
                            allow_redirects=False, timeout=5)
    assert response.status_code == 400 and "Location" not in response.headers


def test_unknown_client_gets_an_error_page(live_server: str) -> None:
    response = requests.get(authorize_url(live_server, "nope"), allow_redirects=False, timeout=5)
    assert response.status_code == 400 and "Location" not in response.headers


def test_repeated_parameters_are_refused(live_server: str, trusted: tuple[str, str]) -> None:
    url = authorize_url(live_server, trusted[0]) + "&client_id=" + trusted[0]
    assert requests.get(url, allow_redirects=False, timeout=5).status_code == 400


def test_unsupported_response_type_redirects_with_error(live_server: str, trusted: tuple[str, str]) -> None:
    response = requests.get(authorize_url(live_server, trusted[0], response_type="token"),
                            allow_redirects=False, timeout=5)
    assert response.status_code == 302
    params = query(response.headers["Location"])
    assert params["error"] == "unsupported_response_type" and params["iss"] == live_server


@pytest.mark.parametrize("request_kwargs", [
    {"data": {}},
    {"data": {"grant_type": "password", "username": "a", "password": "b"}},
    {"data": {"grant_type": "authorization_code", "code": "x" * 5000}},
    {"data": {"grant_type": "refresh_token", "refresh_token": "garbage"}},
    {"json": {"grant_type": "client_credentials"}},
    {"data": "grant_type=client_credentials&grant_type=client_credentials",
     "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
    {"data": b"\xff\xfe\x00", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
    {"data": {"grant_type": "client_credentials"}, "auth": ("nobody", "wrong")},
])
def test_bad_token_requests_get_oauth_errors(live_server: str, request_kwargs: dict[str, Any]) -> None:
    response = requests.post(f"{live_server}/oauth/token", timeout=5, **request_kwargs)
    assert 400 <= response.status_code < 500, response.text
    assert "error" in response.json()


def test_oversized_token_request_is_413(live_server: str) -> None:
    response = requests.post(f"{live_server}/oauth/token", data={"grant_type": "x" * (2 * 1024 * 1024)}, timeout=10)
    assert response.status_code == 413


def test_get_on_token_endpoint_is_405(live_server: str) -> None:
    assert requests.get(f"{live_server}/oauth/token", timeout=5).status_code == 405


# ------------------------------------------------------------------ refresh tokens

def test_refresh_rotates_and_reuse_revokes_the_family(live_server: str, browser: requests.Session, account: Any,
                                                      trusted: tuple[str, str]) -> None:
    first = code_flow(live_server, browser, *trusted, account.email)
    second = refresh(live_server, first["refresh_token"], *trusted)
    assert second.status_code == 200, second.text
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    claims = verify_jwt(live_server, rotated["id_token"], audience=trusted[0])
    assert claims["sub"] == str(account.id) and "nonce" not in claims

    reuse = refresh(live_server, first["refresh_token"], *trusted)
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    # The thief's replay also killed the legitimate holder's newer token.
    assert refresh(live_server, rotated["refresh_token"], *trusted).status_code == 400


def test_refresh_token_of_another_client_is_refused(live_server: str, browser: requests.Session, account: Any,
                                                    trusted: tuple[str, str], create_client: Any) -> None:
    token = code_flow(live_server, browser, *trusted, account.email)
    other = create_client(trusted=True)
    assert refresh(live_server, token["refresh_token"], *other).json()["error"] == "invalid_grant"


def test_concurrent_refreshes_never_fail_or_collide(live_server: str, browser: requests.Session, account: Any,
                                                    trusted: tuple[str, str]) -> None:
    chains = [code_flow(live_server, browser, *trusted, account.email)["refresh_token"] for _ in range(20)]
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda rt: refresh(live_server, rt, *trusted), chains))
    assert [r.status_code for r in results] == [200] * 20
    tokens = [r.json() for r in results]
    assert len({t["access_token"] for t in tokens}) == 20
    assert len({t["refresh_token"] for t in tokens}) == 20


# ------------------------------------------------------------------ client credentials

def test_client_credentials_tokens_are_unique_and_userless(live_server: str, create_client: Any) -> None:
    client_id, secret = create_client(redirect_uris=[], grant_types=["client_credentials"], scope="structures:read")

    def fetch(_: int) -> requests.Response:
        return requests.post(f"{live_server}/oauth/token", data={"grant_type": "client_credentials"},
                             auth=(client_id, secret), timeout=10)

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(fetch, range(20)))
    assert [r.status_code for r in results] == [200] * 20
    tokens = [r.json()["access_token"] for r in results]
    assert len(set(tokens)) == 20  # random jti: never identical, even within one second
    claims = verify_jwt(live_server, tokens[0], audience=client_id, typ="at+jwt")
    assert claims["sub"] == client_id and claims["scope"] == "structures:read"
    assert "refresh_token" not in results[0].json()
    userinfo = requests.get(f"{live_server}/oauth/userinfo", headers={"Authorization": f"Bearer {tokens[0]}"}, timeout=5)
    assert userinfo.status_code == 401


def test_client_secret_post_and_wrong_method(live_server: str, create_client: Any) -> None:
    client_id, secret = create_client(redirect_uris=[], grant_types=["client_credentials"],
                                      token_endpoint_auth_method="client_secret_post")
    ok = requests.post(f"{live_server}/oauth/token", timeout=5, data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret})
    assert ok.status_code == 200
    basic = requests.post(f"{live_server}/oauth/token", data={"grant_type": "client_credentials"},
                          auth=(client_id, secret), timeout=5)
    assert basic.status_code == 401 and basic.json()["error"] == "invalid_client"


def test_private_key_jwt_client_authentication(live_server: str, create_client: Any) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec
    from joserfc.jwk import ECKey

    private = ECKey.generate_key("P-256")
    public = private.as_dict(private=False) | {"kid": "rp-key", "use": "sig", "alg": "ES256"}
    client_id, secret = create_client(redirect_uris=[], grant_types=["client_credentials"],
                                      token_endpoint_auth_method="private_key_jwt", jwks={"keys": [public]})
    assert secret is None
    pem = private.as_pem(private=True)
    del ec

    def assertion(**overrides: Any) -> str:
        now = int(time.time())
        claims = {"iss": client_id, "sub": client_id, "aud": f"{live_server}/oauth/token", "iat": now,
                  "exp": now + 60, "jti": f"j-{time.time_ns()}"} | overrides
        return jwt.encode(claims, pem, algorithm="ES256", headers={"kid": "rp-key"})

    def post(token: str) -> requests.Response:
        return requests.post(f"{live_server}/oauth/token", timeout=5, data={
            "grant_type": "client_credentials", "client_assertion": token,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"})

    good = assertion()
    assert post(good).status_code == 200
    for refused in (good, assertion(aud="http://elsewhere"), assertion(exp=int(time.time()) - 300)):
        response = post(refused)  # replayed jti, wrong audience, expired
        assert response.status_code in (400, 401) and response.json()["error"] == "invalid_client"


# ------------------------------------------------------------------ userinfo, introspection, revocation

@pytest.mark.parametrize("header", ["Bearer abc.def.ghi", "Bearer ", "Basic Zm9vOmJhcg==", "Bearer " + "x" * 9000])
def test_userinfo_refuses_bad_tokens(live_server: str, header: str) -> None:
    response = requests.get(f"{live_server}/oauth/userinfo", headers={"Authorization": header}, timeout=5)
    assert response.status_code in (401, 431) and "Bearer" in response.headers.get("WWW-Authenticate", "Bearer")


def test_tampered_access_token_is_refused(live_server: str, browser: requests.Session, account: Any,
                                          trusted: tuple[str, str]) -> None:
    token = code_flow(live_server, browser, *trusted, account.email)["access_token"]
    head, body, sig = token.split(".")
    forged_body = jwt.utils.base64url_encode(
        jwt.utils.base64url_decode(body).replace(str(account.id).encode(), b"00000000-0000-0000-0000-000000000000"))
    forged = f"{head}.{forged_body.decode()}.{sig}"
    response = requests.get(f"{live_server}/oauth/userinfo", headers={"Authorization": f"Bearer {forged}"}, timeout=5)
    assert response.status_code == 401


def test_introspection_and_revocation(live_server: str, browser: requests.Session, account: Any,
                                      trusted: tuple[str, str], create_client: Any) -> None:
    token = code_flow(live_server, browser, *trusted, account.email)

    def introspect(value: str, creds: tuple[str, str | None] = trusted) -> dict[str, Any]:
        return requests.post(f"{live_server}/oauth/introspect", data={"token": value}, auth=creds, timeout=5).json()

    access = introspect(token["access_token"])
    assert access["active"] is True and access["sub"] == str(account.id) and access["client_id"] == trusted[0]
    assert introspect(token["refresh_token"])["active"] is True
    assert introspect(token["access_token"], create_client(trusted=True)) == {"active": False}
    assert introspect("nonsense") == {"active": False}

    for value in (token["access_token"], token["refresh_token"]):
        revoked = requests.post(f"{live_server}/oauth/revoke", data={"token": value}, auth=trusted, timeout=5)
        assert revoked.status_code == 200
        assert introspect(value) == {"active": False}
    assert refresh(live_server, token["refresh_token"], *trusted).status_code == 400
    me = requests.get(f"{live_server}/oauth/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=5)
    assert me.status_code == 401


def test_introspection_needs_client_authentication(live_server: str) -> None:
    response = requests.post(f"{live_server}/oauth/introspect", data={"token": "x"}, timeout=5)
    assert response.status_code == 401


# ------------------------------------------------------------------ prompt, max_age, consent

def test_prompt_none_without_session_is_login_required(live_server: str, trusted: tuple[str, str]) -> None:
    url = authorize_url(live_server, trusted[0], prompt="none")
    response = requests.get(url, allow_redirects=False, timeout=5)
    params = query(response.headers["Location"])
    assert params["error"] == "login_required" and params["state"] == query(url)["state"]
    assert params["iss"] == live_server


def test_existing_session_skips_login_and_prompt_login_forces_it(live_server: str, browser: requests.Session,
                                                                 account: Any, trusted: tuple[str, str]) -> None:
    first = code_flow(live_server, browser, *trusted, account.email)
    auth_time = verify_jwt(live_server, first["id_token"], audience=trusted[0])["auth_time"]
    silent = browse(browser, authorize_url(live_server, trusted[0], prompt="none"))  # no e-mail: no login form allowed
    assert "code" in query(silent)
    time.sleep(1.1)
    forced = browser.get(authorize_url(live_server, trusted[0], prompt="login"), allow_redirects=False)
    assert "/login" in forced.headers["Location"] and "force=1" in forced.headers["Location"]
    again = code_flow(live_server, browser, *trusted, account.email, prompt="login")
    assert verify_jwt(live_server, again["id_token"], audience=trusted[0])["auth_time"] > auth_time


def test_max_age_zero_forces_a_fresh_login(live_server: str, browser: requests.Session, account: Any,
                                          trusted: tuple[str, str]) -> None:
    code_flow(live_server, browser, *trusted, account.email)
    time.sleep(1.1)
    response = browser.get(authorize_url(live_server, trusted[0], max_age="0"), allow_redirects=False)
    assert "/login" in response.headers["Location"]
    token = code_flow(live_server, browser, *trusted, account.email, max_age="0")
    assert time.time() - verify_jwt(live_server, token["id_token"], audience=trusted[0])["auth_time"] < 5


def test_login_hint_and_ui_locales_reach_the_login_page(live_server: str, trusted: tuple[str, str]) -> None:
    response = requests.get(authorize_url(live_server, trusted[0], login_hint="x@example.test", ui_locales="en"),
                            allow_redirects=False, timeout=5)
    page = requests.get(urljoin(live_server, response.headers["Location"]), timeout=5)
    assert 'lang="en"' in page.text
    assert 'value="x@example.test"' in page.text  # the e-mail field is pre-filled


def test_select_account_shows_the_current_account(live_server: str, browser: requests.Session, account: Any,
                                                  trusted: tuple[str, str]) -> None:
    code_flow(live_server, browser, *trusted, account.email)
    page = browser.get(authorize_url(live_server, trusted[0], prompt="select_account"))
    assert page.status_code == 200 and account.email in page.text and "Utiliser un autre compte" in page.text


@pytest.mark.parametrize("prompt", ["none login", "bogus"])
def test_invalid_prompt_values(live_server: str, browser: requests.Session, account: Any,
                               trusted: tuple[str, str], prompt: str) -> None:
    code_flow(live_server, browser, *trusted, account.email)
    response = browser.get(authorize_url(live_server, trusted[0], prompt=prompt), allow_redirects=False)
    assert query(response.headers["Location"])["error"] == "invalid_request"


def test_consent_is_asked_once_for_third_party_clients(live_server: str, browser: requests.Session, account: Any,
                                                       create_client: Any) -> None:
    client_id, secret = create_client(trusted=False, name="Appli tierce")
    url = authorize_url(live_server, client_id, prompt="none")
    browse(browser, authorize_url(live_server, trusted_dummy := client_id), email=account.email, consent="deny")
    del trusted_dummy
    denied = browser.get(url, allow_redirects=False)
    assert query(denied.headers["Location"])["error"] == "consent_required"
    page = browser.get(authorize_url(live_server, client_id))
    assert "Appli tierce" in page.text and "Autoriser" in page.text
    token = code_flow(live_server, browser, client_id, secret, account.email)
    assert token["id_token"]
    assert "code" in query(browser.get(url, allow_redirects=False).headers["Location"])  # remembered


def test_consent_denied_gives_access_denied(live_server: str, browser: requests.Session, account: Any,
                                            create_client: Any) -> None:
    client_id, _ = create_client(trusted=False)
    callback = browse(browser, authorize_url(live_server, client_id), email=account.email, consent="deny")
    assert query(callback)["error"] == "access_denied"


def test_consent_form_needs_csrf(live_server: str, browser: requests.Session, account: Any, create_client: Any) -> None:
    client_id, _ = create_client(trusted=False)
    url = authorize_url(live_server, client_id)
    browse(browser, url, email=account.email, consent="deny")
    response = browser.post(url, data={"decision": "accept"}, allow_redirects=False)
    assert response.status_code == 400


# ------------------------------------------------------------------ logout

class Receiver:
    """A relying party's back-channel logout endpoint on loopback."""

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.event = threading.Event()

    def __call__(self, environ: dict, start_response: Any) -> Any:
        request = Request(environ)
        self.tokens.append(request.form["logout_token"])
        self.event.set()
        return Response("", status=200)(environ, start_response)


@pytest.fixture
def receiver() -> Any:
    app = Receiver()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    app.url = f"http://127.0.0.1:{server.server_port}/backchannel-logout"  # type: ignore[attr-defined]
    yield app
    server.shutdown()


def test_rp_initiated_logout_with_back_channel(live_server: str, browser: requests.Session, account: Any,
                                               create_client: Any, receiver: Any) -> None:
    client_id, secret = create_client(trusted=True, backchannel_logout_uri=receiver.url,
                                      post_logout_redirect_uris=["http://127.0.0.1:9999/bye"])
    token = code_flow(live_server, browser, client_id, secret, account.email)
    sid = verify_jwt(live_server, token["id_token"], audience=client_id)["sid"]
    response = browser.get(f"{live_server}/oauth/logout", allow_redirects=False, params={
        "id_token_hint": token["id_token"], "post_logout_redirect_uri": "http://127.0.0.1:9999/bye", "state": "s1"})
    assert response.status_code == 302 and response.headers["Location"] == "http://127.0.0.1:9999/bye?state=s1"

    assert receiver.event.wait(10), "no back-channel logout received"
    logout = jwt.decode(receiver.tokens[0], jwt.PyJWKClient(f"{live_server}/oauth/jwks").get_signing_key_from_jwt(
        receiver.tokens[0]).key, algorithms=["RS256"], audience=client_id, issuer=live_server)
    assert logout["sid"] == sid and logout["sub"] == str(account.id)
    assert "http://schemas.openid.net/event/backchannel-logout" in logout["events"] and "nonce" not in logout
    assert jwt.get_unverified_header(receiver.tokens[0])["typ"] == "logout+jwt"
    # The IdP session is over, and so are its refresh tokens.
    again = browser.get(authorize_url(live_server, client_id, prompt="none"), allow_redirects=False)
    assert query(again.headers["Location"])["error"] == "login_required"
    assert refresh(live_server, token["refresh_token"], client_id, secret).status_code == 400


def test_logout_to_unregistered_uri_does_not_redirect(live_server: str, browser: requests.Session, account: Any,
                                                      trusted: tuple[str, str]) -> None:
    token = code_flow(live_server, browser, *trusted, account.email)
    response = browser.get(f"{live_server}/oauth/logout", allow_redirects=False, params={
        "id_token_hint": token["id_token"], "post_logout_redirect_uri": "http://evil.example/"})
    assert response.status_code == 200 and "Location" not in response.headers


def test_logout_without_hint_asks_for_confirmation(live_server: str, browser: requests.Session, account: Any,
                                                   trusted: tuple[str, str]) -> None:
    code_flow(live_server, browser, *trusted, account.email)
    page = browser.get(f"{live_server}/oauth/logout")
    assert page.status_code == 200 and "Se déconnecter du portail" in page.text
    done = browser.post(f"{live_server}/oauth/logout", data=form_fields(page.text), allow_redirects=False)
    assert done.status_code == 200 and "déconnecté" in done.text
    again = browser.get(authorize_url(live_server, trusted[0], prompt="none"), allow_redirects=False)
    assert query(again.headers["Location"])["error"] == "login_required"


# ------------------------------------------------------------------ key rotation

def test_key_rotation_publishes_before_signing(app: Any, live_server: str, browser: requests.Session,
                                               account: Any, trusted: tuple[str, str]) -> None:
    from idp.extensions import db
    from idp.oidc.keys import rotate_keys

    before = code_flow(live_server, browser, *trusted, account.email)
    old_kid = jwt.get_unverified_header(before["id_token"])["kid"]
    with app.app_context():
        new = rotate_keys(db.session, app.config)  # signs in KEY_PUBLISH_BEFORE_USE seconds
        db.session.commit()
        new_kids = {k.kid for k in new}
        app.extensions["token_issuer"].keyring.refresh(db.session, force=True)
    published = {k["kid"] for k in requests.get(f"{live_server}/oauth/jwks", timeout=5).json()["keys"]}
    assert new_kids <= published and old_kid in published
    during = code_flow(live_server, browser, *trusted, account.email)
    assert jwt.get_unverified_header(during["id_token"])["kid"] == old_kid

    with app.app_context():
        rotate_keys(db.session, app.config, immediate=True)  # the next rotation takes effect now
        db.session.commit()
        app.extensions["token_issuer"].keyring.refresh(db.session, force=True)
    after = code_flow(live_server, browser, *trusted, account.email)
    assert jwt.get_unverified_header(after["id_token"])["kid"] != old_kid
    # Tokens signed by the retired key still verify: it stays published until they expire.
    verify_jwt(live_server, before["id_token"], audience=trusted[0])
    verify_jwt(live_server, after["id_token"], audience=trusted[0])


# ------------------------------------------------------------------ freshness

def test_deactivated_account_loses_userinfo_and_refresh(app: Any, live_server: str, browser: requests.Session,
                                                        account: Any, trusted: tuple[str, str]) -> None:
    from idp.core.accounts import close_access
    from idp.extensions import db
    from idp.models import AccountState, User

    token = code_flow(live_server, browser, *trusted, account.email)
    with app.app_context():
        user = db.session.get(User, account.id)
        user.state = AccountState.DEACTIVATED
        close_access(db.session, user.id)  # announced: the OIDC layer revokes the refresh tokens
        db.session.commit()
    me = requests.get(f"{live_server}/oauth/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=5)
    assert me.status_code == 401
    assert refresh(live_server, token["refresh_token"], *trusted).status_code == 400
