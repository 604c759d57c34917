# ruff: noqa: F811 - pytest fixtures imported from tests/rp_helpers.py are parameters here
"""The relying-party kit (SPEC §6) through REPERNET against the live IdP: login with code + PKCE
and nonce, callback errors, cookies, roles, switching, logout (RP-initiated and back-channel),
silent refresh with rotation."""

from __future__ import annotations

import html
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.oidc_helpers import browse
from tests.rp_helpers import (
    RP,
    add_member,
    csrf_of,
    follow,
    logged_out,
    make_structure,
    member_of,
    new_browser,
    page_form,
    repernet,  # noqa: F401 - the live-server fixture
    rp_get,
    rp_login,
    set_grants,
)


def _session_row(rp: RP, browser: requests.Session) -> Any:
    from sqlalchemy import select

    from shared.sessions import _digest, sso_sessions

    key = browser.cookies.get("repernet_session")
    with rp.app.app_context(), rp.app.extensions["shell.db"].engine.connect() as conn:
        return conn.execute(select(sso_sessions).where(sso_sessions.c.key_digest == _digest(key))).first()


def test_login_goes_through_the_idp_with_pkce_and_nonce_and_comes_back(app: Any, repernet: RP) -> None:
    person, org = member_of(app, ["repernet:lecteur"])
    browser = new_browser()
    first = rp_get(browser, repernet, f"/structures/{org.siret}")
    assert first.status_code == 302 and first.headers["Location"].startswith("/auth/login?next=")
    start = rp_get(browser, repernet, first.headers["Location"])
    authorize = parse_qs(urlsplit(start.headers["Location"]).query)
    assert authorize["code_challenge_method"] == ["S256"] and authorize["code_challenge"][0]
    assert authorize["nonce"][0] and authorize["state"][0]
    assert authorize["scope"][0].split() == ["openid", "profile", "email", "structures"]

    page = rp_login(browser, repernet, person.email, path=f"/structures/{org.siret}")
    assert page.status_code == 200, page.text[:300]
    assert page.url == f"{repernet.url}/structures/{org.siret}"
    assert "Camille Test" in page.text and org.name in page.text  # header: the user, the current structure
    assert "Se déconnecter" in page.text


def test_cookie_is_the_apps_own_and_the_session_lives_server_side(app: Any, repernet: RP) -> None:
    person, _org = member_of(app, ["repernet:lecteur"])
    browser = new_browser()
    rp_login(browser, repernet, person.email)
    names = {c.name for c in browser.cookies if c.port is None and c.domain.startswith("127.0.0.1")}
    assert "repernet_session" in names and "portail_idp" in names  # one host, two cookies
    cookie = next(c for c in browser.cookies if c.name == "repernet_session")
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert len(cookie.value) < 60  # a key, not the claims
    row = _session_row(repernet, browser)
    assert row.sub == str(person.user_id) and row.sid


def test_session_key_changes_at_login(app: Any, repernet: RP) -> None:
    person, _org = member_of(app, ["repernet:lecteur"])
    browser = new_browser()
    rp_get(browser, repernet, "/auth/login")  # an anonymous session holding the state
    before = browser.cookies.get("repernet_session")
    assert before
    rp_login(browser, repernet, person.email)
    assert browser.cookies.get("repernet_session") not in (None, before)


@pytest.mark.parametrize("query", ["", "?state=x", "?code=abc&state=forged", "?error=server_error&state=x"])
def test_bad_callbacks_get_a_french_page(repernet: RP, query: str) -> None:
    browser = new_browser()
    rp_get(browser, repernet, "/auth/login")
    response = rp_get(browser, repernet, f"/auth/callback{query}")
    assert response.status_code == 400
    assert "La connexion n'a pas abouti" in html.unescape(response.text)


def test_refused_login_gets_403_in_french(repernet: RP) -> None:
    response = rp_get(new_browser(), repernet, "/auth/callback?error=access_denied&state=x")
    assert response.status_code == 403 and "refusé" in response.text


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"])
def test_next_never_leaves_the_app(app: Any, repernet: RP, target: str) -> None:
    person, _org = member_of(app, ["repernet:lecteur"])
    browser = new_browser()
    page = rp_login(browser, repernet, person.email, path=target)
    assert page.url == f"{repernet.url}/"


