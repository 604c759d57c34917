# ruff: noqa: F811 - pytest fixtures imported from tests/rp_helpers.py are parameters here
"""The apps in English (issue 16 §8) over HTTP: REPERNET, SAM and the Catalogue answer in English
with `Accept-Language: en`, with the language switcher's cookie (the portal's: a choice made on
the portal follows the person to the apps) or `?ui_locales=en`; French stays the default; the
shell's header, error pages, form messages and flashes follow; mails stay French."""

from __future__ import annotations

import html
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
import requests
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from tests.conftest import Mailbox, forms, new_siret
from tests.rp_helpers import (
    RP,
    catalogue,  # noqa: F401 - the live-server fixture
    csrf_of,
    make_person,
    member_of,
    new_browser,
    page_form,
    repernet,  # noqa: F401 - the live-server fixture
    rp_get,
    rp_login,
)
from tests.test_catalogue import full_offer, moderator
from tests.test_catalogue import publish as publish_offer
from tests.test_repernet import filled, local_record, registration
from tests.test_sam_helpers import buyer, published, sam_site  # noqa: F401 - sam_site: a fixture

ROOT = Path(__file__).resolve().parent.parent
CATALOGS = [ROOT / scope / "translations" / "en" / "LC_MESSAGES" / "messages.po"
            for scope in ("shared", "apps/repernet", "apps/sam", "apps/catalogue")]


def text(response: requests.Response) -> str:
    return html.unescape(response.text)


def english_browser() -> requests.Session:
    browser = requests.Session()
    browser.headers["Accept-Language"] = "en-GB,en;q=0.9"
    return browser


def with_cookie(lang: str = "en") -> requests.Session:
    """A French browser that chose `lang` with the switcher (the portal's cookie, on this host)."""
    browser = new_browser()
    browser.cookies.set("portail_lang", lang, domain="127.0.0.1", path="/")
    return browser


def _compile(po: Path) -> None:
    mo = po.with_suffix(".mo")
    if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
        return
    fd, tmp = tempfile.mkstemp(dir=mo.parent, suffix=".mo.tmp")
    try:
        with os.fdopen(fd, "wb") as out, open(po, "rb") as source:
            write_mo(out, read_po(source, locale="en"))
        os.replace(tmp, mo)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def compiled(*rps: RP) -> None:
    """`make test` compiles the catalogs first; a bare pytest run may find stale ones: rebuild them
    and let the apps load them again."""
    for po in CATALOGS:
        _compile(po)
    for rp in rps:
        with rp.app.app_context():
            rp.app.extensions["babel"].instance.domain_instance.cache.clear()


@pytest.fixture
def rep(repernet: RP) -> RP:
    compiled(repernet)
    return repernet


@pytest.fixture
def sam_en(sam_site: RP) -> RP:
    compiled(sam_site)
    return sam_site


@pytest.fixture
def cat_en(catalogue: RP) -> RP:
    compiled(catalogue)
    return catalogue


# ---------------------------------------------------------------- the shell

def test_the_header_follows_the_browser_and_french_stays_the_default(rep: RP) -> None:
    english = english_browser().get(f"{rep.url}/", allow_redirects=False)
    assert english.status_code == 200
    page = text(english)
    assert '<html lang="en">' in page
    assert "REPERNET — the register of organisations" in page and "Log in with the portal" in page
    assert "The Région's portal: access to the training applications" in page
    assert 'lang="fr">Français</button>' in page  # the switcher offers the other language
    for accept in ("fr", "de", None):
        browser = requests.Session()
        if accept:
            browser.headers["Accept-Language"] = accept
        french = text(browser.get(f"{rep.url}/", allow_redirects=False))
        assert '<html lang="fr">' in french
        assert "REPERNET — le répertoire des structures" in french and "Se connecter avec le portail" in french
        assert 'lang="en">English</button>' in french


