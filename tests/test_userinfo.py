"""UserInfo before Flask (issue 18): the WSGI layer and the Flask view give the same answer, byte for
byte, because both call one function (idp/oidc/userinfo.py). The layer takes the requests relying
parties send (GET or POST, Bearer header or a form with the token alone); anything else is left to
Flask, where the guard and the view answer as before."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from conftest import _free_port

from idp import create_app
from tests.oidc_helpers import code_flow

VARYING = {"date", "server", "connection", "keep-alive"}  # the HTTP server's own headers


def _same(one: requests.Response, other: requests.Response) -> None:
    assert one.status_code == other.status_code
    assert one.content == other.content
    headers = {k.lower(): v for k, v in one.headers.items() if k.lower() not in VARYING}
    assert headers == {k.lower(): v for k, v in other.headers.items() if k.lower() not in VARYING}


@pytest.fixture
def token(live_server: str, browser: requests.Session, create_account: Any, create_client: Any) -> str:
    client_id, secret = create_client(trusted=True, grant_types=["authorization_code", "refresh_token"])
    return code_flow(live_server, browser, client_id, secret, create_account().email)["access_token"]


@pytest.mark.parametrize("header", ["good", None, "Bearer not.a.token", "bearer  good "])
def test_the_layer_and_the_view_answer_alike(live_server: str, token: str, header: str | None) -> None:
    value = {"good": f"Bearer {token}", None: None}.get(header, (header or "").replace("good", token))
    headers = {"Authorization": value} if value else {}
    layer = requests.get(f"{live_server}/oauth/userinfo", headers=headers, timeout=10)
    # A query string is left to Flask (the guard reads parameters there): the same answer.
    view = requests.get(f"{live_server}/oauth/userinfo?via=flask", headers=headers, timeout=10)
    _same(layer, view)
    assert layer.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in layer.headers["Content-Security-Policy"]
    assert layer.headers["X-Content-Type-Options"] == "nosniff"
    if header in ("good", "bearer  good "):
        assert layer.status_code == 200 and layer.json()["sub"]
    else:  # RFC 6750 §3.1
        assert layer.status_code == 401
        assert layer.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


def test_posted_tokens_take_either_path(live_server: str, token: str) -> None:
    """OIDC Core §5.3.1: the form body (RFC 6750 §2.2). The token alone: the layer; with another
    field or in JSON: Flask; repeated: the guard's 400, as everywhere under /oauth/."""
    url = f"{live_server}/oauth/userinfo"
    layer = requests.post(url, data={"access_token": token}, timeout=10)
    view = requests.post(url, data={"access_token": token, "note": "x"}, timeout=10)
    _same(layer, view)
    assert layer.status_code == 200
    bearer_and_json = requests.post(url, json={"a": 1}, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert bearer_and_json.status_code == 200 and bearer_and_json.content == layer.content
    repeated = requests.post(url, data=[("access_token", token), ("access_token", token)], timeout=10)
    assert repeated.status_code == 400 and repeated.json()["error"] == "invalid_request"
    empty = requests.post(url, data={"access_token": ""}, timeout=10)
    assert empty.status_code == 401 and "WWW-Authenticate" in empty.headers
    basic = requests.get(url, headers={"Authorization": "Basic //46AA=="}, timeout=10)
    assert basic.status_code == 401  # the guard: undecodable client credentials


@pytest.fixture
def down() -> Iterator[Any]:
    """An IdP whose PostgreSQL does not answer."""
    app = create_app({"TESTING": True, "SECRET_KEY": "k" * 20, "ISSUER": "http://127.0.0.1:9",
                      "DATABASE_URL": f"postgresql+psycopg://nobody@127.0.0.1:{_free_port()}/portail"})
    yield app
    app.extensions["backchannel"].pool.shutdown(wait=True)
    from idp.extensions import db

    with app.app_context():
        db.engine.dispose()


def test_an_outage_is_a_503_on_both_paths(down: Any) -> None:
    client = down.test_client()
    token = "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ4In0.c2ln"
    for response in (client.get("/oauth/userinfo", headers={"Authorization": f"Bearer {token}"}),
                     client.post("/oauth/userinfo", data={"access_token": token}),
                     client.get("/oauth/userinfo?via=flask", headers={"Authorization": f"Bearer {token}"})):
        assert response.status_code == 503 and int(response.headers["Retry-After"]) > 0
        assert response.json["error"] == "temporarily_unavailable"
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.fixture
def worker(app: Any) -> Iterator[Any]:
    """Another worker of the same IdP (its own app and pool, the same database)."""
    keys = ("TESTING", "TOTP_REQUIRED_FOR_ADMINS", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "SMTP_URL", "ISSUER",
            "ARGON2_TIME_COST", "ARGON2_MEMORY_COST", "ARGON2_PARALLELISM", "KEY_PUBLISH_BEFORE_USE")
    other = create_app({key: app.config[key] for key in keys if key in app.config})
    yield other
    other.extensions["backchannel"].pool.shutdown(wait=True)
    from idp.extensions import db

    with other.app_context():
        db.engine.dispose()


@pytest.mark.skipif(not os.environ.get("IDP_TEST_DATABASE_URL"),
                    reason="PostgreSQL only (`make test-postgres`): on SQLite a request takes its own connection")
def test_a_thread_keeps_its_connection_and_replaces_a_lost_one(worker: Any, token: str, monkeypatch: Any) -> None:
    """The layer's thread keeps one connection between requests (no checkout per request); a
    connection the server ended while it sat idle is found by the ping and replaced: no error."""
    from sqlalchemy import event, text

    from idp.extensions import db
    from idp.oidc import userinfo

    with worker.app_context():
        engine = db.engine
    backends: list[int] = []
    event.listen(engine, "checkout", lambda dbapi, _record, _proxy: backends.append(dbapi.info.backend_pid))
    client, headers = worker.test_client(), {"Authorization": f"Bearer {token}"}
    answers = [client.get("/oauth/userinfo", headers=headers) for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    assert len(backends) == 1, backends  # one checkout for five requests
    with engine.connect() as other:  # a connection of its own: the held one stays held
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backends[0]})
    monkeypatch.setattr(userinfo, "IDLE_PING_SECONDS", 0.0)  # "idle" from now on
    again = client.get("/oauth/userinfo", headers=headers)
    assert again.status_code == 200 and again.data == answers[0].data
    assert backends[0] not in backends[1:]


