"""The platform console's workflows through HTTP (SPEC §4.3 last paragraph, §4.5, §4.7, §4.1)."""

from __future__ import annotations

import base64
import csv
import io
import urllib.parse
import uuid
from typing import Any

import pytest
from conftest import csrf_token, form_fields, forms
from test_accounts_helpers import login, post_form, user_row
from test_admin_helpers import attach, grant_keys, join_request, make_structure, new_siret, row

from idp.models import AccountState


@pytest.fixture
def admin(app: Any, testclient: Any, create_account: Any) -> Any:
    """A platform admin, logged in with `testclient`."""
    account = create_account(admin=True, given_name="Alix", family_name="Admin")
    assert login(testclient, account.email).status_code == 302
    return account


def _role_ids(app: Any, *keys: str) -> list[int]:
    from idp.core.memberships import grants_by_key
    from idp.extensions import db

    with app.app_context():
        by_key = grants_by_key(db.session, keys)
    return sorted(by_key)


# ------------------------------------------------------------------ dashboard

def test_dashboard_counts(app: Any, testclient: Any, admin: Any, create_account: Any) -> None:
    page = testclient.get("/admin/")
    assert page.status_code == 200 and "Tableau de bord" in page.text
    before = int(page.text.split('data-count="structures">')[1].split("<")[0])
    blocked_before = int(page.text.split('data-count="users-blocked">')[1].split("<")[0])
    make_structure(app)
    user = create_account()
    post_form(testclient, f"/admin/users/{user.id}/block")
    page = testclient.get("/admin/").text
    assert int(page.split('data-count="structures">')[1].split("<")[0]) == before + 1
    assert int(page.split('data-count="users-blocked">')[1].split("<")[0]) == blocked_before + 1


# ------------------------------------------------------------------ structures

def test_create_structure_then_search_it(app: Any, testclient: Any, admin: Any) -> None:
    siret = new_siret()
    spaced = f"{siret[:3]} {siret[3:6]} {siret[6:9]} {siret[9:]}"
    response = post_form(testclient, "/admin/structures/new", siret=spaced, name="Lycée Ampère", kind="lycee",
                         city="Lyon", postal_code="69002", code="0690001A", admin_email="Chef@Example.test")
    assert response.status_code == 302
    page = testclient.get(response.headers["Location"])
    assert "La structure Lycée Ampère a été créée." in page.text
    assert form_fields(page.text)["admin_email"] == "chef@example.test"
    found = testclient.get("/admin/structures", query_string={"q": "ampère"}).text
    assert "Lycée Ampère" in found and siret in found
    assert siret in testclient.get("/admin/structures", query_string={"q": siret[:9]}).text
    assert "Aucune structure" in testclient.get("/admin/structures", query_string={"q": "zzzzinconnu"}).text
    # Default entitlements of a lycée were given.
    page = testclient.get(response.headers["Location"].rstrip("/") + "/entitlements").text
    assert page.count("checked") == 6


@pytest.mark.parametrize("siret, message", [
    ("12345678901234", "clé de contrôle"),
    ("1234", "14 chiffres"),
    ("", "Saisissez le SIRET"),
    ("abcdefghijklmn", "14 chiffres"),
])
def test_create_structure_bad_siret(testclient: Any, admin: Any, siret: str, message: str) -> None:
    response = post_form(testclient, "/admin/structures/new", siret=siret, name="Mauvais SIRET", kind="organisme")
    assert response.status_code == 422 and message in response.text
    assert form_fields(response.text)["name"] == "Mauvais SIRET"


def test_create_structure_duplicate_siret(app: Any, testclient: Any, admin: Any) -> None:
    existing = make_structure(app, name="Déjà là")
    response = post_form(testclient, "/admin/structures/new", siret=existing.siret, name="Doublon", kind="organisme")
    assert response.status_code == 422 and "existe déjà avec ce SIRET" in response.text


def test_edit_structure_and_stale_version(app: Any, testclient: Any, admin: Any) -> None:
    structure = make_structure(app, name="Avant")
    path = f"/admin/structures/{structure.id}"
    stale = testclient.get(path).text
    done = post_form(testclient, path, name="Après", city="Grenoble", postal_code="38000", code="X1",
                     kind="autre", searchable="")
    assert done.status_code == 302
    from idp.models import Structure

    saved = row(app, Structure, structure.id)
    assert (saved.name, saved.city, saved.postal_code, saved.code, saved.kind.value, saved.searchable) == (
        "Après", "Grenoble", "38000", "X1", "autre", False)
    assert saved.version == structure.version + 1
    conflict = testclient.post(path, data=form_fields(stale, name="Perdu ?"))
    assert conflict.status_code == 409 and "modifiée entre-temps" in conflict.text
    assert form_fields(conflict.text)["name"] == "Perdu ?"  # what was typed is kept
    assert row(app, Structure, structure.id).name == "Après"


