"""Running it like production (issue 17, SPEC §10.4): the probes, a database outage, double
submissions, a secret-key rotation. Driven through HTTP; the multi-process parts (workers, the
proxy, a restored dump) are in tests/test_topology.py."""

from __future__ import annotations

import contextlib
import html
import os
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import (
    PASSWORD,
    _free_port,
    csrf_token,
    form_fields,
    mail_link,
    new_siret,
    unique_email,
)
from manage_helpers import World, build_world, role_id
from test_accounts_helpers import login

from idp import create_app
from idp.extensions import db
from idp.migrations import upgrade

PARALLEL = 10


def _close(app: Any) -> None:
    app.extensions["backchannel"].pool.shutdown(wait=True)
    with app.app_context():
        db.engine.dispose()


def _text(response: Any) -> str:
    body = response.get_data(as_text=True) if hasattr(response, "get_data") else response.text
    return html.unescape(body)


# ---------------------------------------------------------------- finding 1: the probes

def test_livez_and_readyz_answer_cheaply(testclient: Any) -> None:
    live = testclient.get("/livez")
    assert live.status_code == 200 and live.json == {"status": "ok"}
    ready = testclient.get("/readyz")
    assert ready.status_code == 200, ready.json
    assert ready.json["checks"]["database"] == "ok" and ready.json["checks"]["schema"] == "ok"
    assert ready.json["checks"]["signing_keys"] == "ok"
    assert ready.headers["Cache-Control"] == "no-store" and live.headers["Cache-Control"] == "no-store"


@pytest.fixture
def bare_app(tmp_path: Path) -> Iterator[tuple[Any, str]]:
    """An IdP on a database of its own that is not migrated yet."""
    url = f"sqlite:///{tmp_path / 'bare.sqlite3'}"
    app = create_app({"TESTING": True, "SECRET_KEY": "k" * 20, "DATABASE_URL": url})
    yield app, url
    _close(app)


def test_readyz_waits_for_the_schema_and_the_signing_keys(bare_app: tuple[Any, str]) -> None:
    app, url = bare_app
    client = app.test_client()
    empty = client.get("/readyz")
    assert empty.status_code == 503 and empty.headers["Retry-After"]
    assert empty.json["checks"]["database"] == "ok" and "idp db upgrade" in empty.json["checks"]["schema"]
    upgrade(url)
    no_keys = client.get("/readyz")
    assert no_keys.status_code == 503 and no_keys.json["checks"]["schema"] == "ok"
    assert "idp keys ensure" in no_keys.json["checks"]["signing_keys"]
    with app.app_context():
        from idp.extensions import db
        from idp.oidc.keys import ensure_keys

        ensure_keys(db.session, app.config)
        db.session.commit()
        app.extensions["token_issuer"].keyring.refresh(db.session, force=True)
    assert client.get("/readyz").status_code == 200


def test_readyz_checks_redis_when_configured(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'redis.sqlite3'}"
    upgrade(url)
    app = create_app({"TESTING": True, "SECRET_KEY": "k" * 20, "DATABASE_URL": url})
    # Set after start-up: the rate limiter (one object for every app of the process) stays as it was.
    app.config["REDIS_URL"] = f"redis://127.0.0.1:{_free_port()}/0"
    try:
        ready = app.test_client().get("/readyz")
        assert ready.status_code == 503 and ready.json["checks"]["redis"] == "unreachable"
        assert ready.json["checks"]["database"] == "ok"
    finally:
        _close(app)


# ---------------------------------------------------------------- finding 2: the database is down

@pytest.fixture
def down() -> Iterator[Any]:
    """An IdP whose PostgreSQL does not answer: nothing listens on its port."""
    app = create_app({"TESTING": True, "SECRET_KEY": "k" * 20, "ISSUER": "http://127.0.0.1:9",
                      "DATABASE_URL": f"postgresql+psycopg://nobody@127.0.0.1:{_free_port()}/portail"})
    yield app
    _close(app)


def _a_jwt() -> str:
    """A well-formed access token whose key must be looked up in the database."""
    import base64
    import json

    def part(value: Any) -> str:
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return ".".join([part({"alg": "RS256", "typ": "at+jwt", "kid": "k1"}), part({"sub": "x"}), part(b"s" * 64)])


def _assert_unavailable(response: Any) -> None:
    assert response.status_code == 503, (response.status_code, _text(response)[:300])
    assert int(response.headers["Retry-After"]) > 0
    assert "Traceback" not in _text(response)