def test_the_switcher_keeps_the_choice_in_the_portal_s_cookie(rep: RP) -> None:
    browser = new_browser()
    page = rp_get(browser, rep, "/")
    switcher = page_form(page.text, "/langue")
    assert switcher["fields"]["next"] == "/"
    chosen = browser.post(f"{rep.url}/langue", data={"lang": "en", "next": "/"}, allow_redirects=False)
    assert chosen.status_code == 303 and chosen.headers["Location"] == "/"
    cookie = chosen.headers["Set-Cookie"]
    assert "portail_lang=en" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Log in with the portal" in text(rp_get(browser, rep, "/"))  # Accept-Language says fr: the choice wins
    # Back to French; an unknown language or an outside `next` changes nothing and stays here.
    browser.post(f"{rep.url}/langue", data={"lang": "fr", "next": "/"})
    assert "Se connecter avec le portail" in text(rp_get(browser, rep, "/"))
    odd = browser.post(f"{rep.url}/langue", data={"lang": "xx", "next": "https://evil.example/"},
                       allow_redirects=False)
    assert odd.status_code == 303 and odd.headers["Location"] == "/" and "Set-Cookie" not in odd.headers


def test_a_choice_made_on_the_portal_follows_to_the_apps(live_server: str, rep: RP) -> None:
    """The IdP's switcher sets the cookie on this host: REPERNET, on another port, reads it."""
    browser = new_browser()
    login_page = browser.get(f"{live_server}/login")
    switcher = next(f for f in forms(login_page.text) if f["action"].endswith("/langue"))
    browser.post(f"{live_server}/langue", data={**switcher["fields"], "lang": "en"})
    assert browser.cookies.get("portail_lang") == "en"
    assert "Log in with the portal" in text(rp_get(browser, rep, "/"))


def test_ui_locales_and_error_pages(rep: RP) -> None:
    assert "Log in with the portal" in text(rp_get(new_browser(), rep, "/?ui_locales=en"))
    missing = rp_get(english_browser(), rep, "/nulle-part")
    assert missing.status_code == 404
    assert "Page not found" in text(missing) and "Back to the home page" in text(missing)
    assert "Page introuvable" in text(rp_get(new_browser(), rep, "/nulle-part"))
    # APIs keep their French problems (SPEC: French by default; clients read the status and type).
    problem = english_browser().get(f"{rep.url}/api/v1/nulle-part")
    assert problem.status_code == 404 and problem.json()["title"] == "Page introuvable"


# ---------------------------------------------------------------- REPERNET

def test_registration_in_english_with_english_validation_messages(app: Any, rep: RP) -> None:
    person = make_person(app)
    browser = with_cookie()
    page = rp_login(browser, rep, person.email, path="/structures/nouvelle")
    assert page.status_code == 200
    markup = text(page)
    for expected in ("Register an organisation", "Legal identity", "Registered name (as in the SIRENE register)",
                     "Fields marked", "are required.", "What is ", "— Choose —", "Head office",
                     "Limited liability company (SARL)", "Employment and training", "Log out", "Current organisation"):
        assert expected in markup, expected
    assert "Enregistrer une structure" not in markup
    fields = page_form(page.text, "/structures/nouvelle")["fields"]
    match = re.search(r"What is (\d+) \+ (\d+)\?", markup)
    assert match
    data = {**filled(fields, "Combien font 1 + 1 ?"),
            "siret": new_siret(), "postal_code": "6900", "raison_sociale": "", "admin_email": "nope",
            "challenge_answer": str(int(match.group(1)) + int(match.group(2)))}
    refused = browser.post(f"{rep.url}/structures/nouvelle", data=data, allow_redirects=False)
    assert refused.status_code == 422
    errors = text(refused)
    assert "A postcode has 5 digits." in errors and "This field is required." in errors
    assert "Enter a valid e-mail address." in errors
    wrong = browser.post(f"{rep.url}/structures/nouvelle", allow_redirects=False,
                         data={**page_form(refused.text, "/structures/nouvelle")["fields"], "siret": "1234"})
    assert "A SIRET has 14 digits and must be valid (check digit)." in text(wrong)


