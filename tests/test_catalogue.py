# ruff: noqa: F811 - pytest fixtures imported from tests/rp_helpers.py are parameters here
"""The Catalogue (SPEC §9, issue 14) over HTTP against the live IdP: the organisation record and
its read-only data, rights (editeur, lecteur, moderateur, another structure, a siège), offers with
actions and sessions (exactly one contact, duplicate, 409 on stale saves), moderation (pending
is not public, a return keeps the published version, mails, history), the public search (accents
and plurals, place, dates, current), the LHEO 2.3 export against an XSD, and SAM's API.

On PostgreSQL runs (IDP_TEST_DATABASE_URL) the Catalogue gets a PostgreSQL database of its own,
so the search is checked on both engines.
"""

from __future__ import annotations

import html
import os
import re
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.conftest import new_siret
from tests.rp_helpers import (
    RP,
    Org,
    csrf_of,
    make_structure,
    member_of,
    new_browser,
    rp_get,
    rp_login,
    serve_rp,
)

TODAY = date.today()


# ---------------------------------------------------------------- the Catalogue under test

@pytest.fixture(scope="session")
def cat(app: Any, live_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RP]:
    """The Catalogue beside the live IdP, on the same engine as the IdP's tests (SQLite or PostgreSQL)."""
    settings: dict[str, Any] = {}
    base = os.environ.get("IDP_TEST_DATABASE_URL")
    admin = None
    name = f"catalogue_test_{uuid.uuid4().hex[:10]}"
    if base:
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        settings["DATABASE_URL"] = base.rsplit("/", 1)[0] + "/" + name
    yield from serve_rp(app, live_server, tmp_path_factory.mktemp("cat"), "catalogue", **settings)
    if admin is not None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def page(response: requests.Response) -> str:
    return html.unescape(response.text)


def version_of(markup: str) -> str:
    found = re.search(r'name="version"[^>]*value="(\d+)"', markup) or re.search(r'value="(\d+)"[^>]*name="version"', markup)
    assert found, "no version field"
    return found.group(1)


def logged(app: Any, cat: RP, grants: list[str], org: Org | None = None) -> tuple[requests.Session, Org, str]:
    person, org = member_of(app, grants, org=org)
    browser = new_browser()
    rp_login(browser, cat, person.email)
    return browser, org, person.email


def moderator(app: Any, cat: RP) -> requests.Session:
    region = make_structure(app, kind="region", name=f"Carif-Oref {uuid.uuid4().hex[:4]}")
    browser, _org, _email = logged(app, cat, ["catalogue:moderateur", "catalogue:lecteur"], org=region)
    return browser


def post(browser: requests.Session, cat: RP, path: str, data: dict[str, Any], form_page: str | None = None
         ) -> requests.Response:
    """POST with the CSRF token of `form_page` (or of the page at `path`)."""
    markup = form_page if form_page is not None else rp_get(browser, cat, path).text
    return browser.post(f"{cat.url}{path}", data={"csrf_token": csrf_of(markup), **data}, allow_redirects=False)


FORMATION = {"certifying": "non", "certification_key": "", "title": "Électricité des bâtiments",
             "objectives": "Installer les équipements électriques des bâtiments tertiaires.",
             "expected_results": "Attestation de compétences", "content": "Schémas, câblage, tableaux électriques.",
             "prerequisites": "", "formacodes": "", "romes": "F1602", "nsf": "255", "entry_level": "0", "path": "1",
             "keywords": ""}
ACTION = {"place_name": "Centre", "address": "3 cours Berriat", "postal_code": "38000", "city": "Grenoble",
          "publics": ["80006", "82045"], "public_info": "", "entry_mode": "fixes", "rhythm": "Temps plein",
          "teaching_mode": "0", "hours": "420", "accessibility": "Locaux accessibles", "transport": "", "accommodation": "",
          "catering": "", "funders": "Région"}


def session_fields(start: date, end: date, **extra: Any) -> dict[str, Any]:
    return {"start": start.isoformat(), "end": end.isoformat(), "registration_address": "3 cours Berriat",
            "registration_postal_code": "38000", "registration_city": "Grenoble", "recruitment": "1",
            "new_contact_name": "", "new_contact_function": "", "new_contact_phone": "", "new_contact_email": "",
            **extra}


def create_offer(browser: requests.Session, cat: RP, siret: str, **overrides: Any) -> int:
    path = f"/organismes/{siret}/formations/nouvelle"
    response = post(browser, cat, path, {**FORMATION, **overrides})
    assert response.status_code == 302, page(response)[:2000]
    return int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])


def add_action(browser: requests.Session, cat: RP, offer_id: int, **overrides: Any) -> str:
    form = rp_get(browser, cat, f"/offres/{offer_id}/actions/nouvelle").text
    response = post(browser, cat, f"/offres/{offer_id}/actions/nouvelle",
                    {**ACTION, **overrides, "version": version_of(form)}, form)
    assert response.status_code == 302, page(response)[:2000]
    return response.headers["Location"].rsplit("#action-", 1)[1]


def add_session(browser: requests.Session, cat: RP, offer_id: int, action: str, start: date, end: date,
                **contact: Any) -> requests.Response:
    path = f"/offres/{offer_id}/actions/{action}/sessions/nouvelle"
    form = rp_get(browser, cat, path).text
    fields = session_fields(start, end, **(contact or {"new_contact_name": "Lucie Martin",
                                                       "new_contact_phone": "04 76 00 00 00"}))
    return post(browser, cat, path, {**fields, "version": version_of(form)}, form)


def offer_version(browser: requests.Session, cat: RP, offer_id: int) -> str:
    return version_of(rp_get(browser, cat, f"/offres/{offer_id}").text)


def publish(mod: requests.Session, cat: RP, offer_id: int) -> requests.Response:
    markup = rp_get(mod, cat, f"/offres/{offer_id}").text
    return post(mod, cat, f"/offres/{offer_id}/publier", {"version": version_of(markup)}, markup)


def full_offer(browser: requests.Session, cat: RP, siret: str, sessions: list[tuple[date, date]] | None = None,
               **formation: Any) -> tuple[int, str]:
    offer_id = create_offer(browser, cat, siret, **formation)
    action = add_action(browser, cat, offer_id)
    for start, end in sessions or [(TODAY + timedelta(days=30), TODAY + timedelta(days=120))]:
        assert add_session(browser, cat, offer_id, action, start, end).status_code == 302
    return offer_id, action


def mails(cat: RP, recipient: str) -> list[Any]:
    from shared.tables import OutboxMail

    deadline = time.monotonic() + 5
    while True:
        with cat.app.app_context():
            db = cat.app.extensions["shell.db"]
            rows = db.session.query(OutboxMail).filter(OutboxMail.recipient == recipient.lower()).all()
            found = [(m.subject, m.text_body) for m in rows]
            db.session.remove()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def search(cat: RP, **params: str) -> str:
    response = requests.get(f"{cat.url}/recherche", params=params, timeout=10)
    assert response.status_code == 200
    return page(response)


# ---------------------------------------------------------------- the organisation record

