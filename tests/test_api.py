"""The service API /api/v1 (SPEC §4.8): client_credentials scopes, RFC 9457 problems, the
structure registration REPERNET performs, admin e-mail designation with real mails."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import requests
from conftest import mail_link, new_siret, unique_email

from tests.oidc_helpers import code_flow

ALL = "structures:read structures:write members:read"




_clients: dict[str, tuple[str, str]] = {}
_tokens: dict[str, tuple[float, str]] = {}


@pytest.fixture
def service(create_client: Any) -> Any:
    """Factory: a client_credentials client with these scopes → a function calling the API with its
    token. One client per scope set for the whole run, its token renewed after 200 s (fewer clients
    keep the console's client list, sorted by name, as other tests expect it)."""

    def factory(scope: str = ALL) -> Any:
        if scope not in _clients:
            _clients[scope] = create_client(name="Service API (tests)", grant_types=["client_credentials"],
                                            scope=scope, redirect_uris=[])
        if scope not in _tokens or time.monotonic() - _tokens[scope][0] > 200:
            response = requests.post(f"{_issuer()}/oauth/token",
                                     data={"grant_type": "client_credentials", "scope": scope},
                                     auth=_clients[scope], timeout=10)
            assert response.status_code == 200, response.text
            _tokens[scope] = (time.monotonic(), response.json()["access_token"])
        token = _tokens[scope][1]

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
    etablissement = new_siret(siege[:9], "0002")
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
    ({"siret": "<new>", "name": "Nul\u0000"}, "name"),
    ({"siret": "<new>", "name": "Ville", "city": "Lyon\u0007"}, "city"),
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
    client_id, secret = create_client(name="Service API (tests)", grant_types=["client_credentials"], scope=ALL,
                                      redirect_uris=[])
    token = requests.post(f"{live_server}/oauth/token", data={"grant_type": "client_credentials"},
                          auth=(client_id, secret), timeout=10).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert requests.get(f"{live_server}/api/v1/structures", headers=headers, timeout=10).status_code == 200
    requests.post(f"{live_server}/oauth/revoke", data={"token": token}, auth=(client_id, secret), timeout=10)
    _is_problem(requests.get(f"{live_server}/api/v1/structures", headers=headers, timeout=10), 401)


# ------------------------------------------------------------------ siège, updates, locking

def _db(app: Any, fn: Any) -> Any:
    from idp.extensions import db

    with app.app_context():
        result = fn(db.session)
        db.session.commit()
        return result


def test_a_named_siege_must_be_a_siege_of_the_same_siren(service: Any) -> None:
    call = service()
    siege = new_siret()
    assert call("POST", "/structures", json={"siret": siege, "name": "Siège nommé"}).status_code == 201
    etab = new_siret(siege[:9], "0002")
    created = call("POST", "/structures", json={"siret": etab, "name": "Établissement", "parent_siret": siege})
    assert created.status_code == 201 and created.json()["parent_siret"] == siege
    for parent, message in [(new_siret(), "Aucune structure"),                  # unknown
                            (etab, "pas un siège"),                             # an établissement
                            ("12345678900000", "SIRET")]:                       # bad key
        body = {"siret": new_siret(siege[:9], "0003"), "name": "Refusé", "parent_siret": parent}
        problem = _is_problem(call("POST", "/structures", json=body), 422)
        assert problem["errors"][0]["field"] == "parent_siret" and message in problem["errors"][0]["message"]
    other = new_siret()
    call("POST", "/structures", json={"siret": other, "name": "Autre entreprise"})
    problem = _is_problem(call("POST", "/structures", json={"siret": new_siret(siege[:9], "0004"), "name": "X",
                                                            "parent_siret": other}), 422)
    assert "même SIREN" in problem["detail"]


def test_patch_changes_every_field_but_the_siret(service: Any) -> None:
    call = service()
    siege, etab = new_siret(), None
    call("POST", "/structures", json={"siret": siege, "name": "Siège"})
    etab = new_siret(siege[:9], "0002")
    call("POST", "/structures", json={"siret": etab, "name": "Annexe", "city": "Lyon", "code": "0690001A"})
    patched = call("PATCH", f"/structures/{etab}", json={"name": "Annexe Sud", "kind": "lycee", "code": "0690002B",
                                                        "postal_code": "69007", "searchable": False,
                                                        "parent_siret": None, "city": None})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["name"], body["kind"], body["code"], body["postal_code"], body["searchable"]) == (
        "Annexe Sud", "lycee", "0690002B", "69007", False)
    assert body["parent_siret"] is None and body["city"] == "" and body["version"] == 2
    assert patched.headers["ETag"] == '"2"'
    back = call("PATCH", f"/structures/{etab}", json={"parent_siret": siege, "code": ""}).json()
    assert back["parent_siret"] == siege and back["code"] is None
    # A siège with établissements cannot itself become an établissement.
    other = new_siret(siege[:9], "0003")
    call("POST", "/structures", json={"siret": other, "name": "Autre siège", "parent_siret": ""})
    problem = _is_problem(call("PATCH", f"/structures/{siege}", json={"parent_siret": other}), 422)
    assert problem["errors"][0]["field"] == "parent_siret"

    for bad, field, message in [({"siret": new_siret()}, "siret", "non modifiable"),
                                ({"name": ""}, "name", "obligatoire"),
                                ({"name": None}, "name", "obligatoire"),
                                ({"kind": None}, "kind", "une valeur parmi"),
                                ({"searchable": None}, "searchable", "true ou false"),
                                ({"version": "2"}, "version", "entier"),
                                ({"id": "x"}, "id", "champ inconnu")]:
        problem = _is_problem(call("PATCH", f"/structures/{etab}", json=bad), 422)
        assert {"field": field, "message": message} in [
            {"field": e["field"], "message": message} for e in problem["errors"] if message in e["message"]], problem
    assert call("GET", f"/structures/{etab}").json()["version"] == 3  # no refused PATCH changed anything
    _is_problem(call("PATCH", f"/structures/{new_siret()}", json={"name": "Personne"}), 404)
    _is_problem(call("PATCH", f"/structures/{etab}", data="name=x",
                     headers={"Content-Type": "application/x-www-form-urlencoded"}), 415)