def test_structure_siege(app: Any, testclient: Any, admin: Any) -> None:
    siege = make_structure(app, name="Siège")
    other = make_structure(app, name="Ailleurs")
    branch = make_structure(app, name="Établissement", siret=new_siret(siege.siren))
    assert branch.parent_id == siege.id  # attached at creation
    path = f"/admin/structures/{branch.id}"
    assert form_fields(testclient.get(path).text)["siege_siret"] == siege.siret
    wrong = post_form(testclient, path, siege_siret=other.siret)
    assert wrong.status_code == 422 and "même SIREN" in wrong.text
    assert post_form(testclient, path, siege_siret="123").status_code == 422
    assert post_form(testclient, path, siege_siret=branch.siret).status_code == 422
    assert post_form(testclient, path, siege_siret="").status_code == 302
    from idp.models import Structure

    assert row(app, Structure, branch.id).parent_id is None


def test_a_siege_with_etablissements_stays_a_siege(app: Any, testclient: Any, admin: Any) -> None:
    """The console edits a structure through the same rules as the API (issue 11): a siège that has
    établissements cannot be made an établissement of another siège."""
    from idp.models import Structure

    siege = make_structure(app, name="Siège principal")
    branch = make_structure(app, name="Antenne", siret=new_siret(siege.siren))
    second = make_structure(app, name="Second siège", siret=new_siret(siege.siren))
    assert branch.parent_id == second.parent_id == siege.id
    assert post_form(testclient, f"/admin/structures/{second.id}", siege_siret="").status_code == 302
    refused = post_form(testclient, f"/admin/structures/{siege.id}", siege_siret=second.siret)
    assert refused.status_code == 422 and "elle doit rester un siège" in refused.text
    assert row(app, Structure, siege.id).parent_id is None
    assert row(app, Structure, branch.id).parent_id == siege.id


def test_structure_members_are_listed_with_a_link_to_manage(app: Any, testclient: Any, admin: Any,
                                                             create_account: Any) -> None:
    structure = make_structure(app)
    member = create_account(given_name="Marie", family_name="Membre")
    attach(app, member.id, structure.id, roles=("sam:redacteur",), admin=True)
    page = testclient.get(f"/admin/structures/{structure.id}/members").text
    assert member.email in page and "sam:redacteur" in page and "administrateur" in page
    assert f'href="/gestion/{structure.id}/"' in page


def test_removing_an_entitlement_removes_the_members_grants(app: Any, testclient: Any, admin: Any,
                                                            create_account: Any) -> None:
    structure = make_structure(app)
    member = create_account()
    attach(app, member.id, structure.id, roles=("sam:redacteur", "catalogue:editeur"))
    path = f"/admin/structures/{structure.id}/entitlements"
    page = testclient.get(path).text
    keep = [r for r in _role_ids(app, "sam:signataire", "catalogue:editeur", "catalogue:lecteur",
                                 "repernet:gestionnaire", "repernet:lecteur", "sam:acheteur")]
    token = csrf_token(page)
    confirm = testclient.post(path, data={"csrf_token": token, "roles": keep})
    assert confirm.status_code == 200
    assert "sam:redacteur" in confirm.text and "sera aussi retiré" in confirm.text and member.email in confirm.text
    assert grant_keys(app, member.id, structure.id) == {"sam:redacteur", "catalogue:editeur"}  # nothing yet
    form = forms(confirm.text)[-1]
    done = testclient.post(form["action"], data={**form["fields"], "roles": keep})
    assert done.status_code == 302
    assert grant_keys(app, member.id, structure.id) == {"catalogue:editeur"}
    page = testclient.get(path).text
    assert "1 retiré(s), 1 droit(s) de membres retiré(s)" in page
    (acheteur,) = _role_ids(app, "sam:acheteur")
    assert f'value="{acheteur}" checked' in page
    # Adding only: no confirmation needed.
    assert testclient.post(path, data={"csrf_token": token, "roles": keep + _role_ids(app, "sam:redacteur")}
                           ).status_code == 302
    bad = testclient.post(path, data={"csrf_token": token, "roles": ["999999"]})
    assert bad.status_code == 422 and "Rôle inconnu" in bad.text
    assert testclient.post(path, data={"csrf_token": token, "roles": ["abc"]}).status_code in (200, 422)


