"""'Gérer ma structure' workflows through HTTP, with real mails (SPEC §4.3, §4.4; seeds 000 §5, 002)."""

from __future__ import annotations

import html
from datetime import date, timedelta
from typing import Any

import pytest
from conftest import PASSWORD, mail_link, mail_text, unique_email
from manage_helpers import (
    World,
    add,
    ask_to_join,
    build_world,
    grants,
    logged,
    membership,
    post_page_form,
    role_id,
    submit,
)
from test_accounts_helpers import login, post_form, user_row


def txt(response: Any) -> str:
    """The page as a reader sees it (entities such as &#39; decoded)."""
    return html.unescape(response.get_data(as_text=True))


@pytest.fixture
def world(app: Any, create_account: Any) -> World:
    return build_world(app, create_account)


def base(w: World) -> str:
    return f"/gestion/{w.a}"


# ------------------------------------------------------------------ dashboard and join requests

def test_dashboard_lists_pending_requests_with_links(app: Any, world: World, create_account: Any) -> None:
    requester = create_account(given_name="Dora", family_name="Demande")
    rid = ask_to_join(app, requester.id, world.a, profile="Répondre aux appels d'offres")
    page = logged(app, world.admin_a.email).get(f"{base(world)}/")
    assert page.status_code == 200
    assert "Dora Demande" in txt(page)
    assert f"{base(world)}/demandes/{rid}" in txt(page)
    for link in ("/membres", "/rattacher", "/journal"):
        assert f"{base(world)}{link}" in txt(page)


def test_accept_request_with_grants_prefilled_from_profile(app: Any, world: World, create_account: Any,
                                                           mailbox: Any) -> None:
    requester = create_account(given_name="Rémi", family_name="Requérant")
    rid = ask_to_join(app, requester.id, world.a, profile="Répondre aux appels d'offres", message="Bonjour !")
    client = logged(app, world.admin_a.email)
    page = client.get(f"{base(world)}/demandes/{rid}")
    assert page.status_code == 200
    assert "Bonjour !" in txt(page) and requester.email in txt(page) and "Répondre aux appels d'offres" in txt(page)
    # The profile's roles are ticked; a role the admin does not hold is shown with the reason.
    assert f'value="{role_id(app, "sam:redacteur")}" checked' in txt(page)
    assert f'value="{role_id(app, "sam:signataire")}" checked' in txt(page)
    assert "Vous ne détenez pas ce rôle" in txt(page)
    response = post_page_form(client, page.text, action=f"/demandes/{rid}")
    assert response.status_code == 302
    with app.app_context():
        from idp.core.memberships import membership_of
        from idp.extensions import db

        joined = membership_of(db.session, requester.id, world.a)
        assert joined is not None and {g.role.key for g in joined.grants} == {"sam:redacteur", "sam:signataire"}
    mail = mailbox.wait_for(requester.email, "acceptée")
    assert "Organisme Alpha" in mail_text(mail)
    # Decided: a second attempt is refused clearly, and the page says who decided and when.
    again = post_page_form(client, page.text, action=f"/demandes/{rid}")
    assert again.status_code == 409
    assert "plus en attente" in txt(again)
    shown = client.get(f"{base(world)}/demandes/{rid}")
    assert "déjà été traitée" in txt(shown) and world.admin_a.email in txt(shown)


def test_decline_request_with_reason_mails_the_requester(app: Any, world: World, create_account: Any,
                                                         mailbox: Any) -> None:
    requester = create_account()
    rid = ask_to_join(app, requester.id, world.a)
    client = logged(app, world.admin_a2.email)
    response = submit(client, f"{base(world)}/demandes/{rid}", action="/refuser",
                      data={"reason": "Vous ne travaillez pas chez nous."})
    assert response.status_code == 302
    mail = mailbox.wait_for(requester.email, "refusée")
    assert "Vous ne travaillez pas chez nous." in mail_text(mail)
    # The other admin tries too, from the page they had open.
    other = logged(app, world.admin_a.email)
    stale = other.get(f"{base(world)}/membres")  # any page: we post the decline form directly
    assert stale.status_code == 200
    from conftest import csrf_token

    twice = other.post(f"{base(world)}/demandes/{rid}/refuser", data={"csrf_token": csrf_token(stale.text)})
    assert twice.status_code == 409 and "plus en attente" in txt(twice)
    assert "refusée" in txt(twice) and world.admin_a2.email in txt(twice)


