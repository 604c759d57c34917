"""Joining structures through HTTP (SPEC §4.1 "Informations de ma structure", §4.2; seed 000 §3.A and
§5, seed 001 "Comment se rattacher" and the instant search): SIRET step, instant search, profile and
request, mail to the deciders, e-mail match, cancel, expiry and reminders, REPERNET hand-off."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import csrf_token, mail_link, mail_text, unique_email
from test_accounts_helpers import login
from test_join_helpers import (
    add_member,
    bad_key,
    join_requests,
    make_structure,
    membership,
    new_siret,
    token,
)


@pytest.fixture
def logged(app: Any, testclient: Any, create_account: Any) -> Any:
    """A usager logged in with the test client."""
    user = create_account(given_name="Tristan", family_name="Blanc")
    login(testclient, user.email)
    return user


@pytest.fixture
def with_admin(app: Any, create_account: Any) -> tuple[Any, Any]:
    """A structure with one active admin: (structure, admin account)."""
    structure = make_structure(app, f"Organisme {token()}", city="Bourgoin-Jallieu", postal_code="38300")
    admin = create_account(given_name="Ludovic", family_name="Valin")
    add_member(app, structure.id, admin.id, ("sam:redacteur", "sam:signataire"), admin=True)
    return structure, admin


def drain_outbox(app: Any) -> None:
    """Deliver every due mail, as the worker would over several passes."""
    from idp.web import deliver_mail

    with app.app_context():
        while deliver_mail(app):
            pass


def spaced(siret: str) -> str:
    return f"{siret[:3]} {siret[3:6]} {siret[6:9]} {siret[9:]}"


def profile_ids(html: str) -> list[str]:
    return re.findall(r'name="profile" value="(\d+)"', html)


def send_request(testclient: Any, siret: str, message: str = "", profile_index: int = 0) -> Any:
    """Step 2 as a browser: GET the structure's page, tick a profile, post with the CSRF token."""
    page = testclient.get(f"/structures/rattacher/{siret}")
    assert page.status_code == 200, page.status_code
    data = {"csrf_token": csrf_token(page.text), "message": message}
    ids = profile_ids(page.text)
    if ids:
        data["profile"] = ids[profile_index]
    return testclient.post(f"/structures/rattacher/{siret}", data=data)


# ---------------------------------------------------------------- step 1: the SIRET

@pytest.mark.parametrize(("typed", "status", "message"), [
    ("", 400, "Saisissez le SIRET"),
    ("abcdefghijklmn", 400, "ne contient que des chiffres"),
    ("1234567890123A", 400, "ne contient que des chiffres"),
    ("١٢٣٤٥٦٧٨٩٠١٢٣٤", 400, "ne contient que des chiffres"),  # Arabic-Indic digits are not a SIRET
    ("1234567890123", 400, "vous en avez saisi 13"),
    ("123 456 789 012 345", 400, "vous en avez saisi 15"),
    ("BAD_KEY", 400, "clé de contrôle"),
    ("x" * 500, 400, "14 chiffres"),
])
def test_siret_errors_are_french_and_keep_the_value(testclient: Any, logged: Any, typed: str, status: int,
                                                     message: str) -> None:
    if typed == "BAD_KEY":
        typed = spaced(bad_key(new_siret()))
    page = testclient.get("/structures/rattacher", query_string={"siret": typed})
    assert page.status_code == status
    assert message in page.text
    if typed and len(typed) < 100:
        assert f'value="{typed}"' in page.text


@pytest.mark.parametrize("shape", [str, spaced, lambda s: f"  {s}  ", lambda s: f"{s[:9]}.{s[9:]}"])
def test_a_known_siret_with_spaces_leads_to_its_structure(app: Any, testclient: Any, logged: Any,
                                                          shape: Any) -> None:
    structure = make_structure(app)
    found = testclient.get("/structures/rattacher", query_string={"siret": shape(structure.siret)})
    assert found.status_code == 302
    assert found.headers["Location"].endswith(f"/structures/rattacher/{structure.siret}")
    page = testclient.get(found.headers["Location"])
    assert page.status_code == 200
    assert structure.name in page.text and "Siège social" in page.text and "Lyon" in page.text