def test_the_record_has_the_seed_tabs_and_siret_nda_are_read_only(app: Any, cat: RP) -> None:
    browser, org, email = logged(app, cat, ["catalogue:editeur", "catalogue:lecteur"])
    first = rp_get(browser, cat, f"/organismes/{org.siret}")
    assert first.status_code == 302
    for tab, title in (("identification", "Identification"), ("administratif", "Infos administratives"),
                       ("interlocuteurs", "Interlocuteurs"), ("infos-of", "Infos OF"), ("historique", "Historique")):
        response = rp_get(browser, cat, f"/organismes/{org.siret}/{tab}")
        assert response.status_code == 200 and title in page(response)
    markup = rp_get(browser, cat, f"/organismes/{org.siret}/identification").text
    assert "(non modifiable)" in html.unescape(markup)
    saved = post(browser, cat, f"/organismes/{org.siret}/identification",
                 {"version": version_of(markup), "name": "Organisme Renommé", "city": "Lyon", "postal_code": "69003",
                  "email": "contact@example.test", "siret": "11111111111111", "nda": "99999999999"}, markup)
    assert saved.status_code == 302
    record = page(rp_get(browser, cat, f"/organismes/{org.siret}/identification"))
    assert "Organisme Renommé" in record and org.siret in record and "99999999999" not in record
    assert any("fiche organisme enregistrée" in s for s, _ in mails(cat, email))
    history = page(rp_get(browser, cat, f"/organismes/{org.siret}/historique"))
    assert "Raison sociale" in history and "Organisme Renommé" in history
    # An expired form (its CSRF token no longer valid) comes back with what was typed.
    expired = browser.post(f"{cat.url}/organismes/{org.siret}/identification",
                           data={"csrf_token": "expired", "version": version_of(markup), "name": "Tapé avant expiration"},
                           allow_redirects=False)
    assert expired.status_code == 422 and "expiré" in page(expired) and "Tapé avant expiration" in page(expired)
    # The same form again (its version is now stale): 409, what was typed is kept.
    stale = post(browser, cat, f"/organismes/{org.siret}/identification",
                 {"version": version_of(markup), "name": "Autre nom tapé", "city": "Lyon"}, markup)
    assert stale.status_code == 409 and "modifiée par quelqu'un d'autre" in page(stale) and "Autre nom tapé" in page(stale)


def test_a_change_of_nda_is_a_request_a_moderator_handles(app: Any, cat: RP) -> None:
    browser, org, email = logged(app, cat, ["catalogue:editeur"])
    markup = rp_get(browser, cat, f"/organismes/{org.siret}/identification").text
    empty = post(browser, cat, f"/organismes/{org.siret}/demande", {"topic": "identification", "text": "", "tab": "identification"},
                 markup)
    assert empty.status_code == 422 and "obligatoire" in page(empty)
    sent = post(browser, cat, f"/organismes/{org.siret}/demande",
                {"topic": "identification", "text": "Nouveau NDA : 84691234570", "tab": "identification"}, markup)
    assert sent.status_code == 302
    mod = moderator(app, cat)
    queue = rp_get(mod, cat, "/moderation").text
    assert "Nouveau NDA : 84691234570" in html.unescape(queue)
    request_id = re.search(r'/moderation/demandes/(\d+)', queue).group(1)  # type: ignore[union-attr]
    decided = post(mod, cat, f"/moderation/demandes/{request_id}",
                   {"decision": "accept", "answer": "C'est fait.", "nda": "84691234570"}, queue)
    assert decided.status_code == 302
    assert "84691234570" in page(rp_get(browser, cat, f"/organismes/{org.siret}/identification"))
    assert any("traitée" in s for s, _ in mails(cat, email))


def test_yearly_check_is_dated_and_an_old_one_gets_a_reminder(app: Any, cat: RP) -> None:
    from apps.catalogue.models import Organisation

    browser, org, _email = logged(app, cat, ["catalogue:editeur"])
    markup = rp_get(browser, cat, f"/organismes/{org.siret}/historique").text
    assert "jamais été vérifiée" in html.unescape(markup)
    refused = post(browser, cat, f"/organismes/{org.siret}/verification", {"version": version_of(markup)}, markup)
    assert refused.status_code == 422 and "Cochez la case" in page(refused)
    done = post(browser, cat, f"/organismes/{org.siret}/verification",
                {"version": version_of(markup), "checked": "y", "comment": "RAS"}, markup)
    assert done.status_code == 302
    shown = page(rp_get(browser, cat, f"/organismes/{org.siret}/historique"))
    assert f"le {TODAY.strftime('%d/%m/%Y')}" in shown
    # Checked two years ago: the reminder goes to the record's address.
    address = f"of-{uuid.uuid4().hex[:6]}@example.test"
    with cat.app.app_context():
        db = cat.app.extensions["shell.db"]
        record = db.session.query(Organisation).filter_by(siret=org.siret).one()
        record.checked_at = record.checked_at - timedelta(days=800)
        record.email = address
        db.session.commit()
    mod = moderator(app, cat)
    queue = rp_get(mod, cat, "/moderation").text
    assert post(mod, cat, "/moderation/rappels", {}, queue).status_code == 302
    assert any("vérifiez la fiche" in s for s, _ in mails(cat, address))


# ---------------------------------------------------------------- rights

def test_a_lecteur_sees_everything_and_changes_nothing(app: Any, cat: RP) -> None:
    editor, org, _email = logged(app, cat, ["catalogue:editeur"])
    offer_id, _action = full_offer(editor, cat, org.siret)
    reader, _org, _email = logged(app, cat, ["catalogue:lecteur"], org=org)
    markup = rp_get(reader, cat, f"/organismes/{org.siret}/identification").text
    assert "Accès en visualisation" in html.unescape(markup) and 'name="name"' not in markup
    assert rp_get(reader, cat, f"/offres/{offer_id}").status_code == 200
    assert "Modifier la formation" not in page(rp_get(reader, cat, f"/offres/{offer_id}"))
    home = page(rp_get(reader, cat, "/"))
    refused = post(reader, cat, f"/organismes/{org.siret}/identification", {"version": "1", "name": "Piraté"}, home)
    assert refused.status_code == 403 and "Éditeur" in page(refused)
    assert post(reader, cat, f"/organismes/{org.siret}/formations/nouvelle", FORMATION, home).status_code == 403
    assert post(reader, cat, f"/offres/{offer_id}/formation", {**FORMATION, "version": "1"}, home).status_code == 403


def test_another_structures_record_and_offers_look_missing(app: Any, cat: RP) -> None:
    editor_a, org_a, _ = logged(app, cat, ["catalogue:editeur"])
    offer_id, action = full_offer(editor_a, cat, org_a.siret)
    editor_b, _org_b, _ = logged(app, cat, ["catalogue:editeur"])
    for path in (f"/offres/{offer_id}", f"/offres/{offer_id}/formation", f"/offres/{offer_id}/historique",
                 f"/offres/{offer_id}/actions/{action}", f"/organismes/{org_a.siret}/identification",
                 f"/organismes/{org_a.siret}/formations", "/offres/99999999999999999999", "/offres/abc"):
        assert rp_get(editor_b, cat, path).status_code == 404, path
    home = page(rp_get(editor_b, cat, "/"))
    assert post(editor_b, cat, f"/offres/{offer_id}/formation", {**FORMATION, "version": "1"}, home).status_code == 404
    assert rp_get(editor_b, cat, "/moderation").status_code == 403