# ------------------------------------------------------------------ applications and profiles

def test_edit_application_and_add_role(app: Any, testclient: Any, admin: Any) -> None:
    page = testclient.get("/admin/applications")
    assert page.status_code == 200 and "catalogue:moderateur" in page.text
    path = "/admin/applications/catalogue"
    (editeur,) = _role_ids(app, "catalogue:editeur")
    form = forms(testclient.get(path).text)[-2]
    fields = {**form["fields"], "label": "Catalogue régional", f"role_label_{editeur}": "Éditeur de l'offre"}
    assert testclient.post(form["action"], data=fields).status_code == 302
    page = testclient.get("/admin/applications").text
    assert "Catalogue régional" in page and "Éditeur de l&#39;offre" in page
    bad = testclient.post(form["action"], data={**fields, "url": "javascript:alert(1)"})
    assert bad.status_code == 422 and "http://" in bad.text

    added = post_form(testclient, path, **{"role-name": "valideur", "role-label": "Valideur des sessions"})
    assert added.status_code == 302
    assert "catalogue:valideur" in testclient.get("/admin/applications").text
    duplicate = post_form(testclient, path, **{"role-name": "valideur", "role-label": "Encore"})
    assert duplicate.status_code == 422 and "déjà un rôle de ce nom" in duplicate.text
    malformed = post_form(testclient, path, **{"role-name": "Pas bon!", "role-label": "X"})
    assert malformed.status_code == 422 and "minuscules" in malformed.text
    assert testclient.get("/admin/applications/inconnue").status_code == 404


def test_profiles_create_edit_and_duplicate(app: Any, testclient: Any, admin: Any) -> None:
    page = testclient.get("/admin/profiles", query_string={"kind": "lycee"}).text
    assert "Enseignant" in page and "Répondre aux appels d" not in page
    roles = _role_ids(app, "catalogue:lecteur", "sam:redacteur")
    new = testclient.get("/admin/profiles/new?kind=organisme")
    data = {**form_fields(new.text), "name": "Documentaliste", "kind": "organisme",
            "description": "Consulte l'offre", "roles": roles}
    assert testclient.post("/admin/profiles/new", data=data).status_code == 302
    listing = testclient.get("/admin/profiles", query_string={"kind": "organisme"}).text
    assert "Documentaliste" in listing and "sam:redacteur" in listing
    duplicate = testclient.post("/admin/profiles/new", data=data)
    assert duplicate.status_code == 422 and "existe déjà" in duplicate.text
    from sqlalchemy import select

    from idp.extensions import db
    from idp.models import Profile

    with app.app_context():
        profile_id = db.session.scalar(select(Profile.id).where(Profile.name == "Documentaliste"))
    path = f"/admin/profiles/{profile_id}"
    edit = testclient.get(path).text
    assert form_fields(edit)["name"] == "Documentaliste"
    assert testclient.post(path, data={**form_fields(edit), "roles": roles[:1]}).status_code == 302
    with app.app_context():
        assert [r.id for r in db.session.get(Profile, profile_id).roles] == roles[:1]
    assert testclient.post("/admin/profiles/new", data={**data, "name": "Autre", "roles": ["424242"]}).status_code == 422
    assert testclient.get("/admin/profiles/999999").status_code == 404


# ------------------------------------------------------------------ OIDC clients

def _token(testclient: Any, client_id: str, secret: str) -> Any:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return testclient.post("/oauth/token", data={"grant_type": "client_credentials"},
                           headers={"Authorization": f"Basic {basic}"})


def test_client_created_in_the_console_gets_tokens(app: Any, testclient: Any, admin: Any) -> None:
    page = testclient.get("/admin/clients/new").text
    data = {**form_fields(page), "name": "REPERNET service", "app": "repernet", "grant_types": ["client_credentials"],
            "scope": "structures:read members:read", "redirect_uris": "", "trusted": "y"}
    data.pop("public", None)
    created = testclient.post("/admin/clients/new", data=data)
    assert created.status_code == 200 and "ne sera plus jamais affiché" in created.text
    client_id = created.text.split('id="client-id">')[1].split("<")[0]
    secret = created.text.split('id="client-secret">')[1].split("<")[0]
    response = _token(testclient, client_id, secret)
    assert response.status_code == 200, response.text
    assert response.get_json()["scope"] == "structures:read members:read"
    listing = testclient.get("/admin/clients", query_string={"q": "repernet SERVICE"}).text
    assert client_id in listing and secret not in listing  # found by words of its name, whatever the list's length
    assert client_id not in testclient.get("/admin/clients", query_string={"q": "%"}).text  # a wildcard is a character

    from sqlalchemy import select

    from idp.extensions import db
    from idp.models import Client

    with app.app_context():
        pk = db.session.scalar(select(Client.id).where(Client.client_id == client_id))
    detail = testclient.get(f"/admin/clients/{pk}").text
    assert secret not in detail and "client_credentials" in detail
    regenerated = post_form(testclient, f"/admin/clients/{pk}/secret")
    assert regenerated.status_code == 200
    new_secret = regenerated.text.split('id="client-secret">')[1].split("<")[0]
    assert new_secret != secret
    assert _token(testclient, client_id, secret).status_code == 401
    assert _token(testclient, client_id, new_secret).status_code == 200