@pytest.mark.parametrize(("headers", "body", "status"), [
    ({"If-Match": '"1"'}, {}, 200),
    ({"If-Match": 'W/"1"'}, {}, 200),
    ({"If-Match": "*"}, {}, 200),
    ({}, {"version": 1}, 200),
    ({}, {}, 200),                              # a service may overwrite without a version
    ({"If-Match": '"7"'}, {}, 412),
    ({"If-Match": '"abc"'}, {}, 412),
    ({}, {"version": 0}, 412),
    ({"If-Match": '"1"'}, {"version": 2}, 412),  # two versions that disagree
])
def test_optimistic_locking(service: Any, headers: dict[str, str], body: dict[str, Any], status: int) -> None:
    call = service()
    siret = new_siret()
    call("POST", "/structures", json={"siret": siret, "name": "Verrou", "city": "Avant"})
    response = call("PATCH", f"/structures/{siret}", json={"city": "Après", **body}, headers=headers)
    if status == 200:
        assert response.status_code == 200 and response.json()["version"] == 2
    else:
        assert "modifiée entre-temps" in _is_problem(response, status)["detail"]
        assert call("GET", f"/structures/{siret}").json()["city"] == "Avant"


def test_list_pages_and_search(service: Any) -> None:
    call = service()
    tag = f"pagination{uuid.uuid4().hex[:8]}"
    sirets = sorted(new_siret() for _ in range(3))
    for n, siret in enumerate(sirets):
        call("POST", "/structures", json={"siret": siret, "name": f"{tag} {n}", "searchable": n != 1})
    first = call("GET", "/structures", params={"q": tag.upper(), "per_page": 2}).json()
    second = call("GET", "/structures", params={"q": tag, "per_page": 2, "page": 2}).json()
    assert first["total"] == 3 and first["per_page"] == 2 and len(first["items"]) == 2
    assert [s["name"] for s in first["items"] + second["items"]] == [f"{tag} 0", f"{tag} 1", f"{tag} 2"]
    assert call("GET", "/structures", params={"q": sirets[2]}).json()["items"][0]["siret"] == sirets[2]
    assert call("GET", "/structures", params={"q": "100%_"}).json()["total"] == 0  # LIKE wildcards are literal
    # NUL has no use in any parameter: refused at the door (issue 15), as a problem, never a 500.
    assert _is_problem(call("GET", "/structures", params={"q": f"{tag}\x00"}), 400)
    assert call("GET", "/structures", params={"per_page": 5000}).json()["per_page"] == 100


# ------------------------------------------------------------------ designation by PATCH, members

def test_patching_the_admin_email_designates_the_admin(service: Any, create_account: Any, mailbox: Any) -> None:
    call = service()
    siret = new_siret()
    call("POST", "/structures", json={"siret": siret, "name": "Sans admin"})
    person = create_account()
    assert call("PATCH", f"/structures/{siret}", json={"admin_email": f" {person.email.upper()} "}).status_code == 200
    message = mailbox.wait_for(person.email, "Vous êtes administrateur de Sans admin")
    assert f"/gestion/{call('GET', f'/structures/{siret}').json()['id']}/" in mail_link(message)
    assert call("GET", f"/structures/{siret}/members").json()["items"][0]["role"] == "admin"
    newcomer = unique_email("nouvel-admin")
    body = call("PATCH", f"/structures/{siret}", json={"admin_email": newcomer}).json()
    assert body["admin_email"] == newcomer
    assert "/signup" in mail_link(mailbox.wait_for(newcomer, "Créez votre compte pour administrer Sans admin"))
    # Same address again: nobody is mailed twice.
    call("PATCH", f"/structures/{siret}", json={"admin_email": newcomer.upper(), "city": "Lyon"})
    assert len(mailbox.to(newcomer)) == 1
    cleared = call("PATCH", f"/structures/{siret}", json={"admin_email": None}).json()
    assert cleared["admin_email"] is None