def test_unknown_siret_offers_to_create_the_structure_in_repernet(app: Any, testclient: Any, logged: Any) -> None:
    siret = new_siret()
    page = testclient.get("/structures/rattacher", query_string={"siret": spaced(siret)})
    assert page.status_code == 404
    assert "Aucune structure n'est enregistrée" in unescape(page.text)
    assert f'value="{spaced(siret)}"' in page.text
    href = re.search(r'id="create-structure" href="([^"]+)"', page.text).group(1).replace("&amp;", "&")
    target = urlsplit(href)
    assert f"{target.scheme}://{target.netloc}{target.path}" == app.config["REPERNET_REGISTER_URL"]
    query = parse_qs(target.query)
    assert query["siret"] == [siret]
    back = urlsplit(query["return_to"][0])
    assert back.scheme == "http" and back.path == "/structures/rattacher" and parse_qs(back.query) == {"siret": [siret], "enregistree": ["1"]}

    # REPERNET registers it through the API, then sends the usager back: step 2 at once.
    make_structure(app, f"Nouvelle {token()}", siret=siret)
    again = testclient.get(f"{back.path}?{back.query}")
    assert again.status_code == 302
    assert again.headers["Location"].endswith(f"/structures/rattacher/{siret}?enregistree=1")
    # The registrant lands on "Structure enregistrée", not on a warning (issue 16).
    landing = testclient.get(again.headers["Location"])
    assert "Structure enregistrée." in landing.text and 'id="already"' not in landing.text


def test_step_two_with_a_bad_siret_in_the_url_goes_back_to_step_one(testclient: Any, logged: Any) -> None:
    bad = testclient.get("/structures/rattacher/123abc")
    assert bad.status_code == 302 and "/structures/rattacher?siret=123abc" in bad.headers["Location"]
    assert testclient.get(bad.headers["Location"]).status_code == 400


def test_anonymous_visitors_log_in_first(testclient: Any) -> None:
    for path in ("/structures/", "/structures/rattacher", "/structures/courante", "/structures/demandes/1"):
        response = testclient.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"], path
    assert testclient.get("/structures/recherche?q=lyon").status_code == 401


# ---------------------------------------------------------------- instant search

@pytest.fixture
def lycees(app: Any) -> dict[str, Any]:
    tag = token()
    return {
        "tag": tag,
        "gambetta": make_structure(app, f"LP Leon Gambetta {tag}", kind="lycee", city=f"Bourgoin{tag}",
                                   code=f"TLPU{tag}"),
        "blum": make_structure(app, f"Lycee Leon Blum {tag}", kind="lycee", city="Villefranche", code=f"TLB{tag}"),
        "hidden": make_structure(app, f"Lycee Leon Cache {tag}", kind="lycee", city="Lyon", searchable=False),
    }


def test_search_by_name_city_and_code_as_json(testclient: Any, logged: Any, lycees: dict[str, Any]) -> None:
    tag = lycees["tag"]
    by_name = testclient.get("/structures/recherche", query_string={"q": f"leon {tag}"})
    assert by_name.status_code == 200 and by_name.mimetype == "application/json"
    names = {item["name"] for item in by_name.json}
    assert names == {lycees["gambetta"].name, lycees["blum"].name}  # the non-searchable one stays hidden
    for item in by_name.json:
        assert set(item) == {"id", "siret", "name", "city", "code"}
        assert re.fullmatch(r"\d{14}", item["siret"])
    by_city = testclient.get("/structures/recherche", query_string={"q": f"BOURGOIN{tag}"}).json
    assert [item["name"] for item in by_city] == [lycees["gambetta"].name]
    by_code = testclient.get("/structures/recherche", query_string={"q": f"tlpu{tag}"}).json
    assert by_code == [{"id": str(lycees["gambetta"].id), "siret": lycees["gambetta"].siret,
                        "name": lycees["gambetta"].name, "city": f"Bourgoin{tag}", "code": f"TLPU{tag}"}]
    hidden = testclient.get("/structures/recherche", query_string={"q": f"cache {tag}"}).json
    assert hidden == []