def test_client_with_redirect_uris_and_editing_them(app: Any, testclient: Any, admin: Any) -> None:
    page = testclient.get("/admin/clients/new").text
    base = {**form_fields(page), "name": "Appli web", "app": "sam", "grant_types": ["authorization_code", "refresh_token"],
            "scope": "openid profile email structures"}
    created = testclient.post("/admin/clients/new", data={
        **base, "redirect_uris": "https://sam.example.test/callback\r\nhttps://sam.example.test/cb2",
        "post_logout_redirect_uris": "https://sam.example.test/", "backchannel_logout_uri": "https://sam.example.test/bcl"})
    assert created.status_code == 200
    client_id = created.text.split('id="client-id">')[1].split("<")[0]
    from sqlalchemy import select

    from idp.extensions import db
    from idp.models import Client

    with app.app_context():
        client = db.session.scalar(select(Client).where(Client.client_id == client_id))
        pk = client.id
        assert client.redirect_uris == ["https://sam.example.test/callback", "https://sam.example.test/cb2"]
        assert client.backchannel_logout_uri == "https://sam.example.test/bcl" and client.app == "sam"
    path = f"/admin/clients/{pk}"
    assert post_form(testclient, path, redirect_uris="https://sam.example.test/new").status_code == 302
    with app.app_context():
        assert db.session.get(Client, pk).redirect_uris == ["https://sam.example.test/new"]
    bad = post_form(testclient, path, redirect_uris="https://sam.example.test/x#frag")
    assert bad.status_code == 422 and "sans fragment" in bad.text
    assert form_fields(bad.text)["redirect_uris"] == "" or "x#frag" in bad.text
    empty = post_form(testclient, path, redirect_uris="")
    assert empty.status_code == 422 and "au moins une adresse de retour" in empty.text


@pytest.mark.parametrize("overrides, message", [
    ({"redirect_uris": "pas une url"}, "Adresse invalide"),
    ({"grant_types": ["authorization_code"], "redirect_uris": ""}, "redirect-uri"),
    ({"scope": "openid admin:all"}, "Portée inconnue"),
    ({"public": "y", "grant_types": ["client_credentials"]}, "client public"),
    ({"app": "inexistante"}, "Application inconnue"),
    ({"grant_types": []}, "au moins un type"),
    ({"name": ""}, "Saisissez un nom"),
])
def test_client_bad_input(testclient: Any, admin: Any, overrides: dict[str, Any], message: str) -> None:
    page = testclient.get("/admin/clients/new").text
    data = {**form_fields(page), "name": "Mauvais", "grant_types": ["client_credentials"], "scope": "structures:read",
            **overrides}
    response = testclient.post("/admin/clients/new", data=data)
    assert response.status_code == 422 and message in response.text
    assert "Mauvais" in response.text or overrides.get("name") == ""


def test_unknown_ids_are_404(testclient: Any, admin: Any) -> None:
    for path in ["/admin/structures/00000000-0000-0000-0000-000000000000", "/admin/structures/pas-un-uuid",
                 "/admin/structures/00000000-0000-0000-0000-000000000000/members",
                 "/admin/structures/00000000-0000-0000-0000-000000000000/entitlements",
                 "/admin/clients/999999", "/admin/clients/999999/secret",
                 "/admin/users/00000000-0000-0000-0000-000000000000",
                 "/admin/users/00000000-0000-0000-0000-000000000000/block",
                 "/admin/moderation/999999", "/admin/profiles/abc"]:
        response = testclient.get(path)
        assert response.status_code == 404 and "Page introuvable" in response.text, path
    token = csrf_token(testclient.get("/admin/").text)
    assert testclient.post("/admin/moderation/999999/decline", data={"csrf_token": token}).status_code == 404


# ------------------------------------------------------------------ users

