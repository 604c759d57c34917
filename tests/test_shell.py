# ruff: noqa: F811 - pytest fixtures imported from tests/rp_helpers.py are parameters here
"""The relying-party shell, driven through HTTP on a tiny app built on it (tests/shell_app.py):
optimistic locking, the structure guard, the French 403, the API's Bearer check, the service
client's token reuse, the mail outbox through an SMTP outage."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from werkzeug.serving import make_server

from tests.conftest import Mailbox, _free_port, without_csrf
from tests.rp_helpers import RP, RP_SECRET, member_of, new_browser, page_form, rp_get, rp_login


@pytest.fixture(scope="module")
def notes(app: Any, live_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RP]:
    from idp.core.security import SYSTEM
    from idp.extensions import db as idp_db
    from idp.oidc.clients import ClientSpec, create_client
    from shared.tables import shell_metadata
    from tests import shell_app

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    client_id = f"notes-{uuid.uuid4().hex[:6]}"
    with app.app_context():
        create_client(idp_db.session, ClientSpec(
            name="Notes (tests)", client_id=client_id, client_secret=RP_SECRET, app="catalogue",
            redirect_uris=[f"{url}/auth/callback"], post_logout_redirect_uris=[f"{url}/"], trusted=True,
            grant_types=["authorization_code", "refresh_token", "client_credentials"],
            scope="openid profile email structures structures:read"), SYSTEM)
        idp_db.session.commit()
    folder = tmp_path_factory.mktemp("notes")
    notes_app = shell_app.build({
        "TESTING": True, "SECRET_KEY": "notes-test-key", "DATABASE_URL": f"sqlite:///{folder / 'notes.sqlite3'}",
        "OIDC_ISSUER": live_server, "OIDC_CLIENT_ID": client_id, "OIDC_CLIENT_SECRET": RP_SECRET,
        "SMTP_URL": f"smtp://127.0.0.1:{_free_port()}",  # nobody listens: an SMTP outage
    })
    with notes_app.app_context():
        shell_app.db.create_all()
        shell_metadata.create_all(shell_app.db.engine)
    server = make_server("127.0.0.1", port, notes_app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield RP(url, notes_app, client_id)
    server.shutdown()


def _note(browser: requests.Session, rp: RP, text: str = "Première note") -> int:
    home = rp_get(browser, rp, "/dev/inbox")  # any page: a CSRF token for the POST
    token = page_form(home.text, "/auth/logout")["fields"]["csrf_token"]
    response = browser.post(f"{rp.url}/notes", data={"text": text, "csrf_token": token})
    assert response.status_code == 201, response.text[:300]
    return int(response.json()["id"])


def test_a_stale_save_gets_409_and_keeps_the_input(app: Any, notes: RP) -> None:
    person, org = member_of(app, ["catalogue:editeur"])
    colleague, _ = member_of(app, ["catalogue:editeur"], org=org)
    first, second = new_browser(), new_browser()
    rp_login(first, notes, person.email)
    rp_login(second, notes, colleague.email)
    note_id = _note(first, notes)
    form_a = page_form(rp_get(first, notes, f"/notes/{note_id}/modifier").text, "/modifier")
    form_b = page_form(rp_get(second, notes, f"/notes/{note_id}/modifier").text, "/modifier")
    saved = first.post(f"{notes.url}/notes/{note_id}/modifier", data={**form_a["fields"], "text": "Version A"},
                       allow_redirects=False)
    assert saved.status_code == 303
    stale = second.post(f"{notes.url}/notes/{note_id}/modifier", data={**form_b["fields"], "text": "Version B"})
    assert stale.status_code == 409
    assert "modifiée par quelqu&#39;un d&#39;autre" in stale.text and 'value="Version B"' in stale.text
    assert rp_get(first, notes, f"/notes/{note_id}").json()["text"] == "Version A"
    # A save that does not send the version back is stale too, never a silent overwrite.
    blind = first.post(f"{notes.url}/notes/{note_id}/modifier",
                       data={"csrf_token": form_a["fields"]["csrf_token"], "text": "Sans version"})
    assert blind.status_code == 409


def test_another_structures_object_looks_missing(app: Any, notes: RP) -> None:
    owner, _org = member_of(app, ["catalogue:editeur"])
    stranger, _other = member_of(app, ["catalogue:editeur"])
    browser = new_browser()
    rp_login(browser, notes, owner.email)
    note_id = _note(browser, notes)
    outsider = new_browser()
    rp_login(outsider, notes, stranger.email)
    theirs = rp_get(outsider, notes, f"/notes/{note_id}")
    missing = rp_get(outsider, notes, f"/notes/{note_id + 100000}")
    assert theirs.status_code == missing.status_code == 404
    assert without_csrf(theirs.text) == without_csrf(missing.text)
    for weird in ("99999999999999999999999999999", "0", "-1", "1%00", "abc"):
        assert rp_get(outsider, notes, f"/notes/{weird}").status_code == 404, weird


def test_a_missing_role_gets_the_french_403(app: Any, notes: RP) -> None:
    editor, org = member_of(app, ["catalogue:editeur"])
    reader, _ = member_of(app, ["catalogue:lecteur"], org=org)
    browser = new_browser()
    rp_login(browser, notes, editor.email)
    note_id = _note(browser, notes)
    other = new_browser()
    rp_login(other, notes, reader.email)
    assert rp_get(other, notes, f"/notes/{note_id}").status_code == 200
    refused = rp_get(other, notes, f"/notes/{note_id}/modifier")
    assert refused.status_code == 403
    assert "Accès refusé" in refused.text and "« Catalogue — Éditeur »" in refused.text


def _service_token(live_server: str, app: Any, scope: str) -> str:
    from idp.core.security import SYSTEM
    from idp.extensions import db as idp_db
    from idp.oidc.clients import ClientSpec, create_client

    client_id = f"svc-{uuid.uuid4().hex[:6]}"
    with app.app_context():
        create_client(idp_db.session, ClientSpec(
            name="Service (tests)", client_id=client_id, client_secret=RP_SECRET, redirect_uris=[],
            grant_types=["client_credentials"], scope=scope), SYSTEM)
        idp_db.session.commit()
    response = requests.post(f"{live_server}/oauth/token", data={"grant_type": "client_credentials", "scope": scope},
                             auth=(client_id, RP_SECRET), timeout=10)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def test_api_without_a_token_is_a_401_problem(notes: RP) -> None:
    response = requests.post(f"{notes.url}/api/v1/notes", json={"a": 1}, timeout=5)
    assert response.status_code == 401 and response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 401 and "Bearer" in response.headers["WWW-Authenticate"]
    forged = requests.post(f"{notes.url}/api/v1/notes", json={}, headers={"Authorization": "Bearer e30.e30.x"},
                           timeout=5)
    assert forged.status_code == 401


def test_api_with_the_right_token_the_wrong_scope_or_another_audience(app: Any, live_server: str,
                                                                       notes: RP) -> None:
    token = _service_token(live_server, app, "catalogue:write")
    ok = requests.post(f"{notes.url}/api/v1/notes", json={"award": 7}, timeout=5,
                       headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 201 and ok.json()["received"] == {"award": 7}
    wrong_scope = requests.get(f"{notes.url}/api/v1/notes", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert wrong_scope.status_code == 403 and wrong_scope.headers["Content-Type"] == "application/problem+json"
    assert "insufficient_scope" in wrong_scope.headers["WWW-Authenticate"]
    for_repernet = _service_token(live_server, app, "repernet:read")
    refused = requests.post(f"{notes.url}/api/v1/notes", json={}, timeout=5,
                            headers={"Authorization": f"Bearer {for_repernet}"})
    assert refused.status_code == 401 and refused.json()["title"] == "Jeton d'accès invalide"


def test_the_service_token_is_reused_until_shortly_before_it_expires(app: Any, notes: RP) -> None:
    _person, org = member_of(app, ["catalogue:editeur"])
    client = notes.app.extensions["shell.service"]
    before = client.tokens_fetched
    for _ in range(3):
        response = requests.get(f"{notes.url}/structure-at-the-idp/{org.siret}", timeout=10)
        assert response.status_code == 200 and response.json()["name"] == org.name
    assert client.tokens_fetched - before <= 1  # one token for all the calls (none if one was cached)
    client.RENEW_BEFORE = 299.5  # of a 300 s token: renewed half a second after it is fetched
    try:
        client.token(force=True)
        fetched = client.tokens_fetched
        assert requests.get(f"{notes.url}/structure-at-the-idp/{org.siret}", timeout=10).status_code == 200
        assert client.tokens_fetched == fetched
        time.sleep(0.6)
        assert requests.get(f"{notes.url}/structure-at-the-idp/{org.siret}", timeout=10).status_code == 200
        assert client.tokens_fetched == fetched + 1
    finally:
        del client.RENEW_BEFORE
    missing = requests.get(f"{notes.url}/structure-at-the-idp/00000000000000", timeout=10)
    assert missing.status_code == 404


def test_mail_survives_an_smtp_outage(app: Any, notes: RP, smtp_server: tuple[str, Mailbox]) -> None:
    from shared import outbox
    from shared.tables import OutboxMail
    from tests import shell_app

    person, _org = member_of(app, ["catalogue:editeur"])
    browser = new_browser()
    rp_login(browser, notes, person.email)
    token = page_form(rp_get(browser, notes, "/dev/inbox").text, "/auth/logout")["fields"]["csrf_token"]
    to = f"outage-{uuid.uuid4().hex[:6]}@example.test"
    assert browser.post(f"{notes.url}/mail", data={"to": to, "csrf_token": token}).status_code == 204
    with notes.app.app_context():
        row = shell_app.db.session.execute(OutboxMail.__table__.select().where(OutboxMail.recipient == to)).one()
        assert row.status == "pending" and row.attempts == 1 and row.last_error  # tried during the outage, kept
        # The server is back (the test SMTP server); the next attempt, when its backoff ends, delivers.
        smtp_url, box = smtp_server
        sender = outbox.smtp_sender(smtp_url, "Notes <notes@example.test>", timeout=5)
        assert outbox.deliver_due(shell_app.db.session, OutboxMail, sender, max_attempts=8,
                                  now=row.next_attempt_at) >= 1
    message = box.wait_for(to, "Bonjour Camille")
    assert "Un message du Catalogue" in message.get_body(preferencelist=("plain",)).get_content()


@pytest.mark.parametrize(("error", "status", "detail", "english"), [
    ("IntegrityError", 409, "déjà d'être enregistrée", "recorded already"),
    ("DataError", 400, "dépasse ce que ce service accepte", "exceeds what this service accepts"),
    ("OperationalError", 503, "momentanément indisponible", "temporarily unavailable"),
])
def test_an_uncaught_database_error_is_classified(tmp_path: Any, monkeypatch: pytest.MonkeyPatch, error: str,
                                                  status: int, detail: str, english: str) -> None:
    import sqlalchemy.exc

    from tests import shell_app

    notes = shell_app.build({
        "TESTING": True, "SECRET_KEY": "k", "OIDC_ISSUER": "http://127.0.0.1:9", "OIDC_CLIENT_ID": "notes",
        "OIDC_CLIENT_SECRET": "s", "DATABASE_URL": f"sqlite:///{tmp_path / 'notes.sqlite3'}",
    })

    def failing() -> Any:
        raise getattr(sqlalchemy.exc, error)("INSERT …", {}, Exception("the driver's message"))

    monkeypatch.setitem(notes.view_functions, "shell.dev_inbox", failing)
    client = notes.test_client()
    page = client.get("/dev/inbox", headers={"Accept-Language": "fr"})
    assert page.status_code == status and page.mimetype == "text/html"
    assert detail in page.get_data(as_text=True).replace("&#39;", "'")
    assert english in client.get("/dev/inbox", headers={"Accept-Language": "en"}).get_data(as_text=True)
    api = client.get("/dev/inbox", headers={"Accept": "application/json"})
    assert api.status_code == status and api.mimetype == "application/problem+json" and detail in api.json["detail"]
    assert ("Retry-After" in page.headers) == (status == 503)
    with notes.app_context():
        shell_app.db.engine.dispose()


def test_a_database_outage_is_a_503_with_retry_after(tmp_path: Any) -> None:
    from tests import shell_app

    down = shell_app.build({
        "TESTING": True, "SECRET_KEY": "k", "OIDC_ISSUER": "http://127.0.0.1:9", "OIDC_CLIENT_ID": "notes",
        "OIDC_CLIENT_SECRET": "s", "DATABASE_URL": f"postgresql+psycopg://nobody@127.0.0.1:{_free_port()}/none",
    })
    client = down.test_client()
    assert client.get("/livez").status_code == 200  # the process is up
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.headers["Retry-After"] and ready.json["checks"]["database"] == "unreachable"
    page = client.get("/dev/inbox")  # a page that reads the database
    assert page.status_code == 503 and page.headers["Retry-After"] == "5"
    assert "momentanément indisponible" in page.get_data(as_text=True)
    client.set_cookie("catalogue_session", "a-session-key-whose-row-cannot-be-read")
    signed_in = client.get("/")  # the session itself cannot be read: 503, not an anonymous page
    assert signed_in.status_code == 503 and signed_in.headers["Retry-After"] == "5"
    api = client.get("/dev/inbox", headers={"Accept": "application/json"})
    assert api.status_code == 503 and api.headers["Content-Type"] == "application/problem+json"
    with down.app_context():
        shell_app.db.engine.dispose()


@pytest.mark.parametrize(("value", "length", "expected"), [
    ("75001", 5, True), ("7500", 5, False), ("750011", 5, False), ("12345678200010", 14, True), ("0", None, True),
    ("²²²²²", 5, False), ("٣٣٣٣٣", 5, False), ("７５００１", 5, False), ("7500 ", 5, False), ("75_01", 5, False),
    ("", None, False), ("-1", None, False), ("7500\n", 5, False),
])
def test_ascii_digits_is_the_one_rule_for_codes(value: str, length: int | None, expected: bool) -> None:
    """`str.isdigit()` takes "²", Arabic-Indic and full-width digits, which `int()` or nobody
    else would: SIRET, postal codes, départements and counts take ASCII digits only."""
    from shared import ascii_digits

    assert ascii_digits(value, length) is expected