def test_decline_reason_too_long_keeps_the_text(app: Any, world: World, create_account: Any) -> None:
    requester = create_account()
    rid = ask_to_join(app, requester.id, world.a)
    client = logged(app, world.admin_a.email)
    response = submit(client, f"{base(world)}/demandes/{rid}", action="/refuser", data={"reason": "x" * 600})
    assert response.status_code == 422
    assert "x" * 600 in txt(response)


def test_email_link_opens_the_request_page(app: Any, world: World, create_account: Any) -> None:
    from idp import web

    requester = create_account()
    rid = ask_to_join(app, requester.id, world.a)
    with app.test_request_context():
        token = web.sign("join-request", {"rid": rid})
    client = logged(app, world.admin_a.email)
    response = client.get(f"/gestion/demande/{token}")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"{base(world)}/demandes/{rid}")
    assert client.get(f"/gestion/demande/{token}x").status_code in (400, 404)
    # The admin of B following A's link lands on a 404 (as for a missing structure), not on the request.
    other = logged(app, world.admin_b.email)
    followed = other.get(f"/gestion/demande/{token}", follow_redirects=True)
    assert followed.status_code == 404


# ------------------------------------------------------------------ members

def test_members_search_sort_and_pages(app: Any, world: World, create_account: Any) -> None:
    for i in range(30):
        person = create_account(email=unique_email(f"zz-membre{i:02d}"), given_name="Zoé", family_name=f"Nombreux{i:02d}")
        add(app, world.a, person.id, ("sam:redacteur",))
    client = logged(app, world.admin_a.email)
    page = client.get(f"{base(world)}/membres?q=nombreux&sort=name")
    assert page.status_code == 200
    assert "30 membres" in txt(page) and "Nombreux00" in txt(page) and "Nombreux29" not in txt(page)
    assert "sam:redacteur" in txt(page)
    second = client.get(f"{base(world)}/membres?q=nombreux&sort=name&page=2")
    assert "Nombreux29" in txt(second) and "Nombreux00" not in txt(second)
    by_email = client.get(f"{base(world)}/membres?sort=email")
    assert by_email.status_code == 200
    by_role = client.get(f"{base(world)}/membres?sort=role")
    assert by_role.text.index(world.admin_a.email) < by_role.text.index("zz-membre")
    assert client.get(f"{base(world)}/membres?sort=last_login").status_code == 200
    # Odd input: never a 500.
    for query in ("?page=abc", "?page=-4", "?sort=drop", "?q=%25%25_", "?page=99999"):
        assert client.get(f"{base(world)}/membres{query}").status_code == 200, query


def test_members_sorted_by_email_not_by_name(app: Any, world: World, create_account: Any) -> None:
    word = unique_email("w").split("@")[0]
    for name, local in (("Aubépine", "c"), ("Bruyère", "a"), ("Cerisier", "b")):
        add(app, world.a, create_account(email=f"{local}-{word}@tri.test", given_name="Xavier", family_name=name).id)
    page = txt(logged(app, world.admin_a.email).get(f"{base(world)}/membres?q={word}&sort=email"))
    assert page.index("Bruyère") < page.index("Cerisier") < page.index("Aubépine")