def test_a_token_seen_before_is_still_checked_at_every_use(app: Any, worker: Any, live_server: str,
                                                           browser: requests.Session, create_account: Any,
                                                           create_client: Any) -> None:
    """Each process keeps the access tokens whose signature it checked (`VerifiedTokens`): a second
    use skips the signature, never the rest. Revoked in one process after a use in two: refused at
    once by both; expired after a use: refused at once (SPEC §5.3)."""
    from sqlalchemy import update

    from idp.extensions import db
    from idp.models import Client

    grants = ["authorization_code", "refresh_token"]
    (client_id, secret), (brief_id, brief_secret) = (create_client(trusted=True, grant_types=grants) for _ in "12")
    with app.app_context():  # the second client's tokens last two seconds
        db.session.execute(update(Client).where(Client.client_id == brief_id).values(access_token_lifetime=2))
        db.session.commit()
    url, other = f"{live_server}/oauth/userinfo", worker.test_client()
    revoked = code_flow(live_server, browser, client_id, secret, create_account().email)["access_token"]
    expiring = code_flow(live_server, browser, brief_id, brief_secret, create_account().email)["access_token"]
    for token in (revoked, expiring, revoked, expiring):  # the second round: the tokens known already
        assert requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 200
        assert other.get("/oauth/userinfo", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    for process in (app, worker):
        assert all(process.extensions["token_issuer"].verified.get("at+jwt", t) for t in (revoked, expiring))
    assert requests.post(f"{live_server}/oauth/revoke", data={"token": revoked}, auth=(client_id, secret or ""),
                         timeout=10).status_code == 200
    refused = requests.get(url, headers={"Authorization": f"Bearer {revoked}"}, timeout=10)
    assert refused.status_code == 401 and 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    assert other.get("/oauth/userinfo", headers={"Authorization": f"Bearer {revoked}"}).status_code == 401
    time.sleep(3)  # past the two seconds the client's tokens last
    assert requests.get(url, headers={"Authorization": f"Bearer {expiring}"}, timeout=10).status_code == 401
    assert requests.post(url, data={"access_token": expiring}, timeout=10).status_code == 401
    assert other.get("/oauth/userinfo", headers={"Authorization": f"Bearer {expiring}"}).status_code == 401


def test_a_known_token_whose_key_left_the_table_is_refused(tmp_path: Any) -> None:
    """A key leaves the table when every token it signed has expired (or an operator removed it):
    a token verified before is then refused, as it would be checked afresh. Its own database: the
    keys of the session's IdP stay as they are."""
    from sqlalchemy import update

    from idp.extensions import db
    from idp.migrations import upgrade
    from idp.models import SigningKey, utcnow
    from idp.oidc.keys import ensure_keys, rotate_keys

    url = f"sqlite:///{tmp_path / 'keys.sqlite3'}"
    upgrade(url)
    isolated = create_app({"TESTING": True, "SECRET_KEY": "k" * 20, "ISSUER": "http://127.0.0.1:9", "DATABASE_URL": url})
    try:
        with isolated.app_context():
            ensure_keys(db.session, isolated.config)
            db.session.commit()
            issuer = isolated.extensions["token_issuer"]
            now = int(time.time())
            token = issuer.sign(db.session, {"iss": issuer.issuer, "sub": "x", "jti": "j", "iat": now,
                                             "exp": now + 300}, "ES256", typ="at+jwt")
            assert issuer.verify(db.session, token)["sub"] == "x"
            assert issuer.verified.get("at+jwt", token) is not None
            assert issuer.verify(db.session, token, typ="JWT") is None  # an access token is no ID token
            kid = issuer.verified.get("at+jwt", token).kid
            rotate_keys(db.session, isolated.config, immediate=True)
            db.session.execute(update(SigningKey).where(SigningKey.kid == kid).values(expires_at=utcnow()))
            db.session.commit()
            issuer.keyring.refresh(db.session, force=True)
            assert issuer.verify(db.session, token) is None
            assert issuer.verified.get("at+jwt", token) is None
    finally:
        isolated.extensions["backchannel"].pool.shutdown(wait=True)
        with isolated.app_context():
            db.engine.dispose()


@pytest.mark.parametrize("length", ["²", "٣", "1_0", " 12"])
def test_a_content_length_that_is_not_ascii_digits_is_left_to_flask(app: Any, length: str) -> None:
    """"²" passes `str.isdigit()` and then breaks `int()`: the layer reads ASCII digits only, and
    leaves the rest to Flask (werkzeug reads such a length as 0: no token, a 401)."""
    answer = app.test_client().post("/oauth/userinfo", data=b"access_token=x", content_type="application/x-www-form-urlencoded",
                                    environ_overrides={"CONTENT_LENGTH": length})
    assert answer.status_code == 401 and answer.json["error"] == "invalid_token"