def test_user_search_and_state_filter(app: Any, testclient: Any, admin: Any, create_account: Any) -> None:
    person = create_account(given_name="Zéphyrine", family_name="Quintal")
    create_account(verified=False, given_name="Zéphyrine", family_name="Enattente")
    page = testclient.get("/admin/users", query_string={"q": "zéphyrine"}).text
    assert "Quintal" in page and "Enattente" in page
    page = testclient.get("/admin/users", query_string={"q": "zéphyrine", "state": "pending"}).text
    assert "Quintal" not in page and "Enattente" in page
    assert person.email in testclient.get("/admin/users", query_string={"q": person.email.upper()}).text
    assert testclient.get("/admin/users", query_string={"state": "nimporte", "page": "x"}).status_code == 200


def test_user_page_and_state_actions(app: Any, testclient: Any, admin: Any, create_account: Any) -> None:
    person = create_account(given_name="Paul", family_name="Durand")
    structure = make_structure(app, name="Structure de Paul")
    attach(app, person.id, structure.id, roles=("sam:redacteur",))
    path = f"/admin/users/{person.id}"
    page = testclient.get(path).text
    assert "Structure de Paul" in page and "sam:redacteur" in page and "jamais" in page
    confirm = testclient.get(f"{path}/block")
    assert confirm.status_code == 200 and "Bloquer le compte" in confirm.text
    assert user_row(app, person.email).state == AccountState.ACTIVE  # a GET changes nothing
    for action, state in [("block", "blocked"), ("unblock", "active"), ("deactivate", "deactivated"),
                          ("reactivate", "active")]:
        response = post_form(testclient, f"{path}/{action}")
        assert response.status_code == 302, action
        assert user_row(app, person.email).state.value == state
    # Wrong state: a French message, no 500.
    refused = post_form(testclient, f"{path}/unblock")
    assert refused.status_code == 409 and "n&#39;est pas bloqué" in refused.text
    assert testclient.get(f"{path}/nimporte").status_code == 404


def test_delete_erases_personal_data(app: Any, testclient: Any, admin: Any, create_account: Any) -> None:
    person = create_account(given_name="Effacée", family_name="Bientôt")
    structure = make_structure(app)
    attach(app, person.id, structure.id, roles=("sam:redacteur",))
    confirm = testclient.get(f"/admin/users/{person.id}/delete").text
    assert "irréversible" in confirm and "données personnelles" in confirm
    assert post_form(testclient, f"/admin/users/{person.id}/delete").status_code == 302
    from idp.models import User

    gone = row(app, User, person.id)
    assert gone.state == AccountState.DELETED and gone.given_name == "" and gone.email.endswith("@invalid")
    assert gone.password_hash is None
    assert grant_keys(app, person.id, structure.id) is None
    assert user_row(app, person.email) is None
    assert "Effacée" not in testclient.get(f"/admin/users/{person.id}").text
    assert post_form(testclient, f"/admin/users/{person.id}/deactivate").status_code == 409


def test_the_last_admin_of_a_structure_is_not_deleted(app: Any, testclient: Any, admin: Any,
                                                      create_account: Any) -> None:
    """A structure keeps one active admin (SPEC §4.3): the console refuses to delete its last one."""
    from idp.models import Membership, User

    person = create_account()
    structure = make_structure(app, name="Atelier du Rhône")
    attach(app, person.id, structure.id, roles=("sam:redacteur",), admin=True)
    refused = post_form(testclient, f"/admin/users/{person.id}/delete")
    assert refused.status_code == 403
    assert "dernier administrateur actif de : Atelier du Rhône" in refused.text.replace("&#39;", "'")
    assert row(app, User, person.id).state == AccountState.ACTIVE
    assert grant_keys(app, person.id, structure.id) == {"sam:redacteur"}
    # Another admin named first: the deletion goes through, and only the other admin remains.
    other = create_account()
    attach(app, other.id, structure.id, admin=True)
    assert post_form(testclient, f"/admin/users/{person.id}/delete").status_code == 302
    assert row(app, User, person.id).state == AccountState.DELETED
    assert grant_keys(app, person.id, structure.id) is None
    with app.app_context():
        from sqlalchemy import select

        from idp.extensions import db

        admins = db.session.scalars(select(Membership.user_id).where(Membership.structure_id == structure.id)).all()
    assert admins == [other.id]