def test_a_member_renamed_in_my_account_is_found_by_the_new_name(app: Any, world: World,
                                                               create_account: Any) -> None:
    person = create_account(given_name="Ondine", family_name="Avant")
    add(app, world.a, person.id)
    done = post_form(logged(app, person.email), "/account/profile", civility="mme", given_name="Ondine",
                     family_name="Aprèsmariage")
    assert done.status_code == 302
    admin = logged(app, world.admin_a.email)
    assert "Aprèsmariage" in txt(admin.get(f"{base(world)}/membres?q=aprèsmariage"))
    assert "Ondine" not in txt(admin.get(f"{base(world)}/membres?q=ondine avant"))


def test_members_sorted_by_last_login_follow_logins(app: Any, world: World, create_account: Any) -> None:
    """The last-login order reads the memberships' copy of the date: a login moves the member up."""
    people = [create_account(email=unique_email(f"yy-{name}"), given_name="Yannick", family_name=name)
              for name in ("Jamais", "Hier", "Maintenant")]
    for person in people:
        add(app, world.a, person.id)
    logged(app, people[1].email)
    logged(app, people[2].email)
    page = txt(logged(app, world.admin_a.email).get(f"{base(world)}/membres?q=yannick&sort=last_login"))
    assert page.index("Maintenant") < page.index("Hier") < page.index("Jamais")
    by_name = txt(logged(app, world.admin_a.email).get(f"{base(world)}/membres?q=yannick&sort=name"))
    assert by_name.index("Hier") < by_name.index("Jamais") < by_name.index("Maintenant")


def test_members_page_uses_a_bounded_number_of_queries(app: Any, world: World, create_account: Any) -> None:
    from sqlalchemy import event

    from idp.extensions import db

    for _ in range(12):
        add(app, world.a, create_account().id, ("sam:redacteur", "sam:signataire"))
    client = logged(app, world.admin_a.email)
    client.get(f"{base(world)}/membres")  # warm-up (session refresh etc.)
    with app.app_context():
        engine = db.engine
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        small = client.get(f"{base(world)}/membres")
        n_small = len(statements)
        statements.clear()
        for _ in range(20):
            add(app, world.a, create_account().id, ("catalogue:lecteur",))
        statements.clear()
        large = client.get(f"{base(world)}/membres")
        n_large = len(statements)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert small.status_code == large.status_code == 200
    assert n_large == n_small, (n_small, n_large)
    assert n_large <= 12, statements


# ------------------------------------------------------------------ one member: grants

def member_url(w: World, membership_id: int) -> str:
    return f"{base(w)}/membres/{membership_id}"


def test_member_grants_edit_within_held_roles(app: Any, world: World) -> None:
    client = logged(app, world.admin_a.email)
    url = member_url(world, world.m_member_a)
    page = client.get(url)
    assert page.status_code == 200
    # Every entitled role is shown; catalogue roles say why they cannot be changed.
    for key in ("sam:redacteur", "sam:signataire", "repernet:lecteur", "catalogue:editeur", "catalogue:lecteur"):
        assert key in txt(page)
    assert "Vous ne détenez pas ce rôle" in txt(page)
    html = page.text.replace(f'value="{role_id(app, "sam:signataire")}"',
                             f'value="{role_id(app, "sam:signataire")}" checked')
    until = (date.today() + timedelta(days=30)).isoformat()
    response = post_page_form(client, html, form_id="grants",
                              data={f"ends_{role_id(app, 'sam:signataire')}": until})
    assert response.status_code == 302, response.text
    # The catalogue role they do not hold is kept untouched.
    assert grants(app, world.m_member_a) == {"sam:redacteur", "sam:signataire", "catalogue:editeur"}
    shown = client.get(url)
    assert until in txt(shown)
    journal = client.get(f"{base(world)}/journal?event=grants.")
    assert "grants.changed" in txt(journal)


