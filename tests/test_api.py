"""The service API /api/v1 (SPEC §4.8): client_credentials scopes, RFC 9457 problems, the
structure registration REPERNET performs, admin e-mail designation with real mails."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from conftest import mail_link, unique_email
from stdnum import luhn

from tests.oidc_helpers import code_flow

ALL = "structures:read structures:write members:read"
_counter = iter(range(52_000_000, 99_000_000, 104_729))


def new_siret(nic: str = "0001", siren: str | None = None) -> str:
    if siren is None:
        base = f"{next(_counter):08d}"
        siren = base + luhn.calc_check_digit(base)
    return siren + nic + luhn.calc_check_digit(siren + nic)


@pytest.fixture
def service(create_client: Any) -> Any:
    """Factory: a client_credentials client with these scopes → a function calling the API with its token."""

    def factory(scope: str = ALL) -> Any:
        client_id, secret = create_client(grant_types=["client_credentials"], scope=scope)
        response = requests.post(f"{_issuer()}/oauth/token", data={"grant_type": "client_credentials", "scope": scope},
                                 auth=(client_id, secret), timeout=10)
        assert response.status_code == 200, response.text
        token = response.json()["access_token"]

        def call(method: str, path: str, **kwargs: Any) -> requests.Response:
            headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
            return requests.request(method, f"{_issuer()}/api/v1{path}", headers=headers, timeout=10, **kwargs)

        return call

    return factory


_live: list[str] = []


def _issuer() -> str:
    return _live[0]


@pytest.fixture(autouse=True)
def _remember_issuer(live_server: str) -> None:
    if not _live:
        _live.append(live_server)


def _is_problem(response: requests.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["title"]
    return body


def test_create_read_update_a_structure(service: Any, mailbox: Any) -> None:
    call = service()
    siret = new_siret()
    admin = unique_email("admin")
    created = call("POST", "/structures", json={"siret": siret[:3] + " " + siret[3:], "name": "  Organisme Neuf ",
                                                  "city": "Lyon", "postal_code": "69001", "admin_email": admin})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["siret"] == siret and body["siren"] == siret[:9] and body["name"] == "Organisme Neuf"
    assert body["kind"] == "organisme" and body["admin_email"] == admin and body["parent_siret"] is None
    assert created.headers["Location"].endswith(f"/api/v1/structures/{siret}")
    # No account has that e-mail yet: the address is invited to create one.
    invitation = mailbox.wait_for(admin, "Créez votre compte")
    assert "/signup" in mail_link(invitation)

    read = call("GET", f"/structures/{siret}")
    assert read.status_code == 200 and read.json() == body and read.headers["ETag"] == '"1"'
    patched = call("PATCH", f"/structures/{siret}", json={"city": "Villeurbanne"}, headers={"If-Match": '"1"'})
    assert patched.status_code == 200 and patched.json()["city"] == "Villeurbanne" and patched.json()["version"] == 2
    stale = call("PATCH", f"/structures/{siret}", json={"city": "Bron"}, headers={"If-Match": '"1"'})
    assert "modifiée entre-temps" in _is_problem(stale, 412)["detail"]
    assert call("GET", f"/structures/{siret}").json()["city"] == "Villeurbanne"  # nothing overwritten

    listed = call("GET", "/structures", params={"q": "organisme neuf"}).json()
    assert siret in {s["siret"] for s in listed["items"]} and listed["page"] == 1


def test_an_etablissement_attaches_to_its_siege(service: Any) -> None:
    call = service()
    siege = new_siret()
    call("POST", "/structures", json={"siret": siege, "name": "Siège"})
    etablissement = new_siret("0002", siege[:9])
    body = call("POST", "/structures", json={"siret": etablissement, "name": "Établissement"}).json()
    assert body["parent_siret"] == siege


def test_an_existing_usager_named_admin_becomes_admin_at_once(service: Any, create_account: Any, mailbox: Any,
                                                              live_server: str) -> None:
    person = create_account()
    call = service()
    siret = new_siret()
    assert call("POST", "/structures", json={"siret": siret, "name": "Organisme Admin",
                                             "admin_email": person.email.upper()}).status_code == 201
    mailbox.wait_for(person.email, "Vous êtes administrateur")
    members = call("GET", f"/structures/{siret}/members").json()
    assert members["total"] == 1
    member = members["items"][0]
    assert member["email"] == person.email and member["role"] == "admin" and member["status"] == "active"
    assert "sam:signataire" in member["roles"]  # every role the structure is entitled to


def test_signing_up_with_the_designated_email_makes_the_admin(service: Any, mailbox: Any, live_server: str) -> None:
    call = service()
    siret = new_siret()
    email = unique_email("futur-admin")
    call("POST", "/structures", json={"siret": siret, "name": "Organisme En Attente", "admin_email": email})
    browser = requests.Session()
    from conftest import PASSWORD, forms

    page = browser.get(f"{live_server}/signup", timeout=10)
    fields = {**forms(page.text)[-1]["fields"], "email": email, "password": PASSWORD, "confirm": PASSWORD,
              "civility": "mme", "given_name": "Inès", "family_name": "Admin"}
    assert browser.post(f"{live_server}/signup", data=fields, timeout=10).status_code == 200
    verify = mailbox.wait_for(email, "Activez")
    assert browser.get(live_server + mail_link(verify), timeout=10).status_code == 200
    assert call("GET", f"/structures/{siret}/members").json()["items"][0]["role"] == "admin"


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "Sans SIRET"}, "siret"),
    ({"siret": "12345678900000", "name": "Mauvais Luhn"}, "siret"),
    ({"siret": "ABCDEFGHIJKLMN", "name": "Lettres"}, "siret"),
    ({"siret": "123", "name": "Court"}, "siret"),
    ({"siret": 12345678200010, "name": "Nombre"}, "siret"),
    ({"siret": "<new>"}, "name"),
    ({"siret": "<new>", "name": "x" * 201}, "name"),
    ({"siret": "<new>", "name": "Genre", "kind": "banque"}, "kind"),
    ({"siret": "<new>", "name": "Mail", "admin_email": "pas-une-adresse"}, "admin_email"),
    ({"siret": "<new>", "name": "Drapeau", "searchable": "oui"}, "searchable"),
    ({"siret": "<new>", "name": "Inconnu", "couleur": "bleu"}, "couleur"),
])
def test_invalid_structures_get_422_problems(service: Any, body: dict[str, Any], field: str) -> None:
    if body.get("siret") == "<new>":
        body = {**body, "siret": new_siret()}
    problem = _is_problem(service()("POST", "/structures", json=body), 422)
    assert field in {e["field"] for e in problem["errors"]}


def test_malformed_requests_get_problems_never_500(service: Any) -> None:
    call = service()
    assert _is_problem(call("POST", "/structures", data="{not json", headers={"Content-Type": "application/json"}), 400)
    assert _is_problem(call("POST", "/structures", json=["a", "list"]), 400)
    assert _is_problem(call("POST", "/structures", data={"siret": "x"}), 415)
    assert _is_problem(call("GET", "/structures/00000000000000"), 404)
    assert _is_problem(call("GET", "/structures/nope"), 404)
    assert _is_problem(call("GET", "/structures", params={"page": "-1"}), 400)
    assert _is_problem(call("GET", "/structures", params={"page": "9" * 30}), 400)
    assert _is_problem(call("DELETE", "/structures/12345678200010"), 405)
    assert _is_problem(call("GET", "/nowhere"), 404)
    big = {"siret": new_siret(), "name": "x" * (3 * 1024 * 1024)}
    assert call("POST", "/structures", json=big).status_code == 413


def test_duplicate_siret_is_409(service: Any) -> None:
    call = service()
    siret = new_siret()
    assert call("POST", "/structures", json={"siret": siret, "name": "Premier"}).status_code == 201
    assert "existe déjà" in _is_problem(call("POST", "/structures", json={"siret": siret, "name": "Second"}), 409)["detail"]


def test_each_scope_is_enforced(service: Any) -> None:
    reader = service("structures:read")
    siret = new_siret()
    refused = reader("POST", "/structures", json={"siret": siret, "name": "Refusé"})
    _is_problem(refused, 403)
    assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]
    _is_problem(reader("GET", f"/structures/{siret}/members"), 403)
    writer = service("structures:write")
    assert writer("POST", "/structures", json={"siret": siret, "name": "Accepté"}).status_code == 201
    _is_problem(writer("GET", f"/structures/{siret}"), 403)


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer not-a-jwt", "Basic abc", "Bearer " + "a" * 5000])
def test_missing_or_invalid_tokens_are_401(live_server: str, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = requests.get(f"{live_server}/api/v1/structures", headers=headers, timeout=10)
    _is_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


def test_a_users_access_token_is_refused(live_server: str, browser: requests.Session, create_client: Any,
                                         create_account: Any) -> None:
    person = create_account()
    client_id, secret = create_client(trusted=True, scope=f"openid {ALL}")
    token = code_flow(live_server, browser, client_id, secret, person.email, scope=f"openid {ALL}")
    response = requests.get(f"{live_server}/api/v1/structures", timeout=10,
                            headers={"Authorization": f"Bearer {token['access_token']}"})
    _is_problem(response, 401)


def test_a_revoked_token_is_refused(live_server: str, create_client: Any) -> None:
    client_id, secret = create_client(grant_types=["client_credentials"], scope=ALL)
    token = requests.post(f"{live_server}/oauth/token", data={"grant_type": "client_credentials"},
                          auth=(client_id, secret), timeout=10).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert requests.get(f"{live_server}/api/v1/structures", headers=headers, timeout=10).status_code == 200
    requests.post(f"{live_server}/oauth/revoke", data={"token": token}, auth=(client_id, secret), timeout=10)
    _is_problem(requests.get(f"{live_server}/api/v1/structures", headers=headers, timeout=10), 401)