def test_the_last_admin_may_be_blocked_or_deactivated_and_the_platform_moderates(
        app: Any, testclient: Any, admin: Any, create_account: Any) -> None:
    """Unlike deletion, blocking and deactivating are undone and keep the admin membership: the console
    does them for a last admin (a compromised account is stopped at once, SPEC §4.1), and meanwhile the
    structure's requests go to the platform's moderation (SPEC §4.2)."""
    from sqlalchemy import select

    from idp.extensions import db
    from idp.models import Membership, MembershipRole, User

    person = create_account()
    name = f"Atelier {uuid.uuid4().hex[:8]}"
    structure = make_structure(app, name=name)
    attach(app, person.id, structure.id, admin=True)
    request_id = join_request(app, create_account().id, structure.id)
    moderated = f'href="/admin/moderation/{request_id}"'
    assert moderated not in testclient.get("/admin/moderation").text
    for action, undo, state in (("block", "unblock", AccountState.BLOCKED),
                                ("deactivate", "reactivate", AccountState.DEACTIVATED)):
        assert post_form(testclient, f"/admin/users/{person.id}/{action}").status_code == 302, action
        assert row(app, User, person.id).state == state
        assert moderated in testclient.get("/admin/moderation").text, action
        assert post_form(testclient, f"/admin/users/{person.id}/{undo}").status_code == 302, undo
        assert row(app, User, person.id).state == AccountState.ACTIVE
        assert moderated not in testclient.get("/admin/moderation").text, undo
    with app.app_context():
        role = db.session.scalar(select(Membership.role).where(Membership.user_id == person.id,
                                                               Membership.structure_id == structure.id))
    assert role == MembershipRole.ADMIN


def test_platform_admin_flag(app: Any, testclient: Any, admin: Any, create_account: Any) -> None:
    person = create_account()
    assert post_form(testclient, f"/admin/users/{person.id}/make_admin").status_code == 302
    assert user_row(app, person.email).is_admin
    other = app.test_client()
    login(other, person.email)
    assert other.get("/admin/").status_code == 200
    # Nobody removes their own flag.
    refused = post_form(testclient, f"/admin/users/{admin.id}/unmake_admin")
    assert refused.status_code == 403 and "votre propre compte" in refused.text
    assert user_row(app, admin.email).is_admin
    assert post_form(other, f"/admin/users/{admin.id}/unmake_admin").status_code == 302
    assert not user_row(app, admin.email).is_admin
    assert testclient.get("/admin/").status_code == 403
    # Own account: no blocking oneself out either.
    refused = post_form(other, f"/admin/users/{person.id}/block")
    assert refused.status_code == 403


def test_last_platform_admin_keeps_the_flag(app: Any, create_account: Any) -> None:
    from sqlalchemy import update

    from idp.core.errors import NotAllowed
    from idp.core.platform import set_platform_admin
    from idp.core.security import SYSTEM
    from idp.extensions import db
    from idp.models import User

    first, second = create_account(admin=True), create_account(admin=True)
    with app.app_context():
        # Only these two are active platform admins in this scenario.
        db.session.execute(update(User).where(User.is_admin, User.id.not_in([first.id, second.id]))
                           .values(is_admin=False))
        a, b = db.session.get(User, first.id), db.session.get(User, second.id)
        set_platform_admin(db.session, b, False, a, SYSTEM)
        b.state = AccountState.ACTIVE
        with pytest.raises(NotAllowed, match="self"):
            set_platform_admin(db.session, a, False, a, SYSTEM)
        # b is no longer admin; were b to act, a would be the last one.
        with pytest.raises(NotAllowed, match="last_admin"):
            set_platform_admin(db.session, a, False, b, SYSTEM)
        db.session.rollback()


# ------------------------------------------------------------------ signing keys

def test_key_rotation_publishes_a_new_key(app: Any, testclient: Any, admin: Any) -> None:
    before = {k["kid"] for k in testclient.get("/oauth/jwks").get_json()["keys"]}
    page = testclient.get("/admin/keys")
    assert page.status_code == 200 and "Faire tourner les clés" in page.text and "signe depuis" in page.text
    done = post_form(testclient, "/admin/keys")
    assert done.status_code == 302
    page = testclient.get("/admin/keys").text
    assert "Nouvelles clés publiées" in page and "publiée depuis" in page
    after = {k["kid"] for k in testclient.get("/oauth/jwks").get_json()["keys"]}
    new = after - before
    assert len(new) == 2 and before <= after  # one per algorithm; the old ones stay published
    assert all(f'data-kid="{kid}" data-status="upcoming"' in page for kid in new)
    from sqlalchemy import select

    from idp.extensions import db
    from idp.models import AuditEvent

    with app.app_context():
        event = db.session.scalars(select(AuditEvent).where(AuditEvent.event == "keys.rotated")
                                   .order_by(AuditEvent.id.desc())).first()
        assert set(event.details["kids"]) == new and event.actor_id == admin.id