def test_search_returns_at_most_ten(app: Any, testclient: Any, logged: Any) -> None:
    tag = token()
    for i in range(12):
        make_structure(app, f"Centre {tag} numero {i}")
    assert len(testclient.get("/structures/recherche", query_string={"q": tag}).json) == 10


@pytest.mark.parametrize("odd", ["", "a", " ", "%", "_", "%%", "__", "\\", "'", '"', "%_%", "' OR 1=1 --",
                                 "é" * 3, "\u0000\u0000", "x" * 10_000, "a " * 2000, "<script>"])
def test_search_survives_odd_input(testclient: Any, logged: Any, lycees: dict[str, Any], odd: str) -> None:
    response = testclient.get("/structures/recherche", query_string={"q": odd})
    if "\x00" in odd:  # NUL is refused at the door, for every page (issue 15)
        assert response.status_code == 400
        return
    assert response.status_code == 200
    assert isinstance(response.json, list) and len(response.json) <= 10
    if odd.strip() in ("", "a", "%", "_", "%%", "__", "%_%"):
        assert response.json == []  # short, or wildcards taken literally: never "everything"


def test_search_is_rate_limited(testclient: Any, logged: Any) -> None:
    statuses = [testclient.get("/structures/recherche?q=lyon").status_code for _ in range(61)]
    assert statuses[:60] == [200] * 60 and statuses[60] == 429


def test_search_without_javascript(testclient: Any, logged: Any, lycees: dict[str, Any]) -> None:
    tag = lycees["tag"]
    page = testclient.get("/structures/rattacher", query_string={"q": f"leon {tag}"})
    assert page.status_code == 200
    assert lycees["gambetta"].name in page.text and lycees["blum"].name in page.text
    assert lycees["hidden"].name not in page.text
    assert f'href="/structures/rattacher/{lycees["gambetta"].siret}"' in page.text
    assert f'value="leon {tag}"' in page.text
    short = testclient.get("/structures/rattacher", query_string={"q": "a"})
    assert short.status_code == 400 and "au moins 2 caractères" in short.text
    none = testclient.get("/structures/rattacher", query_string={"q": f"zzz{tag}"})
    assert none.status_code == 200 and "Aucune structure ne correspond" in none.text
    # The typeahead is a separate script (CSP: script-src 'self'), fed by data attributes.
    assert 'src="/static/join.js"' in page.text and 'data-search-url="/structures/recherche"' in page.text
    script = testclient.get("/static/join.js")
    assert script.status_code == 200 and "textContent" in script.text
    script.close()


def test_a_lycee_offers_its_profiles(testclient: Any, logged: Any, lycees: dict[str, Any]) -> None:
    page = testclient.get(f"/structures/rattacher/{lycees['gambetta'].siret}")
    assert page.status_code == 200
    assert "Enseignant" in page.text and "Gestionnaire" in page.text and "Répondre aux appels" not in page.text
    assert len(profile_ids(page.text)) == 4


# ---------------------------------------------------------------- the request and its mail