def test_missing_role_gets_the_french_403(app: Any, repernet: RP) -> None:
    person, org = member_of(app, ["repernet:lecteur"])
    browser = new_browser()
    rp_login(browser, repernet, person.email)
    response = rp_get(browser, repernet, f"/structures/{org.siret}/modifier")
    assert response.status_code == 403
    assert "Accès refusé" in response.text and "« REPERNET — Gestionnaire »" in response.text
    response = rp_get(browser, repernet, "/instruction")
    assert response.status_code == 403 and "« REPERNET — Instructeur (Région) »" in response.text


def test_switch_to_another_structure_brings_fresh_claims(app: Any, repernet: RP) -> None:
    person, first = member_of(app, ["repernet:lecteur"])
    second = make_structure(app)
    add_member(app, second, person, ["repernet:gestionnaire"])
    browser = new_browser()
    page = rp_login(browser, repernet, person.email, structure=str(first.id))
    assert f"{first.name} · SIRET {first.siret}" in page.text
    # The header's switcher: a chosen SIRET goes to the IdP with siret_hint and comes back at once.
    start = rp_get(browser, repernet, f"/auth/switch?siret={second.siret}&next=/ma-structure")
    assert "siret_hint=" + second.siret in start.headers["Location"]
    callback = browse(browser, start.headers["Location"], stop=f"{repernet.url}/auth/callback")
    page = follow(browser, browser.get(callback, allow_redirects=False))
    assert page.url == f"{repernet.url}/structures/{second.siret}"
    assert f"{second.name} · SIRET {second.siret}" in page.text
    assert rp_get(browser, repernet, f"/structures/{second.siret}/modifier").status_code == 200
    # Without a SIRET, the IdP asks (prompt=select_account).
    start = rp_get(browser, repernet, "/auth/switch?next=/")
    assert "prompt=select_account" in start.headers["Location"]
    callback = browse(browser, start.headers["Location"], stop=f"{repernet.url}/auth/callback",
                      structure=str(first.id))
    page = follow(browser, browser.get(callback, allow_redirects=False))
    assert f"{first.name} · SIRET {first.siret}" in page.text


def test_logout_ends_both_sessions(app: Any, repernet: RP, live_server: str) -> None:
    person, _org = member_of(app, ["repernet:lecteur"])
    browser = new_browser()
    page = rp_login(browser, repernet, person.email)
    form = page_form(page.text, "/auth/logout")
    response = browser.post(f"{repernet.url}/auth/logout", data=form["fields"], allow_redirects=False)
    assert response.status_code == 302
    assert response.headers["Location"].startswith(f"{live_server}/oauth/logout?")
    assert logged_out(browser, repernet)
    end = follow(browser, browser.get(response.headers["Location"], allow_redirects=False))
    assert end.url == f"{repernet.url}/"
    # The IdP session is gone too: logging in again shows the IdP's login form.
    again = follow(browser, rp_get(browser, repernet, "/auth/login"))
    assert 'name="password"' in again.text


def test_logout_needs_its_csrf_token(app: Any, repernet: RP) -> None:
    person, _org = member_of(app, ["repernet:lecteur"])
    browser = new_browser()
    rp_login(browser, repernet, person.email)
    response = browser.post(f"{repernet.url}/auth/logout", data={"csrf_token": "forged"}, allow_redirects=False)
    assert response.status_code == 400 and "Déconnexion impossible" in response.text
    assert not logged_out(browser, repernet)