def test_a_registration_in_english_ends_on_an_english_confirmation(app: Any, rep: RP, mailbox: Mailbox) -> None:
    person = make_person(app)
    browser = with_cookie()
    rp_login(browser, rep, person.email)
    fields, page = registration(browser, rep)
    question = re.search(r"What is (\d+) \+ (\d+)\?", html.unescape(page))
    assert question
    siret = new_siret()
    data = {**filled(fields, "Combien font 1 + 1 ?"), "siret": siret,
            "challenge_answer": str(int(question.group(1)) + int(question.group(2))),
            "admin_email": f"admin-{siret}@example.test"}
    done = browser.post(f"{rep.url}/structures/nouvelle", data=data)
    assert done.status_code == 200, text(done)[:2000]
    confirmation = text(done)
    assert "Organisation registered" in confirmation and "Legal documents to upload" in confirmation
    assert "Up-to-date articles of association, dated and signed" in confirmation  # association (9220)
    assert f"<strong>{data['raison_sociale']}</strong> (SIRET {siret}) is registered on the portal" in confirmation
    mailbox.wait_for(data["admin_email"])  # the IdP's mail to the account administrator


def test_a_record_its_documents_and_the_flashes_in_english(app: Any, rep: RP) -> None:
    person, org = member_of(app, ["repernet:gestionnaire", "repernet:lecteur"])
    local_record(rep, org)
    browser = english_browser()
    record = rp_login(browser, rep, person.email, path=f"/structures/{org.siret}")
    markup = text(record)
    for expected in ("Legal category", "Registered association", "Legal representative", "Account administrator",
                     "To review", "Missing", "Upload or replace the documents", "Edit the record"):
        assert expected in markup, expected
    documents = text(rp_get(browser, rep, f"/structures/{org.siret}/pieces"))
    assert "Legal documents" in documents
    assert "Date of issue" in documents and "Prefecture registration receipt" in documents
    assert re.search(r"PDF, PNG or JPEG files, \d+ MB at most", documents)
    edit_page = rp_get(browser, rep, f"/structures/{org.siret}/modifier")
    assert "Edit the record" in text(edit_page) and "Trading name" in text(edit_page)
    fields = page_form(edit_page.text, "/modifier")["fields"]
    saved = browser.post(f"{rep.url}/structures/{org.siret}/modifier",
                         data={**fields, "legal_category": "9220", "city": "Lyon 2e"})  # the parser skips selects
    assert saved.status_code == 200 and "The organisation's record is saved." in text(saved)
    upload = browser.post(f"{rep.url}/structures/{org.siret}/pieces/statuts", allow_redirects=False,
                          data={"csrf_token": csrf_of(edit_page.text)}, files={"file": ("a.txt", b"hello", "text/plain")})
    assert upload.status_code == 422 and "File type not accepted: upload a PDF, PNG or JPEG file." in text(upload)


def test_the_forbidden_page_in_english(app: Any, rep: RP) -> None:
    person, org = member_of(app, ["repernet:lecteur"])
    local_record(rep, org)
    browser = english_browser()
    rp_login(browser, rep, person.email)
    denied = rp_get(browser, rep, f"/structures/{org.siret}/modifier")
    assert denied.status_code == 403
    page = text(denied)
    assert "Access denied" in page and "This page requires the right « REPERNET — Manager »" in page
    assert "Ask your organisation's administrator on the portal" in page


# ---------------------------------------------------------------- SAM