def test_granting_a_role_not_held_is_refused_with_the_reason(app: Any, world: World) -> None:
    client = logged(app, world.admin_a.email)
    url = member_url(world, world.m_member_a)
    page = client.get(url)
    # A forged form: the disabled catalogue:lecteur box ticked anyway.
    response = post_page_form(client, page.text, form_id="grants",
                              data={"roles": [str(role_id(app, "sam:redacteur")), str(role_id(app, "catalogue:editeur")),
                                              str(role_id(app, "catalogue:lecteur"))]})
    assert response.status_code == 403
    assert "Vous ne détenez pas ce rôle" in txt(response) and "Lecteur : accès en visualisation" in txt(response)
    # Removing catalogue:editeur (not held) by leaving it out is refused too.
    removal = post_page_form(client, page.text, form_id="grants", data={"roles": [str(role_id(app, "sam:redacteur"))]})
    assert removal.status_code == 403
    assert grants(app, world.m_member_a) == {"sam:redacteur", "catalogue:editeur"}


def test_grant_end_date_checks(app: Any, world: World) -> None:
    client = logged(app, world.admin_a.email)
    url = member_url(world, world.m_member_a)
    page = client.get(url)
    rid = role_id(app, "sam:redacteur")
    bad = post_page_form(client, page.text, form_id="grants", data={f"ends_{rid}": "31/12/2030"})
    assert bad.status_code == 422 and "Date de fin invalide" in txt(bad) and "31/12/2030" in txt(bad)
    for far in ("9999-12-31", "0001-01-01"):  # the day after 9999-12-31 overflowed: a 500
        bad = post_page_form(client, page.text, form_id="grants", data={f"ends_{rid}": far})
        assert bad.status_code == 422 and f"Date hors limites : {far}" in txt(bad), far
    past = post_page_form(client, page.text, form_id="grants",
                          data={f"ends_{rid}": (date.today() - timedelta(days=3)).isoformat()})
    assert past.status_code == 422 and "postérieure" in txt(past)
    junk = post_page_form(client, page.text, form_id="grants", data={"roles": ["abc"]})
    assert junk.status_code == 422


def test_two_admins_saving_at_once_one_gets_409_with_input_kept(app: Any, world: World) -> None:
    first, second = logged(app, world.admin_a.email), logged(app, world.admin_a2.email)
    url = member_url(world, world.m_member_a)
    page_1, page_2 = first.get(url), second.get(url)
    signataire, lecteur = role_id(app, "sam:signataire"), role_id(app, "repernet:lecteur")
    won = post_page_form(first, page_1.text, form_id="grants",
                         data={"roles": [str(role_id(app, "sam:redacteur")), str(signataire),
                                         str(role_id(app, "catalogue:editeur"))]})
    assert won.status_code == 302
    lost = post_page_form(second, page_2.text, form_id="grants",
                          data={"roles": [str(role_id(app, "sam:redacteur")), str(lecteur),
                                          str(role_id(app, "catalogue:editeur"))]})
    assert lost.status_code == 409
    assert "Un autre administrateur a modifié ce membre" in txt(lost)
    # Their input is kept (repernet:lecteur ticked), the saved state is shown.
    assert f'value="{lecteur}" checked' in txt(lost)
    assert grants(app, world.m_member_a) == {"sam:redacteur", "sam:signataire", "catalogue:editeur"}
    # Saving again from the 409 page is a deliberate choice and works.
    again = post_page_form(second, lost.text, form_id="grants")
    assert again.status_code == 302
    assert grants(app, world.m_member_a) == {"sam:redacteur", "repernet:lecteur", "catalogue:editeur"}


# ------------------------------------------------------------------ admin, suspension, detach, unblock