def test_a_siege_sees_its_establishments_offers(app: Any, cat: RP) -> None:
    siege = make_structure(app, name=f"Siège {uuid.uuid4().hex[:4]}")
    etab = make_structure(app, name=f"Établissement {uuid.uuid4().hex[:4]}", siret=new_siret(siren=siege.siret[:9]))
    etab_editor, _etab, _ = logged(app, cat, ["catalogue:editeur"], org=etab)
    offer_id, _action = full_offer(etab_editor, cat, etab.siret, title="Soudure à l'arc")
    siege_editor, _siege, _ = logged(app, cat, ["catalogue:editeur"], org=siege)
    listing = page(rp_get(siege_editor, cat, f"/organismes/{siege.siret}/formations"))
    assert "Soudure à l'arc" in listing and etab.name in listing
    assert rp_get(siege_editor, cat, f"/offres/{offer_id}").status_code == 200
    home = page(rp_get(siege_editor, cat, "/"))
    assert post(siege_editor, cat, f"/offres/{offer_id}/formation", {**FORMATION, "version": "1"}, home).status_code == 403
    # The établissement does not see the siège's offers.
    siege_offer = create_offer(siege_editor, cat, siege.siret, title="Offre du siège")
    assert rp_get(etab_editor, cat, f"/offres/{siege_offer}").status_code == 404


# ---------------------------------------------------------------- offers, actions, sessions

def test_a_session_has_exactly_one_contact(app: Any, cat: RP) -> None:
    from apps.catalogue import organisations
    from apps.catalogue.models import Organisation

    browser, org, _ = logged(app, cat, ["catalogue:editeur"])
    offer_id = create_offer(browser, cat, org.siret)
    action = add_action(browser, cat, offer_id)
    with cat.app.app_context():
        db = cat.app.extensions["shell.db"]
        record = db.session.query(Organisation).filter_by(siret=org.siret).one()
        ids = [str(organisations.add_contact(db.session, record, last_name=n, phone="04 00 00 00 0" + str(i),
                                             actor="test").id) for i, n in enumerate(("Durand", "Roux"))]
        db.session.commit()
    start, end = TODAY + timedelta(days=10), TODAY + timedelta(days=40)
    path = f"/offres/{offer_id}/actions/{action}/sessions/nouvelle"
    form = rp_get(browser, cat, path).text
    assert "Durand" in form and "Roux" in form
    for contact in ({}, {"contact_id": ids}, {"contact_id": ids[0], "new_contact_name": "Lucie Martin",
                                               "new_contact_phone": "06 00 00 00 00"}):
        fields = {**session_fields(start, end, registration_city="Villeurbanne"), **contact, "version": version_of(form)}
        refused = post(browser, cat, path, fields, form)
        text_ = page(refused)
        assert refused.status_code == 422 and "un et un seul contact" in text_, contact
        assert 'value="Villeurbanne"' in text_ and start.isoformat() in text_  # the form is kept
    ok = post(browser, cat, path, {**session_fields(start, end), "contact_id": ids[1], "version": version_of(form)}, form)
    assert ok.status_code == 302
    assert "Roux" in page(rp_get(browser, cat, f"/offres/{offer_id}"))
    bad_dates = post(browser, cat, path, {**session_fields(end, start), "contact_id": ids[0],
                                          "version": offer_version(browser, cat, offer_id)}, form)
    assert bad_dates.status_code == 422 and "postérieure" in page(bad_dates)
    for far in (date(9999, 12, 31), date(1, 1, 1)):  # they parse, then overflow any date arithmetic
        dates = session_fields(start, far) if far.year > 2000 else session_fields(far, end)
        refused = post(browser, cat, path, {**dates,
                                            "contact_id": ids[0], "version": offer_version(browser, cat, offer_id)}, form)
        assert refused.status_code == 422 and "Saisissez une date entre le 01/01/2000 et le 31/12/2100" in page(refused)
    searched = requests.get(f"{cat.url}/recherche", params={"du": "9999-12-31"}, timeout=10)
    assert searched.status_code == 200 and "Date incorrecte" in page(searched)


def test_duplicate_a_session_then_set_its_dates(app: Any, cat: RP) -> None:
    browser, org, _ = logged(app, cat, ["catalogue:editeur"])
    offer_id, action = full_offer(browser, cat, org.siret)
    markup = rp_get(browser, cat, f"/offres/{offer_id}").text
    session_key = re.search(rf"/offres/{offer_id}/actions/{action}/sessions/([0-9a-f]+)/dupliquer", markup).group(1)  # type: ignore[union-attr]
    copied = post(browser, cat, f"/offres/{offer_id}/actions/{action}/sessions/{session_key}/dupliquer",
                  {"version": version_of(markup)}, markup)
    assert copied.status_code == 302 and "/sessions/" in copied.headers["Location"]
    form = rp_get(browser, cat, copied.headers["Location"].replace(cat.url, "")).text
    assert "Lucie Martin" in form  # the copy keeps its contact
    later = TODAY + timedelta(days=400)
    saved = browser.post(copied.headers["Location"] if copied.headers["Location"].startswith("http")
                         else f"{cat.url}{copied.headers['Location']}",
                         data={"csrf_token": csrf_of(form), **session_fields(later, later + timedelta(days=30),
                               new_contact_name="Lucie Martin", new_contact_phone="04 76 00 00 00"),
                               "version": version_of(form)}, allow_redirects=False)
    assert saved.status_code == 302
    shown = page(rp_get(browser, cat, f"/offres/{offer_id}"))
    assert later.strftime("%d/%m/%Y") in shown and shown.count("Dupliquer") == 2


def test_a_stale_offer_save_is_a_conflict_with_the_input_kept(app: Any, cat: RP) -> None:
    browser, org, _ = logged(app, cat, ["catalogue:editeur"])
    offer_id = create_offer(browser, cat, org.siret)
    form = rp_get(browser, cat, f"/offres/{offer_id}/formation").text
    first = post(browser, cat, f"/offres/{offer_id}/formation", {**FORMATION, "title": "Premier", "version": version_of(form)}, form)
    assert first.status_code == 302
    second = post(browser, cat, f"/offres/{offer_id}/formation", {**FORMATION, "title": "Second tapé", "version": version_of(form)},
                  form)
    assert second.status_code == 409 and "Second tapé" in page(second)


def test_certification_from_the_referential_fills_title_and_codes(app: Any, cat: RP) -> None:
    found = page(requests.get(f"{cat.url}/referentiel", params={"type": "certification", "q": "maçon"}, timeout=10))
    assert "Titre professionnel maçon" in found and "CAP maçon" in found
    picker = page(requests.get(f"{cat.url}/referentiel", params={"type": "certification", "q": "maçon",
                                                                 "retour": "/offres/1/formation"}, timeout=10))
    assert "/offres/1/formation?certification=titre-professionnel-macon" in picker
    elsewhere = page(requests.get(f"{cat.url}/referentiel", params={"type": "certification", "q": "maçon",
                                                                    "retour": "//evil.example/"}, timeout=10))
    assert "href=\"//evil.example" not in elsewhere and "Choisir" not in elsewhere
    by_code = page(requests.get(f"{cat.url}/referentiel", params={"type": "rome", "q": "F1703"}, timeout=10))
    assert "Maçonnerie" in by_code
    by_label = page(requests.get(f"{cat.url}/referentiel", params={"type": "nsf", "q": "batiment"}, timeout=10))
    assert "232" in by_label and "233" in by_label
    browser, org, _ = logged(app, cat, ["catalogue:editeur"])
    prefilled = page(rp_get(browser, cat, f"/organismes/{org.siret}/formations/nouvelle?certification=titre-professionnel-macon"))
    assert 'value="Titre professionnel maçon"' in prefilled and 'value="F1703"' in prefilled and 'value="232"' in prefilled
    unknown = post(browser, cat, f"/organismes/{org.siret}/formations/nouvelle", {**FORMATION, "romes": "Z9999"})
    assert unknown.status_code == 422 and "inconnu du référentiel" in page(unknown)
    certifying = post(browser, cat, f"/organismes/{org.siret}/formations/nouvelle", {**FORMATION, "certifying": "oui"})
    assert certifying.status_code == 422 and "choisissez-la dans le référentiel" in page(certifying)


