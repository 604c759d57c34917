"""Who reaches 'Gérer ma structure': only the active admins of that structure and the platform
admins; an admin of A never sees, changes or guesses anything of B (SPEC §4.3)."""

from __future__ import annotations

import html
import uuid
from typing import Any

import pytest
from conftest import csrf_token, without_csrf
from manage_helpers import (
    World,
    account_factory,
    ask_to_join,
    build_world,
    grants,
    logged,
    membership,
    post_page_form,
    role_id,
    submit,
)

GETS = ["/", "/demandes", "/demandes/{rid}", "/membres", "/membres/{mid}", "/membres/{mid}/detacher",
        "/membres/{mid}/debloquer", "/rattacher", "/invitations", "/journal", "/journal.csv"]
POSTS = ["/demandes/{rid}", "/demandes/{rid}/refuser", "/membres/{mid}", "/membres/{mid}/administrateur",
         "/membres/{mid}/suspension", "/membres/{mid}/detacher", "/membres/{mid}/debloquer", "/rattacher",
         "/invitations/{mid}"]


def txt(response: Any) -> str:
    return html.unescape(response.get_data(as_text=True))


@pytest.fixture(scope="module")
def world(app: Any) -> World:
    return build_world(app, account_factory(app))


@pytest.fixture(scope="module")
def rid_a(app: Any, world: World) -> int:
    return ask_to_join(app, account_factory(app)().id, world.a)


@pytest.fixture(scope="module")
def rid_b(app: Any, world: World) -> int:
    return ask_to_join(app, account_factory(app)().id, world.b)


def urls(world: World, rid: int, paths: list[str]) -> list[str]:
    return [f"/gestion/{world.a}" + p.format(rid=rid, mid=world.m_member_a) for p in paths]


def token_of(client: Any) -> str:
    """A valid CSRF token of this client's session (the header's logout form has one)."""
    page = client.get("/structures/")
    return csrf_token(page.text)


def test_anonymous_goes_to_the_login_page(app: Any, world: World, rid_a: int) -> None:
    client = app.test_client()
    token = csrf_token(client.get("/login").text)
    for url in urls(world, rid_a, GETS):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"], url
    for url in urls(world, rid_a, POSTS):
        response = client.post(url, data={"csrf_token": token})
        assert response.status_code == 302 and "/login" in response.headers["Location"], url


@pytest.mark.parametrize("who", ["member_a", "suspended_admin_a", "admin_b", "member_b"])
def test_others_get_404_on_every_url(app: Any, world: World, rid_a: int, who: str) -> None:
    """Exactly the answer of a missing structure: a structure id cannot be probed (issue 15 finding 12)."""
    client = logged(app, getattr(world, who).email)
    token = token_of(client)
    missing = client.get(f"/gestion/{uuid.uuid4()}/")
    for url in urls(world, rid_a, GETS):
        response = client.get(url)
        assert response.status_code == 404, url
        assert without_csrf(response.get_data(as_text=True)) == without_csrf(missing.get_data(as_text=True)), url
    for url in urls(world, rid_a, POSTS):
        assert client.post(url, data={"csrf_token": token, "version": "1", "value": "1",
                                      "email": "x@example.test"}).status_code == 404, url
    assert grants(app, world.m_member_a) == {"sam:redacteur", "catalogue:editeur"}
    assert membership(app, world.m_member_a).role.value == "member"


def test_unknown_structure_is_404(app: Any, world: World) -> None:
    client = logged(app, world.admin_a.email)
    assert client.get(f"/gestion/{uuid.uuid4()}/").status_code == 404
    assert client.get(f"/gestion/{uuid.uuid4()}/membres").status_code == 404
    assert client.get("/gestion/pas-un-uuid/").status_code == 404


def test_b_ids_under_a_urls_are_404(app: Any, world: World, rid_b: int) -> None:
    client = logged(app, world.admin_a.email)
    token = token_of(client)
    a = f"/gestion/{world.a}"
    for path in (f"/membres/{world.m_member_b}", f"/membres/{world.m_admin_b}/detacher",
                 f"/membres/{world.m_member_b}/debloquer", f"/demandes/{rid_b}"):
        assert client.get(a + path).status_code == 404, path
    for path in (f"/membres/{world.m_member_b}", f"/membres/{world.m_member_b}/administrateur",
                 f"/membres/{world.m_member_b}/suspension", f"/membres/{world.m_member_b}/detacher",
                 f"/membres/{world.m_member_b}/debloquer", f"/invitations/{world.m_member_b}",
                 f"/demandes/{rid_b}", f"/demandes/{rid_b}/refuser"):
        response = client.post(a + path, data={"csrf_token": token, "version": "1", "value": "1",
                                               "roles": [str(role_id(app, "sam:redacteur"))]})
        assert response.status_code == 404, path
    assert membership(app, world.m_member_b) is not None
    assert membership(app, world.m_member_b).status.value == "active"
    assert grants(app, world.m_member_b) == {"sam:acheteur"}
    # B's pages themselves: 404, as for a structure that does not exist (issue 15 finding 12).
    assert client.get(f"/gestion/{world.b}/membres/{world.m_member_b}").status_code == 404