def test_promote_demote_and_last_admin(app: Any, world: World) -> None:
    client = logged(app, world.admin_a.email)
    url = member_url(world, world.m_member_a)
    assert submit(client, url, form_id="admin").status_code == 302
    assert membership(app, world.m_member_a).role.value == "admin"
    assert "est désormais administrateur" in txt(client.get(url))
    assert submit(client, url, form_id="admin").status_code == 302
    assert membership(app, world.m_member_a).role.value == "member"
    # The second admin steps down; then admin_a cannot demote themselves: the last active admin.
    other = logged(app, world.admin_a2.email)
    stepped_down = submit(other, member_url(world, world.m_admin_a2), form_id="admin")
    assert stepped_down.status_code == 302 and "/gestion/" not in stepped_down.headers["Location"]
    last = submit(client, member_url(world, world.m_admin_a), form_id="admin")
    assert last.status_code == 409 and "au moins un administrateur actif" in txt(last)
    assert membership(app, world.m_admin_a).role.value == "admin"
    # Nor suspend or detach themselves.
    assert submit(client, member_url(world, world.m_admin_a), form_id="suspension").status_code == 409
    assert submit(client, member_url(world, world.m_admin_a) + "/detacher").status_code == 409


def test_stale_admin_button_gets_409(app: Any, world: World) -> None:
    client, other = logged(app, world.admin_a.email), logged(app, world.admin_a2.email)
    url = member_url(world, world.m_member_a)
    stale = client.get(url)
    assert submit(other, url, form_id="suspension").status_code == 302
    response = post_page_form(client, stale.text, form_id="admin")
    assert response.status_code == 409 and "Un autre administrateur" in txt(response)
    assert membership(app, world.m_member_a).role.value == "member"


def test_suspend_and_reactivate(app: Any, world: World) -> None:
    client = logged(app, world.admin_a.email)
    url = member_url(world, world.m_member_a)
    response = submit(client, url, form_id="suspension")
    assert response.status_code == 302
    assert membership(app, world.m_member_a).status.value == "suspended"
    assert "est suspendu" in txt(client.get(url))
    assert submit(client, url, form_id="suspension").status_code == 302
    assert membership(app, world.m_member_a).status.value == "active"


def test_detach_after_confirmation(app: Any, world: World) -> None:
    client = logged(app, world.admin_a.email)
    confirm = client.get(member_url(world, world.m_member_a) + "/detacher")
    assert confirm.status_code == 200 and "Êtes-vous sûr" in txt(confirm)
    assert membership(app, world.m_member_a) is not None
    response = post_page_form(client, confirm.text)
    assert response.status_code == 302
    assert membership(app, world.m_member_a) is None
    assert "est détaché" in txt(client.get(f"{base(world)}/membres"))
    assert client.get(member_url(world, world.m_member_a)).status_code == 404


def test_unblock_a_blocked_member_and_mail_a_reset_link(app: Any, world: World, testclient: Any,
                                                        mailbox: Any) -> None:
    for _ in range(12):
        login(testclient, world.member_a.email, "Wrong-password-123!")
        if user_row(app, world.member_a.email).state.value == "blocked":
            break
    assert user_row(app, world.member_a.email).state.value == "blocked"
    client = logged(app, world.admin_a.email)
    url = member_url(world, world.m_member_a)
    assert "Débloquer le compte" in txt(client.get(url))
    confirm = client.get(url + "/debloquer")
    assert confirm.status_code == 200 and "Êtes-vous sûr" in txt(confirm)
    assert post_page_form(client, confirm.text).status_code == 302
    assert user_row(app, world.member_a.email).state.value == "active"
    mail = mailbox.wait_for(world.member_a.email, "débloqué")
    link = mail_link(mail, "/password/reset/")
    page = testclient.get(link)
    assert page.status_code == 200
    # Not blocked any more: a second unblock says so.
    again = post_page_form(client, confirm.text)
    assert again.status_code == 302
    assert "n'est pas bloqué" in txt(client.get(url))


def test_an_account_blocked_by_the_platform_stays_blocked(app: Any, world: World) -> None:
    from idp.core.accounts import block
    from idp.core.security import SYSTEM
    from idp.extensions import db
    from idp.models import User

    with app.app_context():
        block(db.session, db.session.get(User, world.member_a.id), None, SYSTEM)
        db.session.commit()
    client = logged(app, world.admin_a.email)
    confirm = client.get(member_url(world, world.m_member_a) + "/debloquer")
    response = post_page_form(client, confirm.text)
    assert response.status_code == 403 and "administration de la plateforme" in txt(response)
    assert user_row(app, world.member_a.email).state.value == "blocked"