def _wait_logged_out(browser: requests.Session, rp: RP, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if logged_out(browser, rp):
            return True
        time.sleep(0.1)
    return False


def test_logout_at_the_idp_ends_the_rp_session_over_the_back_channel(app: Any, repernet: RP,
                                                                      live_server: str) -> None:
    person, _org = member_of(app, ["repernet:lecteur"])
    browser, other = new_browser(), new_browser()
    rp_login(browser, repernet, person.email)
    rp_login(other, repernet, person.email)  # another browser: another IdP session, kept
    page = browser.get(f"{live_server}/logout")
    browser.post(f"{live_server}/logout", data={"csrf_token": csrf_of(page.text)})
    assert _wait_logged_out(browser, repernet)
    assert not logged_out(other, repernet)


@pytest.mark.parametrize("token", ["", "not-a-jwt", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."])
def test_back_channel_refuses_bad_tokens(repernet: RP, token: str) -> None:
    response = requests.post(f"{repernet.url}/auth/backchannel-logout", data={"logout_token": token}, timeout=5)
    assert response.status_code == 400
    assert response.headers["Cache-Control"] == "no-store"


def test_back_channel_refuses_a_token_for_another_client(app: Any, repernet: RP) -> None:
    import time as _time

    from idp.extensions import db
    from idp.oidc.provider import issuer

    with app.test_request_context():
        now = int(_time.time())
        token = issuer().sign(db.session, {
            "iss": app.config["ISSUER"], "aud": "someone-else", "iat": now, "exp": now + 60, "jti": "j1",
            "sub": "x", "sid": "y", "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
        }, "RS256", typ="logout+jwt")
        db.session.commit()
    response = requests.post(f"{repernet.url}/auth/backchannel-logout", data={"logout_token": token}, timeout=5)
    assert response.status_code == 400


def test_claims_are_re_read_with_a_rotated_refresh_token(app: Any, repernet: RP,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    person, org = member_of(app, ["repernet:lecteur"])
    browser = new_browser()
    rp_login(browser, repernet, person.email)
    assert rp_get(browser, repernet, f"/structures/{org.siret}/modifier").status_code == 403
    first_refresh = __import__("json").loads(_session_row(repernet, browser).tokens)["refresh_token"]
    set_grants(app, org, person, ["repernet:lecteur", "repernet:gestionnaire"])  # a role added: no logout
    assert rp_get(browser, repernet, f"/structures/{org.siret}/modifier").status_code == 403  # not yet re-read
    monkeypatch.setitem(repernet.app.config, "SSO_CLAIMS_MAX_AGE", 0)
    assert rp_get(browser, repernet, f"/structures/{org.siret}/modifier").status_code == 200
    second_refresh = __import__("json").loads(_session_row(repernet, browser).tokens)["refresh_token"]
    assert second_refresh != first_refresh
    assert rp_get(browser, repernet, f"/structures/{org.siret}/modifier").status_code == 200  # rotated again


def test_a_refused_refresh_ends_the_local_session(app: Any, repernet: RP, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy import update

    from idp.extensions import db
    from idp.models import RefreshToken, utcnow

    person, _org = member_of(app, ["repernet:lecteur"])
    browser = new_browser()
    rp_login(browser, repernet, person.email)
    with app.app_context():
        db.session.execute(update(RefreshToken).where(RefreshToken.user_id == person.user_id)
                           .values(revoked_at=utcnow()))
        db.session.commit()
    monkeypatch.setitem(repernet.app.config, "SSO_CLAIMS_MAX_AGE", 0)
    assert logged_out(browser, repernet)


# ---------------------------------------------------------------- forged tokens and the IdP's keys

class JwksCounter:
    """Counts the HTTP requests the live IdP receives for its JWKS (wrapping its WSGI app)."""

    def __init__(self, app: Any) -> None:
        self.app, self.wrapped, self.count = app, app.wsgi_app, 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == "/oauth/jwks":
            self.count += 1
        return self.wrapped(environ, start_response)


@pytest.fixture
def jwks_requests(app: Any, monkeypatch: pytest.MonkeyPatch) -> JwksCounter:
    counter = JwksCounter(app)
    monkeypatch.setattr(app, "wsgi_app", counter)
    return counter


def forged_tokens(app: Any, audience: str, count: int) -> list[str]:
    """Tokens an outsider can make: unknown kids, our kid with another key, alg none, garbage."""
    import base64
    import json

    import jwt as pyjwt
    from cryptography.hazmat.primitives.asymmetric import ec

    from tests.test_hardening_oidc import our_key

    kid, _pem = our_key(app)
    other = ec.generate_private_key(ec.SECP256R1())
    now = int(time.time())
    claims = {"iss": app.config["ISSUER"], "aud": audience, "iat": now, "exp": now + 60, "jti": "j", "sub": "x",
              "sid": "y", "scope": "repernet:read",
              "events": {"http://schemas.openid.net/event/backchannel-logout": {}}}
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "kid": kid}).encode()).rstrip(b"=").decode()
    kinds = [lambda i: pyjwt.encode(claims, other, algorithm="ES256", headers={"kid": f"inconnue-{i}"}),
             lambda i: pyjwt.encode(claims, other, algorithm="ES256", headers={"kid": kid}),
             lambda i: f"{header}.{header}.",
             lambda i: f"not.a.jwt{i}"]
    return [kinds[i % len(kinds)](i) for i in range(count)]


def test_forged_logout_tokens_fetch_the_idps_keys_at_most_once(app: Any, repernet: RP,
                                                                jwks_requests: JwksCounter) -> None:
    """The back-channel endpoint is open to anyone: 50 forged logout tokens (new kids included) make
    the app fetch the IdP's JWKS at most once, not once each."""
    for token in forged_tokens(app, repernet.client_id, 50):
        response = requests.post(f"{repernet.url}/auth/backchannel-logout", data={"logout_token": token}, timeout=5)
        assert response.status_code == 400
    assert jwks_requests.count <= 1, jwks_requests.count


def test_forged_bearer_tokens_fetch_the_idps_keys_at_most_once(app: Any, repernet: RP,
                                                                jwks_requests: JwksCounter) -> None:
    """The same for the app's own API (shared.service's Bearer check)."""
    for token in forged_tokens(app, "repernet", 50):
        response = requests.get(f"{repernet.url}/api/v1/structures/12345678901234",
                                headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert response.status_code == 401
    assert jwks_requests.count <= 1, jwks_requests.count


def test_a_logout_token_signed_by_a_newly_published_key_still_ends_the_session(
        app: Any, repernet: RP, jwks_requests: JwksCounter, monkeypatch: pytest.MonkeyPatch) -> None:
    """Key rotation (OIDC Core §10.1.1): a kid the app has not seen yet fetches the keys once more."""
    from datetime import timedelta

    import jwt as pyjwt
    from sqlalchemy import delete

    from idp.extensions import db
    from idp.models import SigningKey, utcnow
    from idp.oidc.keys import _generate
    from idp.oidc.provider import issuer

    person, _org = member_of(app, ["repernet:lecteur"])
    browser = new_browser()
    rp_login(browser, repernet, person.email)  # the app has the keys of today
    row = _session_row(repernet, browser)
    monkeypatch.setattr(repernet.app.extensions["sso"].keys, "refetch_interval", 0)
    pem, key = _generate("RS256")
    kid = f"rs256-test-{uuid.uuid4().hex[:8]}"
    with app.app_context():  # published now, signing tomorrow: as a rotation does
        now = utcnow()
        db.session.add(SigningKey(kid=kid, alg="RS256", private_pem=pem, published_at=now,
                                  public_jwk={**key.as_dict(private=False), "kid": kid, "alg": "RS256", "use": "sig"},
                                  active_at=now + timedelta(days=1)))
        db.session.commit()
        issuer().keyring.refresh(db.session, force=True)
    seconds = int(time.time())
    token = pyjwt.encode({"iss": app.config["ISSUER"], "aud": repernet.client_id, "iat": seconds, "jti": "rot",
                          "sub": row.sub, "sid": row.sid,
                          "events": {"http://schemas.openid.net/event/backchannel-logout": {}}},
                         pem, algorithm="RS256", headers={"kid": kid, "typ": "logout+jwt"})
    try:
        before = jwks_requests.count
        response = requests.post(f"{repernet.url}/auth/backchannel-logout", data={"logout_token": token}, timeout=5)
        assert response.status_code == 200, response.text
        assert jwks_requests.count == before + 1
        assert logged_out(browser, repernet)
    finally:
        with app.app_context():
            db.session.execute(delete(SigningKey).where(SigningKey.kid == kid))
            db.session.commit()
            issuer().keyring.refresh(db.session, force=True)