def test_sam_s_public_pages_in_english(app: Any, sam_en: RP) -> None:
    browser, _org, _email = buyer(app, sam_en)
    cid = published(browser, sam_en, title="Formations en anglais")
    home = text(english_browser().get(f"{sam_en.url}/"))
    assert "SAM — the Région's training contracts" in home and "Open consultations" in home
    assert "Closed consultations" in home and "Consultations en cours" not in home
    listing = text(with_cookie().get(f"{sam_en.url}/consultations", params={"q": "anglais"}))
    for expected in ("Open consultations", "Keyword", "All schemes", "Search", "1 consultation for “anglais”",
                     "Published on", "deadline for tenders:", "1 lot", "Ref."):
        assert expected in listing, expected
    nothing = text(english_browser().get(f"{sam_en.url}/consultations", params={"q": "zzzqqq"}))
    assert "No open consultation matches your search." in nothing
    page = text(english_browser().get(f"{sam_en.url}/consultations/{cid}"))
    for expected in ("Deadline for questions", "Deadline for tenders", "(Paris time)", "Tender documents (DCE)",
                     "Download the tender documents", "Unit of work", "Trainee hour (HSTA)", "Open",
                     "Questions and answers", "Anyone may download them."):
        assert expected in page, expected
    assert " at " in page and "heure de Paris" not in page
    french = text(new_browser().get(f"{sam_en.url}/consultations/{cid}"))
    assert "Date limite de remise des offres" in french and "(heure de Paris)" in french


def test_a_buyer_s_page_and_flashes_in_english(app: Any, sam_en: RP) -> None:
    browser, _org, _email = buyer(app, sam_en)
    cid = published(browser, sam_en)  # in French: its own check reads the French flash
    browser.cookies.set("portail_lang", "en", domain="127.0.0.1", path="/")
    page = text(browser.get(f"{sam_en.url}/consultations/{cid}"))
    assert "Buyer's area" in page and "Publish an amendment notice" in page and "Action log" in page


# ---------------------------------------------------------------- the Catalogue

def test_the_catalogue_s_public_search_and_offer_in_english(app: Any, cat_en: RP) -> None:
    editor, org, _email = _catalogue_editor(app, cat_en)
    offer_id, _action = full_offer(editor, cat_en, org.siret, title="Électricité pour anglophones")
    assert publish_offer(moderator(app, cat_en), cat_en, offer_id).status_code == 302
    home = text(english_browser().get(f"{cat_en.url}/"))
    assert "Training offer catalogue" in home and "Search for a course" in home and "LHEO 2.3 export" in home
    found = text(with_cookie().get(f"{cat_en.url}/recherche", params={"q": "anglophones"}))
    for expected in ("Search for a course", "Keywords (title, objectives, content, training body)", "Any",
                     "1 course", "Current or upcoming", "next session on"):
        assert expected in found, expected
    assert "Incorrect date: “31/12/2027” (format yyyy-mm-dd)." in text(
        english_browser().get(f"{cat_en.url}/recherche", params={"q": "x", "du": "31/12/2027"}))
    public_id = re.search(r'/formations/(\d+)">Électricité pour anglophones', found)
    assert public_id
    offer = text(english_browser().get(f"{cat_en.url}/formations/{public_id.group(1)}"))
    for expected in ("Objectives", "Content", "Audience", "Jobseeker", "Entry and exit on fixed dates",
                     "420 hours", "Sessions", "Recruitment", "Open", "New search"):
        assert expected in offer, expected
    french = text(new_browser().get(f"{cat_en.url}/formations/{public_id.group(1)}"))
    assert "Objectifs" in french and "Demandeur d'emploi" in french and "420 heures" in french
    # Signed in: the offer's history, its differences computed in the page's language.
    history = text(editor.get(f"{cat_en.url}/offres/{offer_id}/historique", headers={"Accept-Language": "en"}))
    assert "Version 1 — Published" in history and "Course › Title" in history and "Field" in history
    assert "Formation › Intitulé" in text(editor.get(f"{cat_en.url}/offres/{offer_id}/historique"))


def _catalogue_editor(app: Any, rp: RP) -> tuple[requests.Session, Any, str]:
    person, org = member_of(app, ["catalogue:editeur", "catalogue:lecteur"])
    browser = new_browser()
    rp_login(browser, rp, person.email)
    return browser, org, person.email