# ---------------------------------------------------------------- moderation and the public

def test_moderation_pending_is_not_public_and_a_return_keeps_the_published_version(app: Any, cat: RP) -> None:
    word = f"zythologie{uuid.uuid4().hex[:5]}"
    browser, org, email = logged(app, cat, ["catalogue:editeur"])
    offer_id, _action = full_offer(browser, cat, org.siret, title=f"Brasserie {word}")
    assert any("modification enregistrée" in s for s, _ in mails(cat, email))
    assert "Aucune formation" in search(cat, q=word)
    mod = moderator(app, cat)
    assert f"Brasserie {word}" in page(rp_get(mod, cat, "/moderation"))
    assert publish(mod, cat, offer_id).status_code == 302
    assert f"Brasserie {word}" in search(cat, q=word)
    assert any("offre publiée" in s for s, _ in mails(cat, email))
    # A change waits for the moderator: the published title stays public.
    form = rp_get(browser, cat, f"/offres/{offer_id}/formation").text
    changed = post(browser, cat, f"/offres/{offer_id}/formation",
                   {**FORMATION, "title": f"Cervoiserie {word}", "version": version_of(form)}, form)
    assert changed.status_code == 302
    assert f"Brasserie {word}" in search(cat, q=word) and "Cervoiserie" not in search(cat, q=word)
    markup = rp_get(mod, cat, f"/offres/{offer_id}").text
    empty = post(mod, cat, f"/offres/{offer_id}/renvoyer", {"version": version_of(markup), "comment": ""}, markup)
    assert empty.status_code == 422
    returned = post(mod, cat, f"/offres/{offer_id}/renvoyer",
                    {"version": version_of(markup), "comment": "Précisez le public visé."}, markup)
    assert returned.status_code == 302
    assert f"Brasserie {word}" in search(cat, q=word) and "Cervoiserie" not in search(cat, q=word)
    assert any("Précisez le public visé." in body for s, body in mails(cat, email) if "corriger" in s)
    offer_page = page(rp_get(browser, cat, f"/offres/{offer_id}"))
    assert "Renvoyée pour correction" in offer_page and "Précisez le public visé." in offer_page
    # The editor fixes and resubmits; the moderator publishes the new title.
    form = rp_get(browser, cat, f"/offres/{offer_id}/formation").text
    post(browser, cat, f"/offres/{offer_id}/formation", {**FORMATION, "title": f"Cervoiserie {word}",
                                                          "public_info": "", "version": version_of(form)}, form)
    assert publish(mod, cat, offer_id).status_code == 302
    assert f"Cervoiserie {word}" in search(cat, q=word)
    history = page(rp_get(browser, cat, f"/offres/{offer_id}/historique"))
    assert "Version 3 — Publiée" in history and "Version 2 — Renvoyée pour correction" in history
    assert "Formation › Intitulé" in history and f"Brasserie {word}" in history and "Précisez le public visé." in history


def test_every_offer_save_mails_a_confirmation_and_an_unchanged_one_is_not_saved(app: Any, cat: RP) -> None:
    """Seed 004: "À chaque enregistrement, vous recevez un mail de confirmation ainsi que nos services",
    and "Vous ne pouvez enregistrer que si vous avez fait des modifications": every save into the
    pending version mails the editor and the Carif-Oref, a save that changes nothing stores and mails nothing."""
    title = f"Tournage fraisage {uuid.uuid4().hex[:6]}"
    browser, org, email = logged(app, cat, ["catalogue:editeur"])

    def saved() -> tuple[int, int]:
        return tuple(sum(subject == f"Catalogue : modification enregistrée — {title}"  # type: ignore[return-value]
                         for subject, _ in mails(cat, who))
                     for who in (email, cat.app.config["MODERATION_EMAIL"]))

    offer_id, action = full_offer(browser, cat, org.siret, title=title)  # formation, action, session: 3 saves
    assert saved() == (3, 3)
    unchanged = rp_get(browser, cat, f"/offres/{offer_id}/formation").text
    kept = post(browser, cat, f"/offres/{offer_id}/formation",
                {**FORMATION, "title": title, "version": version_of(unchanged)}, unchanged)
    assert kept.status_code == 302 and saved() == (3, 3)
    assert "Aucune modification" in page(rp_get(browser, cat, f"/offres/{offer_id}"))
    # Published, then saved unchanged: nothing reopens, the queue does not see it.
    mod = moderator(app, cat)
    assert publish(mod, cat, offer_id).status_code == 302
    form = rp_get(browser, cat, f"/offres/{offer_id}/formation").text
    post(browser, cat, f"/offres/{offer_id}/formation", {**FORMATION, "title": title, "version": version_of(form)}, form)
    assert saved() == (3, 3) and title not in page(rp_get(mod, cat, "/moderation"))
    assert "Version 2" not in page(rp_get(browser, cat, f"/offres/{offer_id}/historique"))
    # A real change opens version 2 and is confirmed, and so is each later save into it.
    form = rp_get(browser, cat, f"/offres/{offer_id}/formation").text
    post(browser, cat, f"/offres/{offer_id}/formation",
         {**FORMATION, "title": title, "prerequisites": "Lire un plan", "version": version_of(form)}, form)
    assert add_session(browser, cat, offer_id, action, TODAY + timedelta(days=200),
                       TODAY + timedelta(days=260)).status_code == 302
    assert saved() == (5, 5) and title in page(rp_get(mod, cat, "/moderation"))