def test_join_mails_every_admin_with_a_link_to_the_request(app: Any, testclient: Any, logged: Any, mailbox: Any,
                                                           with_admin: tuple[Any, Any], create_account: Any) -> None:
    structure, admin = with_admin
    second = create_account(given_name="Jean", family_name="Antoine")
    add_member(app, structure.id, second.id, admin=True)
    sent = send_request(testclient, structure.siret, message="Je suis enseignant ici.")
    assert sent.status_code == 303
    confirmation = testclient.get(sent.headers["Location"])
    assert confirmation.status_code == 200
    assert "Votre demande a bien été envoyée" in confirmation.text

    [join] = join_requests(app, logged.id, structure.id)
    assert join.status.value == "pending" and join.message == "Je suis enseignant ici."
    assert join.profile_id is not None
    assert timedelta(days=14, hours=23) < join.expires_at - join.created_at <= timedelta(days=15, minutes=1)

    for who in (admin, second):
        mail = mailbox.wait_for(who.email, "Demande de rattachement")
        text = mail_text(mail)
        assert logged.email in text and structure.siret in text and "Je suis enseignant ici." in text
        assert "Traiter la demande" in text and "Traiter la demande" in mail.get_body(("html",)).get_content()
    ack = mailbox.wait_for(logged.email, "est envoyée")
    assert structure.name in mail_text(ack)

    # The admin follows "Traiter la demande": the request, after logging in.
    link = mail_link(mailbox.wait_for(admin.email, "Demande de rattachement"), "/gestion/demande/")
    admin_client = app.test_client()
    assert "/login" in admin_client.get(link).headers["Location"]
    login(admin_client, admin.email)
    opened = admin_client.get(link, follow_redirects=True)
    assert opened.status_code == 200 and logged.email in opened.text

    # My structures lists the pending request with its Annuler button.
    mine = testclient.get("/structures/")
    assert structure.name in mine.text and f"/structures/demandes/{join.id}/annuler" in mine.text


def test_join_without_admin_goes_to_the_platform_moderation(app: Any, testclient: Any, logged: Any, mailbox: Any,
                                                            create_account: Any) -> None:
    platform = create_account(admin=True, given_name="Plateforme", family_name="Admin")
    structure = make_structure(app)
    assert send_request(testclient, structure.siret).status_code == 303
    drain_outbox(app)  # one mail per platform admin: more than one delivery pass in a long test session
    mail = mailbox.wait_for(platform.email, "à modérer")
    assert logged.email in mail_text(mail) and structure.name in mail_text(mail)
    link = mail_link(mail, "/admin/moderation")
    assert "sans" not in link
    admin_client = app.test_client()
    login(admin_client, platform.email)
    queue = admin_client.get(link)
    assert queue.status_code == 200 and structure.name in queue.text
    assert "administrateurs du portail" in mail_text(mailbox.wait_for(logged.email, "est envoyée"))


@pytest.mark.parametrize(("field", "value", "message", "status"), [
    ("profile", None, "Choisissez un profil.", 400),
    ("profile", "999999", "Choisissez l'un des profils proposés.", 400),
    ("profile", "abc", "Choisissez l'un des profils proposés.", 400),
    ("message", "m" * 501, "au plus 500 caractères", 400),
])
def test_join_form_errors_keep_what_was_typed(app: Any, testclient: Any, logged: Any, field: str, value: Any,
                                              message: str, status: int) -> None:
    structure = make_structure(app)
    page = testclient.get(f"/structures/rattacher/{structure.siret}")
    data = {"csrf_token": csrf_token(page.text), "profile": profile_ids(page.text)[1], "message": "Bonjour à vous"}
    if value is None:
        data.pop(field)
    else:
        data[field] = value
    response = testclient.post(f"/structures/rattacher/{structure.siret}", data=data)
    assert response.status_code == status
    assert message in unescape(response.text)
    assert (data["message"] if field == "message" else "Bonjour à vous") in response.text
    if field == "message":
        assert f'value="{data["profile"]}" checked' in response.text
    assert join_requests(app, logged.id, structure.id) == []


def test_control_characters_are_dropped_from_the_message(app: Any, testclient: Any, logged: Any) -> None:
    structure = make_structure(app)
    assert send_request(testclient, structure.siret, message="Bonjour\x00 à vous").status_code == 400  # issue 15
    assert join_requests(app, logged.id, structure.id) == []
    assert send_request(testclient, structure.siret, message="Bonjour\x01 à vous\r\nMerci\x1b").status_code == 303
    assert join_requests(app, logged.id, structure.id)[0].message == "Bonjour à vous\nMerci"


def test_join_needs_the_csrf_token(app: Any, testclient: Any, logged: Any) -> None:
    structure = make_structure(app)
    page = testclient.get(f"/structures/rattacher/{structure.siret}")
    response = testclient.post(f"/structures/rattacher/{structure.siret}", data={"profile": profile_ids(page.text)[0]})
    assert response.status_code == 400
    assert join_requests(app, logged.id, structure.id) == []