# ------------------------------------------------------------------ attach and invitations

def test_attach_an_existing_account(app: Any, world: World, create_account: Any, mailbox: Any) -> None:
    person = create_account()
    client = logged(app, world.admin_a.email)
    page = client.get(f"{base(world)}/rattacher")
    html = page.text.replace(f'value="{role_id(app, "sam:redacteur")}"', f'value="{role_id(app, "sam:redacteur")}" checked')
    response = post_page_form(client, html, data={"email": person.email.upper()})
    assert response.status_code == 302
    mid = int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    assert grants(app, mid) == {"sam:redacteur"}
    assert "Organisme Alpha" in mail_text(mailbox.wait_for(person.email, "rattaché"))
    twice = post_page_form(client, html, data={"email": person.email})
    assert twice.status_code == 409 and "déjà rattachée" in txt(twice)


def test_attach_refuses_a_role_not_held(app: Any, world: World, create_account: Any) -> None:
    person = create_account()
    client = logged(app, world.admin_a.email)
    response = submit(client, f"{base(world)}/rattacher",
                      data={"email": person.email, "roles": [str(role_id(app, "catalogue:editeur"))]})
    assert response.status_code == 403 and "Vous ne détenez pas ce rôle" in txt(response)
    assert person.email in txt(response)  # the input is kept


def test_invite_a_new_person_who_sets_a_password(app: Any, world: World, mailbox: Any) -> None:
    email = unique_email("invite")
    client = logged(app, world.admin_a.email)
    no_name = submit(client, f"{base(world)}/rattacher", data={"email": email})
    assert no_name.status_code == 422 and "saisissez le prénom et le nom" in txt(no_name)
    response = submit(client, f"{base(world)}/rattacher",
                      data={"email": email, "given_name": "Inès", "family_name": "Invitée",
                            "roles": [str(role_id(app, "sam:redacteur"))]})
    assert response.status_code == 302
    assert user_row(app, email).state.value == "pending" and user_row(app, email).managed
    mail = mailbox.wait_for(email, "choisissez votre mot de passe")
    link = mail_link(mail, "/gestion/invitation/")
    assert "7 jours" in mail_text(mail)
    invited = app.test_client()
    page = invited.get(link)
    assert page.status_code == 200 and "Organisme Alpha" in txt(page)
    weak = post_page_form(invited, page.text, data={"password": "court", "confirm": "court"})
    assert weak.status_code == 422 and "12 caractères" in txt(weak)
    done = post_page_form(invited, page.text, data={"password": PASSWORD, "confirm": PASSWORD})
    assert done.status_code == 302
    home = invited.get(done.headers["Location"])
    assert home.status_code == 200 and email in txt(home)  # logged in
    row = user_row(app, email)
    assert row.state.value == "active" and not row.managed
    # The link is single-use.
    used = app.test_client().get(link)
    assert used.status_code == 404 and "ne fonctionne plus" in txt(used)
    # And the person can log in with the password.
    assert login(app.test_client(), email).status_code == 302


def test_invitation_resend_and_regenerate(app: Any, world: World, mailbox: Any) -> None:
    email = unique_email("relance")
    client = logged(app, world.admin_a.email)
    submit(client, f"{base(world)}/rattacher", data={"email": email, "given_name": "Rose", "family_name": "Relance"})
    first = mail_link(mailbox.wait_for(email, "mot de passe"), "/gestion/invitation/")
    page = client.get(f"{base(world)}/invitations")
    assert page.status_code == 200 and email in txt(page)
    count = len(mailbox.to(email))
    resent = client.post(_resend_action(page.text), data={"csrf_token": _csrf(page.text)})
    assert resent.status_code == 302
    _wait_count(mailbox, email, count + 1)
    second = mail_link(mailbox.to(email)[-1], "/gestion/invitation/")
    assert second != first
    assert app.test_client().get(first).status_code == 404  # superseded
    regenerated = client.post(_resend_action(page.text), data={"csrf_token": _csrf(page.text), "regenerate": "1"})
    assert regenerated.status_code == 302
    _wait_count(mailbox, email, count + 2)
    third = mail_link(mailbox.to(email)[-1], "/gestion/invitation/")
    assert app.test_client().get(second).status_code == 404
    assert app.test_client().get(third).status_code == 200