def test_the_moderation_queue_filters_by_status_and_text_and_counts_what_it_filters(app: Any, cat: RP) -> None:
    tag = uuid.uuid4().hex[:8]
    editor, org, _ = logged(app, cat, ["catalogue:editeur"], org=make_structure(app, name=f"Organisme file {tag}"))
    other, other_org, _ = logged(app, cat, ["catalogue:editeur"])
    mod = moderator(app, cat)
    waiting, _ = full_offer(editor, cat, org.siret, title=f"Attente {tag}")
    online, _ = full_offer(editor, cat, org.siret, title=f"En ligne {tag}")
    back, _ = full_offer(editor, cat, org.siret, title=f"Retour {tag}")
    full_offer(other, cat, other_org.siret, title=f"Ailleurs {uuid.uuid4().hex[:6]}")  # outside every filter below
    assert publish(mod, cat, online).status_code == 302
    markup = rp_get(mod, cat, f"/offres/{back}").text
    assert post(mod, cat, f"/offres/{back}/renvoyer", {"version": version_of(markup), "comment": "Dates ?"},
                markup).status_code == 302

    def queue(**params: str) -> tuple[str, list[str]]:
        response = mod.get(f"{cat.url}/moderation", params=params, allow_redirects=False)
        assert response.status_code == 200
        markup = page(response)
        return markup, re.findall(r">((?:Attente|En ligne|Retour|Ailleurs) [0-9a-f]+)</a>", markup)

    # The counts beside each status follow the text filter (organisation name, SIRET or title).
    for words in (tag, org.siret, f"file {tag}"):
        markup, rows = queue(q=words)
        assert ("En attente de validation (1)" in markup and "Renvoyées pour correction (1)" in markup
                and "Publiées (1)" in markup), words
        assert rows == [f"Attente {tag}"], words
    assert queue(statut="returned", q=tag)[1] == [f"Retour {tag}"]
    assert queue(statut="published", q=tag)[1] == [f"En ligne {tag}"]
    markup, rows = queue(statut="published", q=f"Retour {tag}")
    assert rows == [] and "Rien à afficher." in markup and "Renvoyées pour correction (1)" in markup and "Publiées (0)" in markup
    markup, rows = queue(statut="n'importe quoi", q=tag)  # an unknown status is the default one
    assert rows == [f"Attente {tag}"] and 'aria-current="page">En attente de validation (1)' in markup
    # Unfiltered, the counts hold the other organisation's pending offer too.
    assert int(re.search(r"En attente de validation \((\d+)\)", queue()[0]).group(1)) >= 2  # type: ignore[union-attr]


def test_an_incomplete_offer_cannot_be_published(app: Any, cat: RP) -> None:
    browser, org, _ = logged(app, cat, ["catalogue:editeur"])
    offer_id = create_offer(browser, cat, org.siret)
    mod = moderator(app, cat)
    assert publish(mod, cat, offer_id).status_code == 302
    assert "aucune action" in page(rp_get(mod, cat, f"/offres/{offer_id}"))
    assert "Publiée" not in page(rp_get(mod, cat, f"/offres/{offer_id}/historique"))


def test_public_search_folds_accents_and_plurals_and_filters(app: Any, cat: RP) -> None:
    tag = uuid.uuid4().hex[:6]
    browser, org, _ = logged(app, cat, ["catalogue:editeur"])
    mod = moderator(app, cat)
    now_id, _ = full_offer(browser, cat, org.siret, title=f"Électricité des bâtiments {tag}",
                           sessions=[(TODAY + timedelta(days=60), TODAY + timedelta(days=90))])
    past_id, _ = full_offer(browser, cat, org.siret, title=f"Maçonnerie générale {tag}",
                            sessions=[(TODAY - timedelta(days=300), TODAY - timedelta(days=200))])
    soon_id = create_offer(browser, cat, org.siret, title=f"Électriciens habilités {tag}")
    action = add_action(browser, cat, soon_id, city="Lyon", postal_code="69003", entry_mode="permanentes")
    add_session(browser, cat, soon_id, action, TODAY - timedelta(days=5), TODAY + timedelta(days=5))
    for offer_id in (now_id, past_id, soon_id):
        assert publish(mod, cat, offer_id).status_code == 302
    # Accents and plurals, both ways.
    for query in (f"electricite batiment {tag}", f"ÉLECTRICITÉS {tag}", f"bâtiments {tag}"):
        assert f"Électricité des bâtiments {tag}" in search(cat, q=query), query
    # Sorted by next session start: the current Lyon session first.
    found = search(cat, q=tag)
    assert found.index(f"Électriciens habilités {tag}") < found.index(f"Électricité des bâtiments {tag}")
    # Place: city, postal code, département.
    assert f"Électricité des bâtiments {tag}" in search(cat, q=tag, lieu="grenoble")
    assert f"Électricité des bâtiments {tag}" in search(cat, q=tag, lieu="38")
    assert "Électricité des bâtiments" not in search(cat, q=tag, lieu="69003")
    assert f"Électriciens habilités {tag}" in search(cat, q=tag, lieu="69003")
    # Dates, entry mode.
    later = (TODAY + timedelta(days=50)).isoformat()
    dated = search(cat, q=tag, du=later)
    assert f"Électricité des bâtiments {tag}" in dated and "Électriciens habilités" not in dated
    assert "Électricité des bâtiments" not in search(cat, q=tag, au=(TODAY + timedelta(days=20)).isoformat())
    assert "Électricité des bâtiments" not in search(cat, q=tag, entree="permanentes")
    assert "Aucune formation" in search(cat, q=tag, certifiante="oui")
    assert "Date incorrecte" in search(cat, q=tag, du="31/12/2027")
    # A past-only action is not current: hidden by default, shown (as past) on request.
    assert "Maçonnerie" not in search(cat, q=f"maconneries {tag}")
    past = search(cat, q=f"maconneries {tag}", passees="1")
    assert f"Maçonnerie générale {tag}" in past and "Pas de session à venir" in past
    # The public page, without login.
    public_id = re.search(r'/formations/(\d+)">Électricité des bâtiments', found).group(1)  # type: ignore[union-attr]
    public = requests.get(f"{cat.url}/formations/{public_id}", timeout=10)
    assert public.status_code == 200 and "Locaux accessibles" in page(public) and "Lucie Martin" in page(public)
    assert requests.get(f"{cat.url}/formations/99999999", timeout=10).status_code == 404



@pytest.mark.parametrize("value", ["²", "٣", "9" * 40, "-1", "0"])
def test_public_search_takes_any_page_number(cat: RP, value: str) -> None:
    """"²" passed str.isdigit() then broke int() (a 500): anything but ASCII digits is page 1."""
    assert "Rechercher" in search(cat, page=value)


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
def test_public_search_takes_far_days(cat: RP, day: str) -> None:
    search(cat, du=day)
    search(cat, au=day)


def test_an_action_stops_being_current_the_day_after_its_last_session(app: Any, cat: RP) -> None:
    from apps.catalogue import search as engine

    tag = uuid.uuid4().hex[:6]
    browser, org, _ = logged(app, cat, ["catalogue:editeur"])
    offer_id, action = full_offer(browser, cat, org.siret, title=f"Sessions courtes {tag}",
                                  sessions=[(TODAY + timedelta(days=1), TODAY + timedelta(days=3))])
    add_session(browser, cat, offer_id, action, TODAY + timedelta(days=10), TODAY + timedelta(days=12))
    assert publish(moderator(app, cat), cat, offer_id).status_code == 302
    with cat.app.app_context():
        db = cat.app.extensions["shell.db"]
        seen = []
        for day in (TODAY, TODAY + timedelta(days=4), TODAY + timedelta(days=13)):
            found = engine.search_actions(db.session, engine.Criteria(keywords=tag), day)
            db.session.commit()
            seen.append([hit.next_start for hit in found.items])
        db.session.remove()
    assert seen == [[TODAY + timedelta(days=1)], [TODAY + timedelta(days=10)], []]
    assert f"Sessions courtes {tag}" in search(cat, q=tag)  # back to today: current again


# ---------------------------------------------------------------- LHEO 2.3