# ------------------------------------------------------------------ audit

def test_audit_log_filters_and_csv(app: Any, testclient: Any, admin: Any, create_account: Any) -> None:
    person = create_account()
    structure = make_structure(app, name="Structure auditée")
    post_form(testclient, f"/admin/users/{person.id}/block")
    page = testclient.get("/admin/audit", query_string={"email": person.email}).text
    assert "<code>account.blocked</code>" in page and admin.email in page
    page = testclient.get("/admin/audit", query_string={"siret": structure.siret}).text
    assert "<code>structure.created</code>" in page and "<code>account.blocked</code>" not in page
    page = testclient.get("/admin/audit", query_string={"event": "account.blocked", "email": person.email}).text
    assert "<code>account.blocked</code>" in page and "<code>account.created</code>" not in page
    response = testclient.get("/admin/audit.csv", query_string={"email": person.email, "event": "account."})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff")), delimiter=";"))
    assert rows[0][:4] == ["date", "evenement", "auteur", "personne"]
    events = {r[1]: r for r in rows[1:]}
    assert set(events) == {"account.blocked", "account.created"}
    assert events["account.blocked"][2] == admin.email and events["account.blocked"][3] == person.email
    assert "reason=admin" in events["account.blocked"][8]
    # Dates: today matches, tomorrow doesn't; bad input is a 400 with a French note.
    from datetime import date, timedelta

    today = date.today()
    assert "<code>account.blocked</code>" in testclient.get("/admin/audit", query_string={
        "email": person.email, "since": today.isoformat(), "until": (today + timedelta(days=1)).isoformat()}).text
    assert "<code>account.blocked</code>" not in testclient.get("/admin/audit", query_string={
        "email": person.email, "since": (today + timedelta(days=2)).isoformat()}).text
    bad = testclient.get("/admin/audit", query_string={"since": "hier"})
    assert bad.status_code == 400 and "Date invalide" in bad.text
    for far in ("9999-12-31", "0001-01-01"):  # the day after 9999-12-31 overflowed: a 500
        for key in ("since", "until"):
            bad = testclient.get("/admin/audit", query_string={key: far})
            assert bad.status_code == 400 and f"Date hors limites : {far}" in bad.text, (key, far)
            assert testclient.get("/admin/audit.csv", query_string={key: far}).status_code == 400
    unknown = testclient.get("/admin/audit.csv", query_string={"email": "personne@nulle.part"})
    assert unknown.status_code == 400 and "Aucun compte" in unknown.text


# ------------------------------------------------------------------ moderation

def test_moderation_accept_with_grants(app: Any, testclient: Any, admin: Any, create_account: Any,
                                       mailbox: Any) -> None:
    structure = make_structure(app, name="Sans administrateur")
    requester = create_account(given_name="Ruth", family_name="Demande")
    request_id = join_request(app, requester.id, structure.id, profile="Répondre aux appels d'offres")
    queue = testclient.get("/admin/moderation").text
    assert "Sans administrateur" in queue and requester.email in queue
    path = f"/admin/moderation/{request_id}"
    page = testclient.get(path).text
    redacteur, signataire = _role_ids(app, "sam:redacteur", "sam:signataire")
    (acheteur,) = _role_ids(app, "sam:acheteur")
    assert f'value="{redacteur}" checked' in page and f'value="{signataire}" checked' in page  # from the profile
    assert f'value="{acheteur}"' not in page  # not entitled: not offered
    token = csrf_token(page)
    refused = testclient.post(path, data={"csrf_token": token, "roles": [acheteur]})
    assert refused.status_code == 409 and "pas ouvert à cette structure" in refused.text
    done = testclient.post(path, data={"csrf_token": token, "roles": [redacteur]})
    assert done.status_code == 302
    assert grant_keys(app, requester.id, structure.id) == {"sam:redacteur"}
    assert f'href="/admin/moderation/{request_id}"' not in testclient.get("/admin/moderation").text
    mail = mailbox.wait_for(requester.email, "acceptée")
    assert "Sans administrateur" in mail.get_body(preferencelist=("plain",)).get_content()
    assert testclient.get(path).status_code == 404  # no longer in the queue