def _resend_action(html: str) -> str:
    import re

    return re.findall(r'action="(/gestion/[^"]+/invitations/\d+)"', html)[0]


def _csrf(html: str) -> str:
    from conftest import csrf_token

    return csrf_token(html)


def _wait_count(mailbox: Any, email: str, n: int) -> None:
    import time

    deadline = time.monotonic() + 10
    while len(mailbox.to(email)) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(mailbox.to(email)) >= n


def test_expired_invitation_link(app: Any, world: World, mailbox: Any) -> None:
    from sqlalchemy import update

    from idp.extensions import db
    from idp.models import Invitation, utcnow

    email = unique_email("expire")
    client = logged(app, world.admin_a.email)
    submit(client, f"{base(world)}/rattacher", data={"email": email, "given_name": "Éric", "family_name": "Expiré"})
    link = mail_link(mailbox.wait_for(email, "mot de passe"), "/gestion/invitation/")
    with app.app_context():
        db.session.execute(update(Invitation).values(expires_at=utcnow() - timedelta(minutes=1))
                           .where(Invitation.used_at.is_(None)))
        db.session.commit()
    page = app.test_client().get(link)
    assert page.status_code == 404 and "ne fonctionne plus" in txt(page)
    listing = client.get(f"{base(world)}/invitations")
    assert "expirée" in txt(listing)
    assert app.test_client().get("/gestion/invitation/nimportequoi").status_code == 404


# ------------------------------------------------------------------ journal

def test_journal_filters_and_csv(app: Any, world: World) -> None:
    client = logged(app, world.admin_a.email)
    submit(client, member_url(world, world.m_member_a), form_id="suspension")
    page = client.get(f"{base(world)}/journal?event=membership.")
    assert page.status_code == 200
    assert "membership.suspended" in txt(page) and "membership.added" in txt(page)
    person = client.get(f"{base(world)}/journal?email={world.member_a.email}")
    assert "membership.suspended" in txt(person)
    nobody = client.get(f"{base(world)}/journal?email=personne@example.test")
    assert "Aucun événement" in txt(nobody)
    csv = client.get(f"{base(world)}/journal.csv?event=membership.")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert "membership.suspended" in txt(csv) and world.member_a.email in txt(csv)
    assert client.get(f"{base(world)}/journal?page=zz&event=%25").status_code == 200


def test_an_admin_who_detaches_themselves_goes_home(app: Any, world: World) -> None:
    client = logged(app, world.admin_a.email)
    confirm = client.get(member_url(world, world.m_admin_a) + "/detacher")
    response = post_page_form(client, confirm.text)
    assert response.status_code == 302 and "/gestion/" not in response.headers["Location"]
    assert membership(app, world.m_admin_a) is None
    assert client.get(f"{base(world)}/").status_code == 404


def test_invitation_accepted_while_someone_else_is_logged_in(app: Any, world: World, mailbox: Any) -> None:
    email = unique_email("autre-navigateur")
    client = logged(app, world.admin_a.email)
    submit(client, f"{base(world)}/rattacher", data={"email": email, "given_name": "Paul", "family_name": "Partage"})
    link = mail_link(mailbox.wait_for(email, "mot de passe"), "/gestion/invitation/")
    page = client.get(link)  # the admin's own browser
    response = post_page_form(client, page.text, data={"password": PASSWORD, "confirm": PASSWORD})
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert user_row(app, email).state.value == "active"
    assert client.get(f"{base(world)}/").status_code == 200  # still the admin