LHEO_XSD = """<?xml version="1.0" encoding="UTF-8"?>
<!-- The LHEO 2.3 elements the Catalogue exports, in the order and with the cardinalities of
     lheo/lheo-schema definition/lheo-gml.xml (sequences, 1..N), the code lists as enumerations. -->
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:lheo="http://lheo.gouv.fr/2.3"
           targetNamespace="http://lheo.gouv.fr/2.3" elementFormDefault="qualified">
  <xs:simpleType name="t250"><xs:restriction base="xs:string"><xs:minLength value="1"/><xs:maxLength value="250"/></xs:restriction></xs:simpleType>
  <xs:simpleType name="t255"><xs:restriction base="xs:string"><xs:minLength value="1"/><xs:maxLength value="255"/></xs:restriction></xs:simpleType>
  <xs:simpleType name="t3000"><xs:restriction base="xs:string"><xs:minLength value="1"/><xs:maxLength value="3000"/></xs:restriction></xs:simpleType>
  <xs:simpleType name="t50"><xs:restriction base="xs:string"><xs:minLength value="1"/><xs:maxLength value="50"/></xs:restriction></xs:simpleType>
  <xs:simpleType name="code5"><xs:restriction base="xs:string"><xs:length value="5"/></xs:restriction></xs:simpleType>
  <xs:simpleType name="day"><xs:restriction base="xs:string"><xs:pattern value="\\d{8}"/></xs:restriction></xs:simpleType>
  <xs:simpleType name="bool"><xs:restriction base="xs:token"><xs:enumeration value="0"/><xs:enumeration value="1"/></xs:restriction></xs:simpleType>
  <xs:complexType name="code5ref"><xs:simpleContent><xs:extension base="lheo:code5">
    <xs:attribute name="ref" type="xs:string"/></xs:extension></xs:simpleContent></xs:complexType>
  <xs:complexType name="adresse"><xs:sequence>
    <xs:element name="ligne" type="lheo:t50" maxOccurs="4"/>
    <xs:element name="codepostal" type="lheo:code5"/>
    <xs:element name="ville" type="lheo:t50"/></xs:sequence></xs:complexType>
  <xs:complexType name="coordonnees"><xs:sequence>
    <xs:element name="nom" type="lheo:t50" minOccurs="0"/>
    <xs:element name="adresse" type="lheo:adresse" minOccurs="0"/>
    <xs:element name="telfixe" minOccurs="0"><xs:complexType><xs:sequence>
      <xs:element name="numtel" type="xs:string" maxOccurs="3"/></xs:sequence></xs:complexType></xs:element>
    <xs:element name="courriel" type="xs:string" minOccurs="0"/></xs:sequence></xs:complexType>
  <xs:complexType name="wrapped"><xs:sequence><xs:element name="coordonnees" type="lheo:coordonnees"/></xs:sequence></xs:complexType>
  <xs:element name="lheo"><xs:complexType><xs:sequence>
    <xs:element name="offres"><xs:complexType><xs:sequence>
      <xs:element name="formation" maxOccurs="unbounded"><xs:complexType><xs:sequence>
        <xs:element name="domaine-formation"><xs:complexType><xs:sequence>
          <xs:element name="code-FORMACODE" type="lheo:code5ref" minOccurs="0" maxOccurs="5"/>
          <xs:element name="code-NSF" minOccurs="0" maxOccurs="3"><xs:simpleType><xs:restriction base="xs:string"><xs:length value="3"/></xs:restriction></xs:simpleType></xs:element>
          <xs:element name="code-ROME" type="lheo:code5ref" minOccurs="0" maxOccurs="5"/></xs:sequence></xs:complexType></xs:element>
        <xs:element name="intitule-formation" type="lheo:t255"/>
        <xs:element name="objectif-formation" type="lheo:t3000"/>
        <xs:element name="resultats-attendus" type="lheo:t3000"/>
        <xs:element name="contenu-formation" type="lheo:t3000"/>
        <xs:element name="certifiante" type="lheo:bool"/>
        <xs:element name="contact-formation" type="lheo:wrapped"/>
        <xs:element name="parcours-de-formation"><xs:simpleType><xs:restriction base="xs:token">
          <xs:enumeration value="1"/><xs:enumeration value="2"/><xs:enumeration value="3"/><xs:enumeration value="4"/></xs:restriction></xs:simpleType></xs:element>
        <xs:element name="code-niveau-entree"><xs:simpleType><xs:restriction base="xs:token"><xs:pattern value="[0-8]"/></xs:restriction></xs:simpleType></xs:element>
        <xs:element name="certification" minOccurs="0" maxOccurs="5"><xs:complexType><xs:sequence>
          <xs:element name="code-RNCP" type="xs:string" minOccurs="0"/><xs:element name="code-CERTIFINFO" type="xs:string" minOccurs="0"/></xs:sequence></xs:complexType></xs:element>
        <xs:element name="action" maxOccurs="unbounded"><xs:complexType><xs:sequence>
          <xs:element name="rythme-formation" type="lheo:t3000"/>
          <xs:element name="code-public-vise" type="lheo:code5ref" maxOccurs="10"/>
          <xs:element name="info-public-vise" type="lheo:t3000" minOccurs="0"/>
          <xs:element name="niveau-entree-obligatoire" type="lheo:bool"/>
          <xs:element name="modalites-alternance" type="lheo:t3000"/>
          <xs:element name="modalites-enseignement"><xs:simpleType><xs:restriction base="xs:token">
            <xs:enumeration value="0"/><xs:enumeration value="1"/><xs:enumeration value="2"/></xs:restriction></xs:simpleType></xs:element>
          <xs:element name="conditions-specifiques" type="lheo:t3000"/>
          <xs:element name="prise-en-charge-frais-possible" type="lheo:bool"/>
          <xs:element name="lieu-de-formation" type="lheo:wrapped"/>
          <xs:element name="modalites-entrees-sorties" type="lheo:bool"/>
          <xs:element name="session" maxOccurs="unbounded"><xs:complexType><xs:sequence>
            <xs:element name="periode"><xs:complexType><xs:sequence>
              <xs:element name="debut" type="lheo:day"/><xs:element name="fin" type="lheo:day"/></xs:sequence></xs:complexType></xs:element>
            <xs:element name="adresse-inscription"><xs:complexType><xs:sequence>
              <xs:element name="adresse" type="lheo:adresse"/></xs:sequence></xs:complexType></xs:element>
            <xs:element name="etat-recrutement" minOccurs="0"><xs:simpleType><xs:restriction base="xs:token">
              <xs:enumeration value="1"/><xs:enumeration value="2"/><xs:enumeration value="3"/></xs:restriction></xs:simpleType></xs:element>
          </xs:sequence><xs:attribute name="numero" type="xs:string"/></xs:complexType></xs:element>
          <xs:element name="restauration" type="lheo:t250" minOccurs="0"/>
          <xs:element name="hebergement" type="lheo:t250" minOccurs="0"/>
          <xs:element name="transport" type="lheo:t250" minOccurs="0"/>
          <xs:element name="acces-handicapes" type="lheo:t250" minOccurs="0"/>
        </xs:sequence><xs:attribute name="numero" type="xs:string"/></xs:complexType></xs:element>
        <xs:element name="organisme-formation-responsable"><xs:complexType><xs:sequence>
          <xs:element name="numero-activite"><xs:simpleType><xs:restriction base="xs:string"><xs:length value="11"/></xs:restriction></xs:simpleType></xs:element>
          <xs:element name="SIRET-organisme-formation"><xs:complexType><xs:sequence>
            <xs:element name="SIRET"><xs:simpleType><xs:restriction base="xs:string"><xs:pattern value="\\d{14}"/></xs:restriction></xs:simpleType></xs:element>
          </xs:sequence></xs:complexType></xs:element>
          <xs:element name="nom-organisme" type="lheo:t250"/>
          <xs:element name="raison-sociale" type="lheo:t250"/>
          <xs:element name="coordonnees-organisme" type="lheo:wrapped"/>
          <xs:element name="contact-organisme" type="lheo:wrapped"/>
        </xs:sequence></xs:complexType></xs:element>
      </xs:sequence><xs:attribute name="numero" type="xs:string"/><xs:attribute name="datemaj" type="xs:string"/></xs:complexType></xs:element>
    </xs:sequence></xs:complexType></xs:element>
  </xs:sequence></xs:complexType></xs:element>
</xs:schema>
"""