def test_moderation_decline(app: Any, testclient: Any, admin: Any, create_account: Any, mailbox: Any) -> None:
    structure = make_structure(app, name="Structure orpheline")
    requester = create_account()
    request_id = join_request(app, requester.id, structure.id)
    page = testclient.get(f"/admin/moderation/{request_id}").text
    decline = next(f for f in forms(page) if f["action"].endswith("/decline"))
    done = testclient.post(decline["action"], data={**decline["fields"], "reason": "Structure inconnue de nos services"})
    assert done.status_code == 302
    assert grant_keys(app, requester.id, structure.id) is None
    mail = mailbox.wait_for(requester.email, "refusée")
    assert "Structure inconnue de nos services" in mail.get_body(preferencelist=("plain",)).get_content()
    from idp.models import JoinRequest

    assert row(app, JoinRequest, request_id).status.value == "declined"


def test_structures_with_an_admin_are_not_moderated(app: Any, testclient: Any, admin: Any,
                                                    create_account: Any) -> None:
    structure = make_structure(app, name="Structure administrée")
    boss = create_account()
    attach(app, boss.id, structure.id, admin=True)
    requester = create_account()
    request_id = join_request(app, requester.id, structure.id)
    assert "Structure administrée" not in testclient.get("/admin/moderation").text
    assert testclient.get(f"/admin/moderation/{request_id}").status_code == 404


def test_user_list_is_paginated_and_keeps_the_search(testclient: Any, admin: Any, create_account: Any) -> None:
    name = "Paginés" + uuid.uuid4().hex[:6]  # no other test's accounts match
    for _ in range(27):
        create_account(given_name="Page", family_name=name)
    first = testclient.get("/admin/users", query_string={"q": name.lower(), "page": "1"}).text
    assert "Page 1 sur 2" in first and first.count(name) >= 25
    link = first.split('rel="next" href="')[1].split('"')[0].replace("&amp;", "&")
    assert f"q={name.lower()}" in urllib.parse.unquote(link) and "page=2" in link
    second = testclient.get(link).text
    assert "Page 2 sur 2" in second and 'rel="prev"' in second


def test_entitlement_removal_ends_the_applications_sessions(app: Any, testclient: Any, admin: Any,
                                                            create_account: Any, create_client: Any) -> None:
    """Losing a role through the structure's entitlements revokes that application's refresh tokens (SPEC §5.3)."""
    from datetime import timedelta

    from idp.extensions import db
    from idp.models import RefreshToken, utcnow

    structure = make_structure(app)
    member = create_account()
    attach(app, member.id, structure.id, roles=("sam:redacteur", "catalogue:editeur"))
    sam_client, _ = create_client(app="sam")
    catalogue_client, _ = create_client(app="catalogue")
    with app.app_context():
        now = utcnow()
        tokens = [RefreshToken(token_digest=f"digest-{client_id}", family_id=client_id[:32], client_id=client_id,
                               user_id=member.id, scope="openid", auth_time=now, amr="pwd",
                               expires_at=now + timedelta(days=1)) for client_id in (sam_client, catalogue_client)]
        db.session.add_all(tokens)
        db.session.commit()
        ids = [t.id for t in tokens]
    path = f"/admin/structures/{structure.id}/entitlements"
    token = csrf_token(testclient.get(path).text)
    keep = _role_ids(app, "sam:signataire", "catalogue:editeur", "catalogue:lecteur")
    assert testclient.post(path, data={"csrf_token": token, "roles": keep, "confirmed": "1"}).status_code == 302
    assert grant_keys(app, member.id, structure.id) == {"catalogue:editeur"}
    sam_token, catalogue_token = (row(app, RefreshToken, i) for i in ids)
    assert sam_token.revoked_at is not None and catalogue_token.revoked_at is None


def test_admin_email_of_an_existing_account_makes_them_admin(app: Any, testclient: Any, admin: Any,
                                                             create_account: Any) -> None:
    """SPEC §4.2: the named account admin becomes admin without approval, at creation or later."""
    boss = create_account()
    siret = new_siret()
    assert post_form(testclient, "/admin/structures/new", siret=siret, name="Avec admin désigné", kind="organisme",
                     admin_email=boss.email.upper()).status_code == 302
    from idp.core.structures import find_by_siret
    from idp.extensions import db

    with app.app_context():
        structure_id = find_by_siret(db.session, siret).id
    assert "sam:signataire" in (grant_keys(app, boss.id, structure_id) or set())
    later = create_account()
    assert post_form(testclient, f"/admin/structures/{structure_id}", admin_email=later.email).status_code == 302
    assert grant_keys(app, later.id, structure_id) is not None
    members = testclient.get(f"/admin/structures/{structure_id}/members").text
    assert members.count("administrateur") >= 2