def test_an_outage_gives_503_pages_to_people(down: Any) -> None:
    client = down.test_client()
    assert client.get("/livez").status_code == 200  # the process is up
    ready = client.get("/readyz")
    _assert_unavailable(ready)
    assert ready.json["checks"]["database"] == "unreachable"

    page = client.get("/login")  # no database needed to show the form
    assert page.status_code == 200
    posted = client.post("/login", data=form_fields(page.text, email="a@example.test", password=PASSWORD),
                         headers={"Accept-Language": "fr"})
    _assert_unavailable(posted)
    assert posted.mimetype == "text/html" and "momentanément indisponible" in _text(posted)

    with client.session_transaction() as session:
        session["_user_id"] = "a-login-session-whose-row-cannot-be-read"  # Flask-Login's key: a login session id
    for path in ("/account/", "/oauth/authorize?client_id=x&response_type=code&scope=openid"):
        response = client.get(path, headers={"Accept-Language": "fr"})
        _assert_unavailable(response)
        assert response.mimetype == "text/html" and "momentanément indisponible" in _text(response), path


@pytest.mark.parametrize(("method", "path", "data"), [
    ("post", "/oauth/token", {"grant_type": "client_credentials"}),
    ("post", "/oauth/token", {"grant_type": "refresh_token", "refresh_token": "r" * 40}),
    ("get", "/oauth/userinfo", None),
    ("post", "/oauth/introspect", {"token": "t" * 40}),
    ("post", "/oauth/revoke", {"token": "t" * 40}),
    ("get", "/oauth/jwks", None),
], ids=["client_credentials", "refresh", "userinfo", "introspect", "revoke", "jwks"])
def test_an_outage_gives_temporarily_unavailable_to_protocol_clients(down: Any, method: str, path: str,
                                                                     data: dict[str, str] | None) -> None:
    headers = {"Authorization": f"Bearer {_a_jwt()}"} if path.endswith("userinfo") else {}
    client = down.test_client()
    response = getattr(client, method)(path, data=data, headers=headers, auth=None if headers else ("svc", "s" * 32))
    _assert_unavailable(response)
    assert response.is_json and response.json["error"] == "temporarily_unavailable"  # RFC 6749 §4.1.2.1
    assert response.headers["Cache-Control"] == "no-store"


def test_an_outage_gives_a_problem_to_the_service_api(down: Any) -> None:
    response = down.test_client().get("/api/v1/structures", headers={"Authorization": f"Bearer {_a_jwt()}"})
    _assert_unavailable(response)
    assert response.mimetype == "application/problem+json"
    assert response.json["status"] == 503 and "momentanément indisponible" in response.json["detail"]


DATABASE_ERRORS = [  # what the code did not catch, and what each endpoint answers (shared.web.database_failure)
    ("IntegrityError", 409, "invalid_request", "déjà d'être enregistrée"),
    ("DataError", 400, "invalid_request", "dépasse ce que ce service accepte"),
    ("OperationalError", 503, "temporarily_unavailable", "momentanément indisponible"),
]


@pytest.mark.parametrize(("error", "status", "oauth_error", "detail"), DATABASE_ERRORS,
                         ids=[row[0] for row in DATABASE_ERRORS])
def test_an_uncaught_database_error_is_classified_in_each_endpoints_language(
        app: Any, monkeypatch: pytest.MonkeyPatch, error: str, status: int, oauth_error: str, detail: str) -> None:
    import functools

    import sqlalchemy.exc

    def failing(view: Any) -> Any:
        @functools.wraps(view)  # the same name: the view's CSRF exemption holds
        def fail(*_args: Any, **_kwargs: Any) -> Any:
            raise getattr(sqlalchemy.exc, error)("INSERT …", {}, Exception("the driver's message"))
        return fail

    for endpoint in ("api.list_structures", "oidc.introspect", "home.index"):
        monkeypatch.setitem(app.view_functions, endpoint, failing(app.view_functions[endpoint]))
    client = app.test_client()
    api = client.get("/api/v1/structures")
    assert api.status_code == status and api.mimetype == "application/problem+json"
    assert detail in api.json["detail"] and api.json["status"] == status
    oauth = client.post("/oauth/introspect", data={"token": "t" * 40})
    assert oauth.status_code == status and oauth.json["error"] == oauth_error and detail in oauth.json["error_description"]
    page = client.get("/", headers={"Accept-Language": "fr"})
    assert page.status_code == status and page.mimetype == "text/html"
    for response in (api, oauth, page):
        assert status != 503 or int(response.headers["Retry-After"]) > 0
        assert "the driver's message" not in _text(response)