def test_a_second_request_and_a_member_are_told_clearly(app: Any, testclient: Any, logged: Any,
                                                         with_admin: tuple[Any, Any]) -> None:
    structure, admin = with_admin
    page = testclient.get(f"/structures/rattacher/{structure.siret}")
    token_ = csrf_token(page.text)
    assert send_request(testclient, structure.siret).status_code == 303
    again = testclient.get(f"/structures/rattacher/{structure.siret}")
    assert "déjà une demande en attente" in again.text and 'name="profile"' not in again.text
    posted = testclient.post(f"/structures/rattacher/{structure.siret}",
                             data={"csrf_token": token_, "profile": profile_ids(page.text)[0]})
    assert posted.status_code == 409 and "déjà une demande en attente" in posted.text
    assert len(join_requests(app, logged.id, structure.id)) == 1

    other = make_structure(app)
    add_member(app, other.id, logged.id)
    member = testclient.get(f"/structures/rattacher/{other.siret}")
    assert "déjà rattaché(e) à cette structure" in member.text
    refused = testclient.post(f"/structures/rattacher/{other.siret}",
                              data={"csrf_token": token_, "profile": profile_ids(page.text)[0]})
    assert refused.status_code == 409
    assert join_requests(app, logged.id, other.id) == []


def test_the_designated_admin_email_becomes_admin_at_once(app: Any, testclient: Any, create_account: Any,
                                                          mailbox: Any) -> None:
    email = unique_email("paul.blanc")
    user = create_account(email=email, given_name="Paul", family_name="Blanc")
    structure = make_structure(app, f"Société A {token()}", admin_email=email.upper())
    login(testclient, email)
    page = testclient.get(f"/structures/rattacher/{structure.siret}")
    assert 'id="designated"' in page.text and 'name="profile"' not in page.text
    done = testclient.post(f"/structures/rattacher/{structure.siret}", data={"csrf_token": csrf_token(page.text)})
    assert done.status_code == 303 and done.headers["Location"].endswith("/structures/")
    found = membership(app, user.id, structure.id)
    assert found is not None and found.is_admin and found.is_active
    assert join_requests(app, user.id, structure.id) == []
    home = testclient.get("/structures/")
    assert "vous en êtes administrateur" in home.text and "structure courante" in home.text
    mail = mailbox.wait_for(email, "Vous êtes administrateur")
    assert structure.siret in mail_text(mail)
    assert testclient.get(mail_link(mail, "/gestion/")).status_code == 200


# ---------------------------------------------------------------- cancel

def test_cancel_my_request_but_not_someone_elses(app: Any, testclient: Any, logged: Any,
                                                 with_admin: tuple[Any, Any], create_account: Any) -> None:
    structure, _admin = with_admin
    assert send_request(testclient, structure.siret).status_code == 303
    [join] = join_requests(app, logged.id, structure.id)

    intruder = create_account()
    other = app.test_client()
    login(other, intruder.email)
    token_ = csrf_token(other.get("/structures/").text)
    assert other.post(f"/structures/demandes/{join.id}/annuler", data={"csrf_token": token_}).status_code == 404
    assert other.get(f"/structures/demandes/{join.id}").status_code == 404
    assert other.post("/structures/demandes/999999999/annuler", data={"csrf_token": token_}).status_code == 404
    assert testclient.post(f"/structures/demandes/{join.id}/annuler").status_code == 400  # no CSRF token
    assert join_requests(app, logged.id, structure.id)[0].status.value == "pending"

    page = testclient.get("/structures/")
    done = testclient.post(f"/structures/demandes/{join.id}/annuler", data={"csrf_token": csrf_token(page.text)})
    assert done.status_code == 303
    after = testclient.get(done.headers["Location"])
    assert "est annulée" in after.text and "Aucune demande en attente" in after.text
    assert join_requests(app, logged.id, structure.id)[0].status.value == "cancelled"
    twice = testclient.post(f"/structures/demandes/{join.id}/annuler", data={"csrf_token": csrf_token(page.text)})
    assert "n'est plus en attente" in unescape(testclient.get(twice.headers["Location"]).text)
    # A cancelled request does not stop a new one.
    assert send_request(testclient, structure.siret).status_code == 303