def test_lheo_export_validates_against_the_xsd_and_holds_only_published_offers(app: Any, cat: RP) -> None:
    from lxml import etree

    tag = uuid.uuid4().hex[:6]
    browser, org, _ = logged(app, cat, ["catalogue:editeur"])
    mod = moderator(app, cat)
    start, end = TODAY + timedelta(days=15), TODAY + timedelta(days=75)
    published, _ = full_offer(browser, cat, org.siret, sessions=[(start, end)], title=f"Export publié & <{tag}>",
                              formacodes="24354")
    pending, _ = full_offer(browser, cat, org.siret, title=f"Export en attente {tag}")
    certified, _ = full_offer(browser, cat, org.siret, title=f"Cuisinier {tag}", certifying="oui",
                              certification_key="RNCP34095", romes="G1602", nsf="221")
    assert publish(mod, cat, published).status_code == 302
    assert publish(mod, cat, certified).status_code == 302
    response = requests.get(f"{cat.url}/lheo.xml", timeout=30)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("application/xml")
    schema = etree.XMLSchema(etree.fromstring(LHEO_XSD.encode()))
    document = etree.fromstring(response.content)
    schema.assertValid(document)
    ns = {"l": "http://lheo.gouv.fr/2.3"}
    titles = document.xpath("//l:intitule-formation/text()", namespaces=ns)
    assert f"Export publié & <{tag}>" in titles and f"Export en attente {tag}" not in titles
    formation = document.xpath(f"//l:formation[@numero='{published}']", namespaces=ns)[0]
    assert formation.xpath("string(.//l:session/l:periode/l:debut)", namespaces=ns) == start.strftime("%Y%m%d")
    assert formation.xpath("string(.//l:SIRET)", namespaces=ns) == org.siret
    assert formation.xpath("string(.//l:code-ROME)", namespaces=ns) == "F1602"
    # The Formacode codes are tagged with the version of the bundled referential (a 2024 Certif Info
    # export: Formacode V13), the one the referential says it holds.
    from apps.catalogue import referential

    formacode = formation.xpath(".//l:code-FORMACODE", namespaces=ns)
    assert [(c.text, c.get("ref")) for c in formacode] == [("24354", "V13")]
    assert referential.FORMACODE_VERSION == "V13" and referential.label("formacode", "24354") == "Électronique"
    assert pending  # created, never published
    # A certification picked from the referential is exported with its RNCP and Certif Info numbers.
    with_certification = document.xpath(f"//l:formation[@numero='{certified}']", namespaces=ns)[0]
    assert with_certification.xpath("string(.//l:certification/l:code-RNCP)", namespaces=ns) == "34095"
    assert with_certification.xpath("string(.//l:certification/l:code-CERTIFINFO)", namespaces=ns) == "106425"


# ---------------------------------------------------------------- SAM's API

_TOKENS: dict[str, str] = {}


def service_token(app: Any, live_server: str, scope: str) -> str:
    """A client_credentials token from the live IdP, as SAM gets one."""
    if scope not in _TOKENS:
        from idp.core.security import SYSTEM
        from idp.extensions import db
        from idp.oidc.clients import ClientSpec, create_client

        client_id = f"svc-{uuid.uuid4().hex[:6]}"
        with app.app_context():
            _client, secret = create_client(db.session, ClientSpec(
                name="Service (tests Catalogue)", client_id=client_id, client_secret="s" * 32, redirect_uris=[],
                grant_types=["client_credentials"], scope=scope), SYSTEM)
            db.session.commit()
        response = requests.post(f"{live_server}/oauth/token", data={"grant_type": "client_credentials", "scope": scope},
                                 auth=(client_id, "s" * 32), timeout=10)
        assert response.status_code == 200, response.text
        _TOKENS[scope] = response.json()["access_token"]
    return _TOKENS[scope]


def forged_token(app: Any, live_server: str, scope: str) -> str:
    """A token signed by the IdP's key for audience "catalogue" without `catalogue:write` (the IdP
    never issues one: it names the catalogue only for that scope)."""
    from joserfc import jwt

    from idp.extensions import db

    with app.app_context():
        issuer = app.extensions["token_issuer"]
        for alg in ("ES256", "RS256", "PS256"):
            try:
                kid, key = issuer.keyring.signing_key(db.session, alg)
            except LookupError:
                continue
            now = int(time.time())
            return jwt.encode({"alg": alg, "kid": kid}, {"iss": live_server, "aud": ["catalogue"], "exp": now + 300,
                                                         "iat": now, "sub": "forged", "client_id": "forged",
                                                         "scope": scope}, key)
    raise AssertionError("no signing key")


def award(siret: str, award_id: str, **overrides: Any) -> dict[str, Any]:
    start = TODAY + timedelta(days=90)
    return {"award_id": award_id, "siret": siret, "organisation_name": "Lauréat SAM", "title": "Maçon VRD",
            "objectives": "Réaliser des ouvrages de voirie et réseaux divers.", "content": "Terrassement, canalisations.",
            "prerequisites": "Savoir lire et compter.", "accessibility": "Accessible PMR", "formacode": "42093",
            "hours": 600, "contact": {"name": "Service formation", "phone": "04 72 00 00 00"},
            "sites": [{"name": "Plateau technique", "address": "5 rue du Port", "postal_code": "69007", "city": "Lyon",
                       "sessions": [{"start": start.isoformat(), "end": (start + timedelta(days=120)).isoformat()}]}],
            **overrides}