def test_members_list_current_roles_only(service: Any, create_account: Any, app: Any) -> None:
    from datetime import timedelta

    from sqlalchemy import select

    from idp.models import AccessGrant, AppRole, Membership, utcnow

    call = service()
    siret = new_siret()
    people = [create_account(given_name="Zoé", family_name=f"Zeta{uuid.uuid4().hex[:8]}") for _ in range(3)]
    call("POST", "/structures", json={"siret": siret, "name": "Membres", "admin_email": people[0].email})
    runner = app.test_cli_runner()
    for person in people[1:]:
        result = runner.invoke(args=["member", "add", "--siret", siret, "--email", person.email,
                                     "--grant", "sam:signataire", "--grant", "repernet:lecteur"])
        assert result.exit_code == 0, result.output

    def expire(session: Any) -> None:  # one of the grants ended yesterday
        grant = session.scalar(select(AccessGrant).join(Membership).join(AppRole).where(
            Membership.user_id == people[2].id, AppRole.app == "sam"))
        grant.ends_at = utcnow() - timedelta(days=1)

    _db(app, expire)
    reader = service("members:read")
    first = reader("GET", f"/structures/{siret}/members", params={"per_page": 2}).json()
    rest = reader("GET", f"/structures/{siret}/members", params={"per_page": 2, "page": 2}).json()
    assert first["total"] == 3 and len(first["items"]) == 2 and len(rest["items"]) == 1
    by_email = {m["email"]: m for m in first["items"] + rest["items"]}
    assert by_email[people[0].email]["role"] == "admin"
    assert by_email[people[1].email] | {"sub": None} == {
        "sub": None, "email": people[1].email, "given_name": "Zoé", "family_name": people[1].family_name,
        "role": "member", "status": "active", "roles": ["repernet:lecteur", "sam:signataire"]}
    assert by_email[people[2].email]["roles"] == ["repernet:lecteur"]
    assert by_email[people[1].email]["sub"] == str(people[1].id)
    _is_problem(reader("GET", f"/structures/{siret}"), 403)  # members:read does not read structures
    _is_problem(reader("GET", f"/structures/{new_siret()}/members"), 404)


def test_every_write_is_audited_with_the_client(service: Any, create_client: Any, app: Any) -> None:
    import uuid

    from sqlalchemy import select

    from idp.models import AuditEvent

    call = service()
    siret = new_siret()
    structure_id = uuid.UUID(call("POST", "/structures", json={"siret": siret, "name": "Audité"}).json()["id"])
    call("PATCH", f"/structures/{siret}", json={"city": "Lyon"})
    events = _db(app, lambda s: [(e.event, e.client_id, e.details.get("fields")) for e in s.scalars(
        select(AuditEvent).where(AuditEvent.structure_id == structure_id).order_by(AuditEvent.id))])
    client_ids = {c for _, c, _ in events}
    assert [e for e, _, _ in events] == ["structure.created", "structure.updated"]
    assert len(client_ids) == 1 and None not in client_ids and events[1][2] == ["city"]


def test_verifying_the_link_again_does_not_undo_a_demotion(service: Any, mailbox: Any, live_server: str,
                                                            app: Any) -> None:
    from conftest import PASSWORD, forms
    from sqlalchemy import select

    from idp.models import Membership, MembershipRole, Structure

    call = service()
    siret = new_siret()
    email = unique_email("redemande")
    call("POST", "/structures", json={"siret": siret, "name": "Rétrogradation", "admin_email": email})
    browser = requests.Session()
    page = browser.get(f"{live_server}/signup", timeout=10)
    fields = {**forms(page.text)[-1]["fields"], "email": email, "password": PASSWORD, "confirm": PASSWORD,
              "civility": "m", "given_name": "Léo", "family_name": "Retro"}
    browser.post(f"{live_server}/signup", data=fields, timeout=10)
    link = live_server + mail_link(mailbox.wait_for(email, "Activez"))
    assert browser.get(link, timeout=10).status_code == 200

    def demote(session: Any) -> None:
        membership = session.scalar(select(Membership).join(Structure).where(Structure.siret == siret))
        membership.role = MembershipRole.MEMBER

    _db(app, demote)
    browser.get(link, timeout=10)
    assert call("GET", f"/structures/{siret}/members").json()["items"][0]["role"] == "member"


def test_http_errors_are_french_problems(service: Any, live_server: str) -> None:
    call = service()
    for response, status, title in [
        (call("GET", "/nowhere"), 404, "Ressource introuvable"),
        (call("DELETE", "/structures"), 405, "Méthode non permise"),
        (call("POST", "/structures", data=b"{" + b" " * (2 * 1024 * 1024) + b"}",
              headers={"Content-Type": "application/json"}), 413, "Requête trop volumineuse"),
    ]:
        problem = _is_problem(response, status)
        assert problem["title"] == title and problem["detail"] and problem["type"] == "about:blank"
    unknown = _is_problem(call("POST", "/structures", json={"siret": new_siret(), "name": "x", "foo": 1}), 422)
    assert unknown["detail"] and unknown["errors"] == [{"field": "foo", "message": "champ inconnu"}]