# ---------------------------------------------------------------- expiry and reminders

def _set_expiry(app: Any, request_id: int, expires_at: Any) -> None:
    from idp.extensions import db
    from idp.models import JoinRequest

    with app.app_context():
        db.session.get(JoinRequest, request_id).expires_at = expires_at
        db.session.commit()


def test_reminder_then_expiry_each_once(app: Any, testclient: Any, logged: Any, mailbox: Any,
                                        with_admin: tuple[Any, Any]) -> None:
    from idp.join.jobs import run
    from idp.models import utcnow

    structure, admin = with_admin
    assert send_request(testclient, structure.siret).status_code == 303
    [join] = join_requests(app, logged.id, structure.id)
    now = utcnow()

    # 12 days left: nothing to do yet.
    run(app, now + timedelta(days=3))
    assert join_requests(app, logged.id, structure.id)[0].reminded_at is None

    # 2 days left: the admins get one reminder, never two.
    _set_expiry(app, join.id, now + timedelta(days=2))
    run(app, now)
    reminded = join_requests(app, logged.id, structure.id)[0]
    assert reminded.status.value == "pending" and reminded.reminded_at is not None
    reminder = mailbox.wait_for(admin.email, "Rappel")
    assert logged.email in mail_text(reminder)
    assert "/gestion/demande/" in mail_link(reminder, "/gestion/demande/")
    count = len(mailbox.to(admin.email))
    run(app, now + timedelta(hours=1))
    assert len(mailbox.to(admin.email)) == count

    # Past the expiry: expired, the requester is told, and may ask again.
    run(app, now + timedelta(days=2, seconds=1))
    assert join_requests(app, logged.id, structure.id)[0].status.value == "expired"
    expired = mailbox.wait_for(logged.email, "a expiré")
    again = mail_link(expired, "/structures/rattacher")
    assert testclient.get(again).status_code == 302
    before = len(mailbox.to(logged.email))
    run(app, now + timedelta(days=3))
    assert len(mailbox.to(logged.email)) == before
    assert "Aucune demande en attente" in testclient.get("/structures/").text
    assert send_request(testclient, structure.siret).status_code == 303
    assert [j.status.value for j in join_requests(app, logged.id, structure.id)] == ["expired", "pending"]


def test_a_request_past_its_days_does_not_block_a_new_one(app: Any, testclient: Any, logged: Any) -> None:
    from idp.models import utcnow

    structure = make_structure(app)
    assert send_request(testclient, structure.siret).status_code == 303
    [join] = join_requests(app, logged.id, structure.id)
    _set_expiry(app, join.id, utcnow() - timedelta(minutes=1))  # the job has not run yet
    page = testclient.get(f"/structures/rattacher/{structure.siret}")
    assert 'name="profile"' in page.text
    assert send_request(testclient, structure.siret).status_code == 303
    assert len(join_requests(app, logged.id, structure.id)) == 2


def test_the_home_page_lists_my_open_requests_only(app: Any, testclient: Any, logged: Any) -> None:
    from idp.models import utcnow

    structure = make_structure(app)
    assert send_request(testclient, structure.siret).status_code == 303
    [join] = join_requests(app, logged.id, structure.id)
    assert structure.name in testclient.get("/").text.split('id="my-requests"', 1)[1]
    _set_expiry(app, join.id, utcnow() - timedelta(minutes=1))  # past its days, the job has not run yet
    home = testclient.get("/").text
    assert 'id="my-requests"' not in home and "Aucune demande de rattachement en attente." in home


