"""Issue 15, the accounts and administration side: each finding of the black-box audit replayed
over HTTP (blocked accounts, common passwords, reset links, probing ids, huge integers, deep JSON)."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import pytest
import requests
from conftest import (
    PASSWORD,
    csrf_token,
    forms,
    mail_link,
    mail_text,
    new_siret,
    unique_email,
    without_csrf,
)
from manage_helpers import (
    World,
    account_factory,
    ask_to_join,
    build_world,
    logged,
    post_page_form,
    role_id,
)
from test_accounts_helpers import login, post_form, user_row

from idp.models import AccountState

GENERIC = "Identifiant ou mot de passe incorrect."
HUGE = "99999999999999999999"


def _body(html: str) -> str:
    return re.sub(r'name="csrf_token"[^>]*value="[^"]+"', "", html)


@pytest.fixture(scope="module")
def world(app: Any) -> World:
    return build_world(app, account_factory(app))


# ------------------------------------------------------------------ finding 8: blocked account

def test_blocked_account_right_password_looks_like_a_wrong_one(app: Any, testclient: Any, mailbox: Any,
                                                               create_account: Any) -> None:
    user = create_account()
    for attempt in range(3):
        login(testclient, user.email, password=f"Wrong-Password-{attempt}x")
    assert user_row(app, user.email).state == AccountState.BLOCKED
    first_mails = len(mailbox.to(user.email))

    wrong = login(testclient, user.email, password="Still-Wrong-Password-9")
    right = login(testclient, user.email)
    assert wrong.status_code == right.status_code == 200
    assert GENERIC in right.text and "bloqué" not in right.text
    assert _body(right.text) == _body(wrong.text)
    assert wrong.headers.get("Set-Cookie") is None or "portail_idp" not in str(right.headers.get("Set-Cookie"))
    # The owner is told, with the ways out; the wrong password sent nothing more.
    time.sleep(0.1)
    later = mailbox.to(user.email)[first_mails:]
    assert len(later) == 1 and "bloqué" in later[0]["Subject"]
    assert "/password/reset/" in mail_text(later[0])


# ------------------------------------------------------------------ finding 9: common passwords

@pytest.mark.parametrize(("password", "reason"), [
    ("123456789012345", "suite prévisible"),
    ("passwordpassword", "répète les mêmes caractères"),
    ("Azerty123456!", "mots de passe courants"),
    ("Motdepasse123!", "plus courants"),
    ("Soleil2024!!!", "une date ou une année"),
])
def test_common_passwords_are_refused_with_the_reason(testclient: Any, mailbox: Any, password: str,
                                                      reason: str) -> None:
    page = testclient.get("/signup")
    email = unique_email()
    response = testclient.post("/signup", data={**forms(page.text)[-1]["fields"], "email": email, "password": password,
                                                "confirm": password, "civility": "mme", "given_name": "Camille",
                                                "family_name": "Durand"})
    assert response.status_code == 200, response.status_code
    assert reason in response.text.replace("&#39;", "'")
    assert user_row(testclient.application, email) is None


def test_the_users_own_words_are_context(testclient: Any, create_account: Any) -> None:
    user = create_account(given_name="Maëlys", family_name="Kerbrat")
    login(testclient, user.email)
    for password in ("Maelys-Kerbrat-2024", "Portail-Portail-99!"):
        response = post_form(testclient, "/account/password", current=PASSWORD, password=password, confirm=password)
        assert response.status_code == 200 and "Le mot de passe ne doit" in response.text.replace("&#39;", "'")


# ------------------------------------------------------------------ finding 10: only the latest reset link

def test_an_older_reset_link_dies_when_a_newer_one_is_sent(testclient: Any, mailbox: Any, create_account: Any) -> None:
    user = create_account()
    post_form(testclient, "/password/forgot", email=user.email)
    older = mail_link(mailbox.wait_for(user.email, "Réinitialisation"), "/password/reset/")
    assert 'name="password"' in testclient.get(older).text  # works while it is the latest
    post_form(testclient, "/password/forgot", email=user.email)
    newer = mail_link(mailbox.wait_for(user.email, "Réinitialisation"), "/password/reset/")
    assert newer != older

    refused = testclient.get(older)
    assert 'name="password"' not in refused.text and "déjà servi" in refused.text
    new_password = "Une-Toute-Autre-Phrase-77"
    token = csrf_token(testclient.get(newer).text)
    assert testclient.post(older, data={"csrf_token": token, "password": new_password,
                                        "confirm": new_password}).status_code != 302
    done = post_form(testclient, newer, password=new_password, confirm=new_password)
    assert done.status_code == 302
    # Used once: gone.
    assert 'name="password"' not in testclient.get(newer).text


# ------------------------------------------------------------------ finding 11: reset-link guessing

def test_reset_link_guessing_is_limited_whatever_the_forwarded_for(app: Any, live_server: str,
                                                                   create_account: Any) -> None:
    """Rotating X-Forwarded-For must not dodge the limit (no IDP_PROXY_FIX here)."""
    user = create_account()
    session = requests.Session()
    codes = []
    for n in range(25):
        forged = f"eyJ1aWQiOiJ7dXNlci5pZH0ifQ.{n:06d}.guess{n}".replace("{user.id}", str(user.id))
        response = session.get(f"{live_server}/password/reset/{forged}",
                               headers={"X-Forwarded-For": f"198.51.100.{n}"}, timeout=10)
        codes.append(response.status_code)
    assert 429 in codes[:21], codes
    assert codes[-1] == 429
    assert "Retry-After" in response.headers


def test_reset_link_guessing_is_limited_per_account(app: Any, live_server: str, create_account: Any) -> None:
    import base64
    import json

    user = create_account()
    payload = base64.urlsafe_b64encode(json.dumps({"uid": str(user.id), "fp": "x"}).encode()).rstrip(b"=").decode()
    codes = [requests.get(f"{live_server}/password/reset/{payload}.AAAA.guess{n}", timeout=10).status_code
             for n in range(6)]
    assert codes == [200] * 5 + [429], codes


def test_a_good_reset_link_is_never_held_back_by_the_limit(testclient: Any, mailbox: Any,
                                                           create_account: Any) -> None:
    user = create_account()
    post_form(testclient, "/password/forgot", email=user.email)
    link = mail_link(mailbox.wait_for(user.email, "Réinitialisation"), "/password/reset/")
    for _ in range(30):
        assert testclient.get(link).status_code == 200


# ------------------------------------------------------------------ finding 12: probing structure ids

def test_another_structures_pages_answer_exactly_like_a_missing_one(app: Any, world: World) -> None:
    rid_b = ask_to_join(app, account_factory(app)().id, world.b)
    client = logged(app, world.admin_a.email)
    missing = client.get(f"/gestion/{uuid.uuid4()}/")
    assert missing.status_code == 404
    paths = ["/", "/demandes", f"/demandes/{rid_b}", "/membres", f"/membres/{world.m_member_b}",
             f"/membres/{world.m_member_b}/detacher", f"/membres/{world.m_member_b}/debloquer", "/rattacher",
             "/invitations", "/journal", "/journal.csv"]
    for path in paths:
        for structure in (world.b, uuid.uuid4()):
            response = client.get(f"/gestion/{structure}{path}")
            assert response.status_code == 404, (path, response.status_code)
            # Compared without the CSRF tokens, which carry their second of issue (a flaky diff otherwise).
            assert without_csrf(response.get_data(as_text=True)) == without_csrf(missing.get_data(as_text=True)), path
    token = csrf_token(client.get("/structures/").text)
    for path in (f"/membres/{world.m_member_b}/suspension", f"/demandes/{rid_b}/refuser", "/rattacher"):
        for structure in (world.b, uuid.uuid4()):
            response = client.post(f"/gestion/{structure}{path}", data={"csrf_token": token, "version": "1"})
            assert response.status_code == 404, path


# ------------------------------------------------------------------ finding 14: integers beyond 64 bits

@pytest.mark.parametrize("number", [HUGE, str(2**63), str(2**31), "-" + HUGE])
def test_huge_ids_in_paths_are_404(app: Any, world: World, number: str) -> None:
    client = logged(app, world.admin_a.email)
    platform = logged(app, world.platform.email)
    for path in (f"/structures/demandes/{number}", f"/gestion/{world.a}/membres/{number}",
                 f"/gestion/{world.a}/demandes/{number}", f"/dev/inbox/{number}"):
        assert client.get(path).status_code == 404, path
    for path in (f"/admin/profiles/{number}", f"/admin/clients/{number}", f"/admin/moderation/{number}"):
        assert platform.get(path).status_code == 404, path


@pytest.mark.parametrize("number", [HUGE, str(2**63), str(2**31)])
def test_huge_versions_and_role_ids_in_forms_never_500(app: Any, world: World, number: str) -> None:
    admin = logged(app, world.admin_a2.email)
    member = f"/gestion/{world.a}/membres/{world.m_member_a}"
    page = admin.get(member)
    for form_id in ("admin", "suspension", "grants"):
        response = post_page_form(admin, page.text, form_id=form_id, data={"version": number})
        assert response.status_code in (400, 409, 422), (form_id, response.status_code)
    response = post_page_form(admin, page.text, form_id="grants", data={"roles": [number]})
    assert response.status_code in (400, 403, 422), response.status_code
    attach = admin.get(f"/gestion/{world.a}/rattacher")
    response = post_page_form(admin, attach.text, data={"email": unique_email(), "roles": [number]})
    assert response.status_code in (400, 403, 422), response.status_code

    platform = logged(app, world.platform.email)
    edit = platform.get(f"/admin/structures/{world.b}")
    response = post_page_form(platform, edit.text, data={"version": number})
    assert response.status_code in (400, 409, 422), response.status_code
    entitlements = platform.get(f"/admin/structures/{world.b}/entitlements")
    response = post_page_form(platform, entitlements.text, data={"roles": [number]})
    assert response.status_code in (200, 400, 422), response.status_code  # the form again, with its error
    profile = platform.get("/admin/profiles/new")
    response = post_page_form(platform, profile.text, data={"name": "Profil", "kind": "organisme", "roles": [number]})
    assert response.status_code in (200, 400, 422), response.status_code  # the form again, with its error

    user = logged(app, world.member_a.email)
    mine = user.get("/account/profile")
    response = post_page_form(user, mine.text, data={"version": number})
    assert response.status_code in (200, 400, 409, 422), response.status_code
    assert role_id(app, "sam:redacteur")  # the database is still answering


# ------------------------------------------------------------------ finding 16: deep JSON

def _service_token(live_server: str, create_client: Any) -> str:
    client = create_client(name="Service API (JSON profond)", grant_types=["client_credentials"],
                           scope="structures:read structures:write", redirect_uris=[])
    response = requests.post(f"{live_server}/oauth/token", data={"grant_type": "client_credentials"}, auth=client,
                             timeout=10)
    return response.json()["access_token"]


@pytest.mark.parametrize("body", [
    "[" * 100_000 + "]" * 100_000,
    '{"a":' * 50_000 + "1" + "}" * 50_000,
    '{"name": ' + "[" * 5000 + "]" * 5000 + "}",
    '{"siret": "1", "siret": "2"}',
    b'{"name": "\xff\xfe"}',
    '{"name": "\\ud800"}',
    "NaN",
    '{"name": 1e999999}',
])
def test_deep_or_odd_json_is_a_problem_never_a_500(live_server: str, create_client: Any, body: Any) -> None:
    token = _service_token(live_server, create_client)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    siret = new_siret()
    assert requests.post(f"{live_server}/api/v1/structures", json={"siret": siret, "name": "Profonde"},
                         headers=headers, timeout=10).status_code == 201
    data = body if isinstance(body, bytes) else body.encode()
    for method, path in (("POST", "/api/v1/structures"), ("PATCH", f"/api/v1/structures/{siret}")):
        response = requests.request(method, f"{live_server}{path}", data=data, headers=headers, timeout=30)
        assert response.status_code in (400, 413, 422), (method, response.status_code, response.text[:200])
        assert response.headers["Content-Type"].startswith("application/problem+json")