def test_sam_sends_an_award_twice_and_one_pending_action_exists(app: Any, live_server: str, cat: RP) -> None:
    from apps.catalogue.models import Offer, Organisation

    token = service_token(app, live_server, "catalogue:write")
    headers = {"Authorization": f"Bearer {token}"}
    siret, award_id = new_siret(), f"award-{uuid.uuid4().hex[:8]}"
    first = requests.post(f"{cat.url}/api/v1/actions", json=award(siret, award_id), headers=headers, timeout=10)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["status"] == "pending" and body["created"] is True and body["siret"] == siret
    again = requests.post(f"{cat.url}/api/v1/actions", json=award(siret, award_id, title="Autre"), headers=headers,
                          timeout=10)
    assert again.status_code == 200 and again.json()["id"] == body["id"] and again.json()["created"] is False
    with cat.app.app_context():
        db = cat.app.extensions["shell.db"]
        record = db.session.query(Organisation).filter_by(siret=siret).one()
        assert record.name == "Lauréat SAM"
        assert db.session.query(Offer).filter_by(organisation_id=record.id).count() == 1
        offer = db.session.get(Offer, body["id"])
        action = offer.document["actions"][0]
        assert action["sessions"][0]["contact"]["name"] == "Service formation" and action["accessibility"] == "Accessible PMR"
        db.session.remove()
    # Pending moderation: not public until a moderator publishes it.
    assert "Maçon VRD" not in requests.get(f"{cat.url}/lheo.xml", timeout=30).text
    status = requests.get(f"{cat.url}/api/v1/actions/{body['id']}", headers=headers, timeout=10)
    assert status.status_code == 200 and status.json()["status"] == "pending"


@pytest.mark.parametrize(("change", "field"), [
    ({"siret": "12345678901234"}, "siret"),
    ({"title": ""}, "title"),
    ({"contact": None}, "contact"),
    ({"contact": {"name": "Sans moyen de contact"}}, "contact"),
    ({"sites": []}, "sites"),
    ({"sites": [{"address": "1 rue", "postal_code": "ABCDE", "city": "Lyon",
                 "sessions": [{"start": "2027-02-01", "end": "2027-01-01"}]}]}, "sites[0].sessions[0].end"),
    ({"formacode": "00000"}, "formacodes"),
    ({"hours": "beaucoup"}, "hours"),
])
def test_a_bad_award_is_a_422_problem_naming_the_field(app: Any, live_server: str, cat: RP, change: dict[str, Any],
                                                        field: str) -> None:
    token = service_token(app, live_server, "catalogue:write")
    response = requests.post(f"{cat.url}/api/v1/actions", json={**award(new_siret(), f"bad-{uuid.uuid4().hex[:6]}"), **change},
                             headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 422 and response.headers["Content-Type"] == "application/problem+json"
    assert field in [e["field"] for e in response.json()["errors"]], response.json()


def test_the_api_refuses_bad_tokens_and_bodies_with_problems(app: Any, live_server: str, cat: RP) -> None:
    url = f"{cat.url}/api/v1/actions"
    body = award(new_siret(), "x")
    none = requests.post(url, json=body, timeout=10)
    assert none.status_code == 401 and none.headers["Content-Type"] == "application/problem+json"
    other_audience = service_token(app, live_server, "repernet:read")
    refused = requests.post(url, json=body, headers={"Authorization": f"Bearer {other_audience}"}, timeout=10)
    assert refused.status_code == 401 and refused.json()["status"] == 401
    no_scope = forged_token(app, live_server, "catalogue:read")
    forbidden = requests.post(url, json=body, headers={"Authorization": f"Bearer {no_scope}"}, timeout=10)
    assert forbidden.status_code == 403 and "catalogue:write" in forbidden.json()["detail"]
    token = {"Authorization": f"Bearer {service_token(app, live_server, 'catalogue:write')}"}
    not_json = requests.post(url, data="award_id=x", headers={**token, "Content-Type": "application/x-www-form-urlencoded"},
                             timeout=10)
    assert not_json.status_code == 415
    broken = requests.post(url, data="{nope", headers={**token, "Content-Type": "application/json"}, timeout=10)
    assert broken.status_code == 400 and broken.headers["Content-Type"] == "application/problem+json"
    listed = requests.post(url, json=[1, 2], headers=token, timeout=10)
    assert listed.status_code == 422


# ---------------------------------------------------------------- the demo of `make run`

def demo_structure(app: Any, siret: str, name: str) -> Org:
    """The structure `idp demo seed` creates (the IdP links an établissement to its SIREN's siège)."""
    from idp.core.structures import find_by_siret
    from idp.extensions import db

    with app.app_context():
        found = find_by_siret(db.session, siret)
        db.session.remove()
    return Org(found.siret, found.name, found.id) if found else make_structure(app, name=name, siret=siret)


def test_the_demo_seeds_issue_14_s_offers_and_queue_once(app: Any, live_server: str,
                                                        tmp_path_factory: pytest.TempPathFactory) -> None:
    """Issue 14 §8: Formation Plus with two published offers (one pending change), its établissement
    with one, the Région's moderator with a queue — seeded into a fresh database as `make run` does."""
    from lxml import etree

    from apps.catalogue.demo import ETABLISSEMENT, SIEGE, seed_when_empty

    siege = demo_structure(app, SIEGE, "Formation Plus")
    demo_structure(app, ETABLISSEMENT, "Formation Plus — établissement de Grenoble")
    served = serve_rp(app, live_server, tmp_path_factory.mktemp("catalogue-demo"), "catalogue")
    demo = next(served)
    try:
        seed_when_empty(demo.app)
        seed_when_empty(demo.app)  # a second start changes nothing
        # The public sees the three published offers, the published title of the one being changed,
        # and neither the pending change nor the offer awaiting its first validation.
        assert "Titre professionnel maçon" in search(demo, q="macons")
        secretariat = search(demo, q="secretariat", passees="1")
        assert "Secrétariat et bureautique" in secretariat and "Secrétariat, accueil" not in secretariat
        assert "Électricité du bâtiment" in search(demo, q="electricite", lieu="38")
        assert "Aucune formation" in search(demo, q="remise niveau", passees="1")
        document = etree.fromstring(requests.get(f"{demo.url}/lheo.xml", timeout=30).content)
        etree.XMLSchema(etree.fromstring(LHEO_XSD.encode())).assertValid(document)
        titles = document.xpath("//l:intitule-formation/text()", namespaces={"l": "http://lheo.gouv.fr/2.3"})
        assert sorted(titles) == ["Secrétariat et bureautique", "Titre professionnel maçon", "Électricité du bâtiment"]
        # The siège's editor sees its four offers and its établissement's one.
        editor, _org, _email = logged(app, demo, ["catalogue:editeur", "catalogue:lecteur"], org=siege)
        listing = page(rp_get(editor, demo, f"/organismes/{SIEGE}/formations"))
        for title in ("Titre professionnel maçon", "Secrétariat, accueil et bureautique",
                      "Remise à niveau en français et mathématiques", "Électricité du bâtiment"):
            assert title in listing, title
        assert "Formation Plus — établissement de Grenoble" in listing
        # The moderator's queue: the pending change and the new offer, the published ones, a request.
        mod = moderator(app, demo)
        queue = page(rp_get(mod, demo, "/moderation"))
        assert "En attente de validation (2)" in queue and "Publiées (2)" in queue and "Renvoyées pour correction (0)" in queue
        assert "Secrétariat, accueil et bureautique" in queue and "Remise à niveau en français et mathématiques" in queue
        assert "Notre numéro de déclaration d'activité a changé" in queue
        published = page(rp_get(mod, demo, "/moderation?statut=published"))
        assert "Titre professionnel maçon" in published and "Électricité du bâtiment" in published
        offer_id = re.search(r'/offres/(\d+)">Secrétariat, accueil', queue).group(1)  # type: ignore[union-attr]
        history = page(rp_get(mod, demo, f"/offres/{offer_id}/historique"))
        assert "Version 1 — Publiée" in history and "Version 2 — En attente de validation" in history
    finally:
        next(served, None)