def test_a_b_only_role_in_a_form_is_refused(app: Any, world: World, create_account: Any) -> None:
    acheteur = str(role_id(app, "sam:acheteur"))  # a region-only role: B holds it, A is not entitled
    client = logged(app, world.admin_a2.email)  # holds every role A is entitled to
    url = f"/gestion/{world.a}/membres/{world.m_member_a}"
    page = client.get(url)
    assert "sam:acheteur" not in txt(page)
    response = post_page_form(client, page.text, form_id="grants",
                              data={"roles": [str(role_id(app, "sam:redacteur")), str(role_id(app, "catalogue:editeur")),
                                              acheteur]})
    assert response.status_code == 403 and "La structure n'a pas accès à ce rôle" in txt(response)
    unknown = post_page_form(client, page.text, form_id="grants", data={"roles": ["999999"]})
    assert unknown.status_code == 403
    assert grants(app, world.m_member_a) == {"sam:redacteur", "catalogue:editeur"}
    person = create_account()
    attach = submit(client, f"/gestion/{world.a}/rattacher", data={"email": person.email, "roles": [acheteur]})
    assert attach.status_code == 403 and "La structure n'a pas accès à ce rôle" in txt(attach)
    rid = ask_to_join(app, create_account().id, world.a)
    accept = submit(client, f"/gestion/{world.a}/demandes/{rid}", action=f"/demandes/{rid}", data={"roles": [acheteur]})
    assert accept.status_code == 403 and "La structure n'a pas accès à ce rôle" in txt(accept)


def test_journal_of_a_shows_nothing_of_b(app: Any, world: World) -> None:
    admin_b = logged(app, world.admin_b.email)
    submit(admin_b, f"/gestion/{world.b}/membres/{world.m_member_b}", form_id="suspension")
    submit(admin_b, f"/gestion/{world.b}/membres/{world.m_member_b}", form_id="suspension")
    client = logged(app, world.admin_a.email)
    page = client.get(f"/gestion/{world.a}/journal?email={world.member_b.email}")
    assert page.status_code == 200 and "Aucun événement" in txt(page)
    everything = client.get(f"/gestion/{world.a}/journal.csv")
    assert world.member_b.email not in everything.text and "membership.suspended" not in everything.text
    structure_filter = client.get(f"/gestion/{world.a}/journal?structure_id={world.b}")
    assert world.member_b.email not in txt(structure_filter)
    # A query-string structure id never overrides the path (and never breaks the page).
    assert client.get(f"/gestion/{world.a}/journal.csv?structure_id={world.b}").status_code == 200


def test_platform_admin_manages_any_structure(app: Any, world: World) -> None:
    client = logged(app, world.platform.email)
    assert client.get(f"/gestion/{world.b}/").status_code == 200
    page = client.get(f"/gestion/{world.a}/membres/{world.m_member_a}")
    assert page.status_code == 200 and "Vous ne détenez pas ce rôle" not in txt(page)


def test_a_demoted_admin_loses_access_at_once(app: Any, create_account: Any) -> None:
    other = build_world(app, create_account)
    client = logged(app, other.admin_a.email)
    assert client.get(f"/gestion/{other.a}/membres").status_code == 200
    boss = logged(app, other.admin_a2.email)
    assert submit(boss, f"/gestion/{other.a}/membres/{other.m_admin_a}", form_id="admin").status_code == 302
    assert client.get(f"/gestion/{other.a}/membres").status_code == 404
    token = token_of(client)
    assert client.post(f"/gestion/{other.a}/membres/{other.m_member_a}/suspension",
                       data={"csrf_token": token, "version": "1", "value": "1"}).status_code == 404


def test_csrf_is_required(app: Any, world: World) -> None:
    client = logged(app, world.admin_a2.email)
    response = client.post(f"/gestion/{world.a}/membres/{world.m_member_a}/suspension", data={"version": "1",
                                                                                              "value": "1"})
    assert response.status_code in (400, 422)
    assert membership(app, world.m_member_a).status.value == "active"