def test_idp_requests_expire_command(app: Any, testclient: Any, logged: Any, mailbox: Any) -> None:
    import json

    from idp.models import utcnow

    structure = make_structure(app)
    assert send_request(testclient, structure.siret).status_code == 303
    [join] = join_requests(app, logged.id, structure.id)
    _set_expiry(app, join.id, utcnow() - timedelta(seconds=1))
    result = app.test_cli_runner().invoke(args=["requests", "expire", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["expired"] >= 1
    assert join_requests(app, logged.id, structure.id)[0].status.value == "expired"
    assert structure.name in mail_text(mailbox.wait_for(logged.email, "a expiré"))
    second = app.test_cli_runner().invoke(args=["requests", "expire", "--json"])
    assert second.exit_code == 0 and json.loads(second.output)["expired"] == 0


# ---------------------------------------------------------------- my structures, my current structure

def test_my_structures_show_roles_and_the_current_one(app: Any, testclient: Any, create_account: Any) -> None:
    user = create_account()
    first = make_structure(app, f"Alpha {token()}")
    second = make_structure(app, f"Beta {token()}", city="Grenoble")
    add_member(app, first.id, user.id, ("sam:redacteur", "catalogue:editeur"))
    add_member(app, second.id, user.id, admin=True)
    login(testclient, user.email)
    page = testclient.get("/structures/")
    assert page.status_code == 200
    assert first.siret in page.text and second.siret in page.text and "Grenoble" in page.text
    assert "SAM — marchés de formation" in page.text and "Rédacteur" in page.text and "Éditeur" in page.text
    assert "administrateur" in page.text and "membre" in page.text
    choose = re.search(rf'href="(/account/structure\?[^"]*siret_hint={second.siret}[^"]*)"', page.text)
    assert choose is not None
    chosen = testclient.get(choose.group(1).replace("&amp;", "&"))
    assert chosen.status_code == 200
    assert re.search(rf'value="{second.id}"\s+checked', chosen.text)
    switched = testclient.post("/account/structure", data={
        "csrf_token": csrf_token(chosen.text), "structure": str(second.id), "next": "/structures/"})
    assert switched.status_code == 302 and switched.headers["Location"] == "/structures/"
    current = testclient.get("/structures/")
    row = re.search(r'<tr class="current"[^>]*>(.*?)</tr>', current.text, re.S)
    assert row is not None and second.name in row.group(1)
    assert "Se rattacher à une structure" in current.text and "Informations de ma structure" in current.text


def test_informations_de_ma_structure(app: Any, testclient: Any, create_account: Any) -> None:
    from idp.extensions import db
    from idp.models import User

    siege = make_structure(app, f"Siège {token()}", city="Lyon", postal_code="69002")
    branch = make_structure(app, f"Antenne {token()}", city="Valence", siret=new_siret(siege.siret[:9]))
    admin = create_account(given_name="Anne", family_name="Dupont")
    with app.app_context():
        db.session.get(User, admin.id).contact_email = f"contact-{token()}@example.test"
        db.session.commit()
        contact = db.session.get(User, admin.id).contact_email
    user = create_account()
    add_member(app, siege.id, admin.id, admin=True)
    add_member(app, siege.id, user.id, ("repernet:lecteur",))

    login(testclient, user.email)  # one structure: it is the current one
    page = testclient.get("/structures/courante")
    assert page.status_code == 200
    for expected in (siege.name, siege.siret, "69002 Lyon", "Siège social", "Organisme", branch.name, contact,
                     "REPERNET", "Lecteur", "Vous êtes membre de cette structure"):
        assert expected in page.text, expected
    assert admin.email not in page.text  # the contact e-mail, not the login e-mail

    # The établissement shows its siège.
    other = create_account()
    add_member(app, branch.id, other.id)
    branch_client = app.test_client()
    login(branch_client, other.email)
    shown = branch_client.get("/structures/courante")
    assert "Établissement secondaire" in shown.text and siege.name in shown.text
    assert "n'a pas d'administrateur actif" in unescape(shown.text)


def test_informations_without_a_current_structure(testclient: Any, logged: Any) -> None:
    page = testclient.get("/structures/courante")
    assert page.status_code == 200
    assert "Vous n'agissez pour aucune structure" in unescape(page.text)
    assert 'href="/structures/rattacher"' in page.text