class TcpForwarder:
    """A TCP relay to the database server that the test can cut and restore: a real outage of the
    connection (the machine's PostgreSQL is shared: it is never stopped)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target, self.port = target, _free_port()
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(32)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        """Refuse new connections and cut the open ones, as a server that goes away."""
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close() alone does not)
            self._listener.close()
            self._listener = None
        for sock in self._open:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@pytest.mark.skipif(not os.environ.get("IDP_TEST_DATABASE_URL"), reason="a PostgreSQL outage: `make test-postgres`")
def test_an_outage_in_the_middle_of_a_session_and_the_recovery(app: Any, create_account: Any) -> None:
    from sqlalchemy.engine import make_url

    url = make_url(app.config["DATABASE_URL"])
    relay = TcpForwarder((url.host or "127.0.0.1", url.port or 5432))
    relay.start()
    user = create_account()
    cut = create_app({"TESTING": True, "SECRET_KEY": "k" * 20, "ISSUER": app.config["ISSUER"],
                      "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 8, "TOTP_REQUIRED_FOR_ADMINS": False,
                      "DATABASE_URL": url.set(port=relay.port).render_as_string(hide_password=False)})
    try:
        client = cut.test_client()
        assert login(client, user.email).status_code == 302
        assert client.get("/account/").status_code == 200
        relay.stop()  # the database goes away under a signed-in person
        for path in ("/account/", "/account/profile"):
            _assert_unavailable(client.get(path))
        _assert_unavailable(client.get("/readyz"))
        relay.start()  # back: the next requests succeed without a restart
        statuses = []
        deadline = time.monotonic() + 10
        while not statuses or statuses[-1] != 200:
            assert time.monotonic() < deadline, statuses
            statuses.append(client.get("/account/").status_code)
        assert set(statuses) <= {200, 503}, statuses  # a broken pooled connection: 503 once, never 500
        assert client.get("/readyz").status_code == 200
    finally:
        relay.stop()
        _close(cut)


# ---------------------------------------------------------------- finding 3: double submissions

def _parallel(send: Any) -> list[Any]:
    with ThreadPoolExecutor(PARALLEL) as pool:
        return list(pool.map(lambda _i: send(), range(PARALLEL)))


def _post_ten_times(browser: requests.Session, url: str, data: dict[str, Any]) -> list[requests.Response]:
    """The same form posted ten times at once with the browser's cookies (a double click, a reload
    storm). Each send has its own copy of the cookies: a requests.Session is not thread-safe."""
    cookies = browser.cookies.get_dict()
    return _parallel(lambda: requests.post(url, data=data, cookies=cookies, timeout=60, allow_redirects=False))


def test_the_same_signup_sent_ten_times_at_once(app: Any, live_server: str, mailbox: Any) -> None:
    from idp.core.accounts import find_user
    from idp.extensions import db

    email = unique_email("double")
    browser = requests.Session()
    page = browser.get(f"{live_server}/signup", timeout=10)
    fields = form_fields(page.text, email=email, password=PASSWORD, confirm=PASSWORD, civility="mme",
                         given_name="Dora", family_name="Double")
    responses = _post_ten_times(browser, f"{live_server}/signup", fields)
    assert [r.status_code for r in responses] == [302] * PARALLEL, [
        (r.status_code, re.findall(r'class="(?:error|flash[^"]*)"[^>]*>([^<]+)', html.unescape(r.text))) for r in responses]
    assert {r.headers["Location"] for r in responses} == {"/signup/sent"}
    with app.app_context():
        assert find_user(db.session, email) is not None
    mailbox.wait_for(email, "Activez")


@pytest.fixture
def world(app: Any, create_account: Any) -> World:
    return build_world(app, create_account)


def _signed_in(live_server: str, email: str) -> requests.Session:
    browser = requests.Session()
    page = browser.get(f"{live_server}/login", timeout=10)
    done = browser.post(f"{live_server}/login", data=form_fields(page.text, email=email, password=PASSWORD),
                        timeout=30, allow_redirects=False)
    assert done.status_code == 302, done.text[:300]
    return browser


def test_the_same_attachment_sent_ten_times_at_once(app: Any, live_server: str, world: World,
                                                    create_account: Any) -> None:
    person = create_account()
    browser = _signed_in(live_server, world.admin_a.email)
    url = f"{live_server}/gestion/{world.a}/rattacher"
    page = browser.get(url, timeout=10)
    fields = {"csrf_token": csrf_token(page.text), "email": person.email, "given_name": "", "family_name": "",
              "roles": [str(role_id(app, "sam:redacteur"))]}
    responses = _post_ten_times(browser, url, fields)
    codes = Counter(r.status_code for r in responses)
    assert codes == {302: 1, 409: PARALLEL - 1}, [(r.status_code, r.text[:200]) for r in responses]
    assert all("déjà rattachée" in html.unescape(r.text) for r in responses if r.status_code == 409)


def test_the_same_invitation_sent_ten_times_at_once(app: Any, live_server: str, world: World) -> None:
    browser = _signed_in(live_server, world.admin_a.email)
    url = f"{live_server}/gestion/{world.a}/rattacher"
    page = browser.get(url, timeout=10)
    fields = {"csrf_token": csrf_token(page.text), "email": unique_email("invitee"), "given_name": "Ivo",
              "family_name": "Invité"}
    responses = _post_ten_times(browser, url, fields)
    codes = Counter(r.status_code for r in responses)
    assert codes == {302: 1, 409: PARALLEL - 1}, [(r.status_code, r.text[:200]) for r in responses]


def test_the_same_structure_creation_sent_ten_times_at_once(live_server: str, create_client: Any) -> None:
    client = create_client(name="REPERNET (double envoi)", grant_types=["client_credentials"],
                           scope="structures:read structures:write", redirect_uris=[])
    token = requests.post(f"{live_server}/oauth/token", data={"grant_type": "client_credentials"}, auth=client,
                          timeout=10).json()["access_token"]
    body = {"siret": new_siret(), "name": "Organisme en double", "city": "Lyon", "postal_code": "69001"}

    def create() -> requests.Response:
        return requests.post(f"{live_server}/api/v1/structures", json=body, timeout=60,
                             headers={"Authorization": f"Bearer {token}"})

    responses = _parallel(create)
    codes = Counter(r.status_code for r in responses)
    assert codes == {201: 1, 409: PARALLEL - 1}, [(r.status_code, r.text[:200]) for r in responses]
    for response in responses:
        if response.status_code == 409:
            assert response.headers["Content-Type"] == "application/problem+json"
            assert response.json()["title"] == "Structure déjà enregistrée"


def test_an_invitation_link_used_again_by_its_browser_lands_on_the_account(app: Any, world: World,
                                                                          mailbox: Any) -> None:
    from manage_helpers import logged, post_page_form, submit

    email = unique_email("deuxfois")
    admin = logged(app, world.admin_a.email)
    submit(admin, f"/gestion/{world.a}/rattacher", data={"email": email, "given_name": "Dan", "family_name": "Deux"})
    link = mail_link(mailbox.wait_for(email, "mot de passe"), "/gestion/invitation/")
    invited = app.test_client()
    page = invited.get(link)
    done = post_page_form(invited, page.text, data={"password": PASSWORD, "confirm": PASSWORD})
    assert done.status_code == 302
    again = invited.get(link)  # the mail opened twice, a double click
    assert again.status_code == 302 and again.headers["Location"].endswith("/account/")
    assert email in _text(invited.get(again.headers["Location"]))
    # Anyone else, or a signed-out browser, still reads that the link is used up.
    assert app.test_client().get(link).status_code == 404


# ---------------------------------------------------------------- finding 4: secret-key rotation

OLD_KEY, NEW_KEY = "old-secret-key-" + "o" * 24, "new-secret-key-" + "n" * 24


@pytest.fixture
def rotated(app: Any) -> Iterator[Any]:
    """Build the IdP on the shared test database with `settings` (closed after the test)."""
    built: list[Any] = []

    def build(**settings: Any) -> Any:
        config = {key: app.config[key] for key in ("DATABASE_URL", "REDIS_URL", "SMTP_URL", "ISSUER",
                                                   "ARGON2_TIME_COST", "ARGON2_MEMORY_COST", "ARGON2_PARALLELISM")}
        built.append(create_app({**config, "TESTING": True, "DEV_INBOX": True, "TOTP_REQUIRED_FOR_ADMINS": False,
                                 **settings}))
        return built[-1]

    yield build
    for each in built:
        _close(each)


def test_a_key_rotation_keeps_sessions_forms_and_links(rotated: Any, create_account: Any, mailbox: Any) -> None:
    user = create_account()
    before = rotated(SECRET_KEY=OLD_KEY)
    browser = before.test_client()
    assert login(browser, user.email).status_code == 302
    form = browser.get("/account/profile")  # a form opened before the rotation
    assert form.status_code == 200
    anonymous = before.test_client()
    reset_page = anonymous.get("/password/forgot")
    anonymous.post("/password/forgot", data=form_fields(reset_page.text, email=user.email))
    reset_link = mail_link(mailbox.wait_for(user.email, "Réinitialisation"), "/password/reset/")

    # The environment now reads IDP_SECRET_KEY=<new> IDP_SECRET_KEY_FALLBACKS=<old> (a plain string).
    after = rotated(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=OLD_KEY)
    assert after.config["SECRET_KEY_FALLBACKS"] == [OLD_KEY]
    same_browser = after.test_client()
    same_browser.set_cookie("portail_idp", browser.get_cookie("portail_idp").value)
    assert same_browser.get("/account/").status_code == 200  # the session survives
    saved = same_browser.post("/account/profile", data=form_fields(form.text, given_name="Rotée", civility="mme"))
    assert saved.status_code == 302, [x for x in _text(saved).splitlines() if "error" in x]  # the CSRF token of the old form passes
    assert "Rotée" in _text(same_browser.get("/account/"))
    link = after.test_client().get(reset_link)
    assert link.status_code == 200 and 'name="password"' in _text(link)  # the mailed link still works

    # What is signed now uses the new key: a server that knows only the old one refuses it.
    fresh_form = same_browser.get("/account/profile")
    stale_server = rotated(SECRET_KEY=OLD_KEY).test_client()
    stale_server.set_cookie("portail_idp", same_browser.get_cookie("portail_idp").value)
    assert stale_server.get("/account/").status_code == 302

    # Once the fallback is dropped, what the old key signed stops working.
    later = rotated(SECRET_KEY=NEW_KEY)
    assert 'name="password"' not in _text(later.test_client().get(reset_link))
    assert fresh_form.status_code == 200


def test_the_apps_take_their_fallback_keys_too(tmp_path: Path) -> None:
    from tests import shell_app

    app = shell_app.build({"TESTING": True, "SECRET_KEY": NEW_KEY, "SECRET_KEY_FALLBACKS": f"{OLD_KEY}, other",
                           "OIDC_ISSUER": "http://127.0.0.1:9", "OIDC_CLIENT_ID": "notes", "OIDC_CLIENT_SECRET": "s",
                           "DATABASE_URL": f"sqlite:///{tmp_path / 'notes.sqlite3'}"})
    try:
        assert app.config["SECRET_KEY_FALLBACKS"] == [OLD_KEY, "other"]
        # Flask-WTF signs with the last key and accepts them all (itsdangerous' rotation order).
        assert app.config["WTF_CSRF_SECRET_KEY"] == [OLD_KEY, "other", NEW_KEY]
        from itsdangerous import URLSafeTimedSerializer

        old_token = URLSafeTimedSerializer(OLD_KEY, salt="wtf-csrf-token").dumps("raw")
        with app.test_request_context("/"):
            from flask import session
            from flask_wtf.csrf import validate_csrf

            session["csrf_token"] = "raw"
            validate_csrf(old_token)  # raises when the old key is not honoured
    finally:
        with app.app_context():
            shell_app.db.engine.dispose()


def test_a_bot_challenge_asked_before_a_rotation_is_answered_after_it() -> None:
    """REPERNET's registration question travels signed: the retired key still verifies it (issue 17)."""
    from apps.repernet.challenge import check_challenge, new_challenge

    question, token = new_challenge([OLD_KEY])
    a, b = (int(n) for n in re.findall(r"\d+", question))
    assert check_challenge([OLD_KEY, NEW_KEY], token, str(a + b), "", min_seconds=0) is None
    assert "incorrect" in check_challenge([OLD_KEY, NEW_KEY], token, str(a + b + 1), "", min_seconds=0)
    assert "invalide" in check_challenge([NEW_KEY], token, str(a + b), "", min_seconds=0)  # fallback dropped


def test_unknown_fallback_keys_never_verify(rotated: Any, create_account: Any) -> None:
    user = create_account()
    before = rotated(SECRET_KEY="an-unrelated-key-" + "u" * 20)
    browser = before.test_client()
    assert login(browser, user.email).status_code == 302
    after = rotated(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[OLD_KEY])
    other = after.test_client()
    other.set_cookie("portail_idp", browser.get_cookie("portail_idp").value)
    assert other.get("/account/").status_code == 302  # to the login page

