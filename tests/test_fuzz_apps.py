# ruff: noqa: F811 - pytest fixtures imported from tests/rp_helpers.py are parameters here
"""Issue 15's fuzz pass over the three apps, as the people who use them, signed in through the
real IdP: SAM's buyer (a Région with a draft and a published consultation; then, SAM's clock moved
past the deadline, the opening of the bids, their analysis, the award and the decisions), candidate
(an organisme with a response under way) and visitor; the Catalogue's editor (an offer with an action
and a session), moderator and visitor; REPERNET's gestionnaire (a record with a legal document),
instructeur and visitor. Each crawls from its entry points; every form, upload, query string and
id in a path gets the hostile values of tests/fuzz_helpers.py, and so do the Catalogue's award API
(SAM's JSON bodies), REPERNET's API, the back-channel logout receiver and the cookies. Nothing
may answer 500, reflect markup, evaluate a template or let a header through.

Buttons that end what the crawl needs (log out, delete, cancel, withdraw, submit) are left alone.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import time
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import pytest
import requests

from tests.conftest import forms, new_siret
from tests.fuzz_helpers import (
    JSON_VALUES,
    RAW_JSON_BODIES,
    SKIP_LINKS,
    TEXT_PAYLOADS,
    LiveClient,
    LiveResponse,
    check_answer,
    crawl,
    fuzz_forms,
    fuzz_paths,
    fuzz_query_strings,
    fuzz_uploads,
)
from tests.rp_helpers import (
    RP,
    catalogue,  # noqa: F401 - the live-server fixtures
    csrf_of,
    make_structure,
    member_of,
    new_browser,
    repernet,  # noqa: F401
    rp_login,
    sam,  # noqa: F401
)
from tests.test_catalogue import (
    ACTION,
    FORMATION,
    award,
    full_offer,
    moderator,
    publish,
    service_token,
    session_fields,
)
from tests.test_catalogue import logged as catalogue_person
from tests.test_repernet import PDF, RECORD, filled, gestionnaire_with_record, local_record, upload
from tests.test_sam_helpers import (
    add_lot,
    buyer,
    consultation_fields,
    create,
    post_form,
    published,
    unique_reference,
)
from tests.test_sam_response_helpers import (
    clock,
    deadline_of,
    documents_of,
    lot_ids,
    new_offer,
    ok,
    save_offer,
    signataire,
    start,
    submit,
    valid_candidature,
    valid_offer,
)

SKIP_ACTIONS = ("logout", "supprimer", "annuler", "retirer", "deposer", "/dev/")
APP_SKIP_LINKS = (*SKIP_LINKS, "/auth/")  # the header's switch and login links lead to the IdP
# Query parameters no page links to with a value, and the shell's (every app has them).
SHELL_QUERIES = {"/auth/login": ("next",), "/auth/switch": ("siret",),
                 "/auth/callback": ("error", "error_description", "state", "code"), "/": ("ui_locales",)}
APP_QUERIES = {
    "sam": {"/consultations": ("q", "dispositif", "etat", "page")},
    "catalogue": {"/recherche": ("q", "lieu", "du", "au", "certifiante", "entree", "passees", "page"),
                  "/referentiel": ("type", "q", "retour"), "/organismes": ("q", "page"),
                  "/moderation": ("statut", "q", "page")},
    "repernet": {"/structures/nouvelle": ("siret", "return_to"), "/instruction": ("a_examiner",)},
}
MAX_PAGES = 40

TODAY = date.today()


def signed_in(rp: RP, browser: requests.Session) -> LiveClient:
    return LiveClient(browser, rp.url)


# ---------------------------------------------------------------- the people and what they hold

def sam_buyer(app: Any, rp: RP) -> tuple[LiveClient, list[str]]:
    """A Région's buyer with a draft (one lot) and a published consultation."""
    browser, _org, _email = buyer(app, rp)
    draft = create(browser, rp)
    assert add_lot(browser, rp, draft, 1, "Lot du brouillon").status_code == 303
    cid = published(browser, rp)
    return signed_in(rp, browser), ["/", "/acheteur", "/consultations/nouvelle", f"/consultations/{draft}",
                                    f"/consultations/{draft}/modifier", f"/consultations/{cid}",
                                    f"/consultations/{cid}/rectificatif"]


def sam_candidate(app: Any, rp: RP) -> tuple[LiveClient, list[str]]:
    """An organisme's signataire with a response: its candidature validated, an offer saved."""
    owner, _org, _email = buyer(app, rp)
    cid = published(owner, rp, lots=("Électricien du bâtiment", "Maçon"))
    browser, _org, _email = signataire(app, rp)
    rid = start(browser, rp, cid)
    valid_candidature(browser, rp, rid)
    oid = new_offer(browser, rp, rid, lot_ids(rp, cid)[0])
    assert save_offer(browser, rp, rid, oid).status_code == 303
    return signed_in(rp, browser), ["/", f"/consultations/{cid}", f"/reponses/{rid}", f"/reponses/{rid}/candidature",
                                    f"/reponses/{rid}/offres/{oid}", "/signature/verifier"]


def sam_buyer_after_deadline(app: Any, rp: RP) -> tuple[LiveClient, list[str], datetime]:
    """A Région's buyer past the deadline of two consultations, and the moment SAM's clock must
    show: one opened, its first lot without offers (a decision by name), an organisme's offer on
    the second found admissible (the award is next); the other still sealed (the opening is next)."""
    browser, _org, _email = buyer(app, rp)
    cid = published(browser, rp, lots=("Maçon", "Électricien du bâtiment"))
    sealed = published(browser, rp)
    candidate, _org, _email = signataire(app, rp)
    rid = start(candidate, rp, cid)
    valid_candidature(candidate, rp, rid)
    oid = valid_offer(candidate, rp, rid, lot_ids(rp, cid)[1])
    ok(submit(candidate, rp, rid))
    moment = max(deadline_of(rp, cid), deadline_of(rp, sealed)) + timedelta(seconds=1)
    with clock(rp, moment):
        ok(post_form(browser, rp, f"/consultations/{cid}/plis", f"/consultations/{cid}/plis/ouverture", {}))
        pli = f"/consultations/{cid}/plis/{rid}"
        ok(post_form(browser, rp, pli, f"{pli}/offres/{oid}/admissibilite", {"admissible": "1", "reason": "Conforme."}))
    # Forms are fuzzed in the crawl's order and the award ends the analysis: the offer's page first.
    # The export is no page to crawl (SKIP_LINKS), but it is opened once.
    return signed_in(rp, browser), [pli, f"/consultations/{cid}", f"/consultations/{sealed}",
                                    f"/consultations/{cid}/plis.csv"], moment


def sam_visitor(app: Any, rp: RP) -> tuple[LiveClient, list[str]]:
    """Anyone: the list of consultations, one of them, the signature check."""
    owner, _org, _email = buyer(app, rp)
    cid = published(owner, rp)
    return signed_in(rp, new_browser()), ["/", "/consultations", "/consultations?etat=cloturees&page=2",
                                          f"/consultations/{cid}", "/signature/verifier"]


def catalogue_editor(app: Any, rp: RP) -> tuple[LiveClient, list[str]]:
    """An organisme's editor with an offer, its action and a session."""
    browser, org, _email = catalogue_person(app, rp, ["catalogue:editeur", "catalogue:lecteur"])
    offer_id, action = full_offer(browser, rp, org.siret)
    record = f"/organismes/{org.siret}"
    return signed_in(rp, browser), [
        "/", f"{record}/identification", f"{record}/administratif", f"{record}/interlocuteurs", f"{record}/infos-of",
        f"{record}/historique", f"{record}/formations", f"{record}/formations/nouvelle", f"/offres/{offer_id}",
        f"/offres/{offer_id}/formation", f"/offres/{offer_id}/actions/{action}", f"/offres/{offer_id}/actions/nouvelle",
        f"/offres/{offer_id}/actions/{action}/sessions/nouvelle", f"/offres/{offer_id}/historique"]


def catalogue_moderator(app: Any, rp: RP) -> tuple[LiveClient, list[str]]:
    """A Carif-Oref's moderator with an offer and a change request waiting."""
    editor, org, _email = catalogue_person(app, rp, ["catalogue:editeur"])
    offer_id, _action = full_offer(editor, rp, org.siret)
    page = editor.get(f"{rp.url}/organismes/{org.siret}/identification", allow_redirects=False).text
    asked = editor.post(f"{rp.url}/organismes/{org.siret}/demande", allow_redirects=False, data={
        "csrf_token": csrf_of(page), "topic": "identification", "text": "Nouveau NDA", "tab": "identification"})
    assert asked.status_code == 302
    return signed_in(rp, moderator(app, rp)), ["/", "/moderation", "/moderation?statut=all", f"/offres/{offer_id}",
                                               f"/organismes/{org.siret}/identification"]


def catalogue_visitor(app: Any, rp: RP) -> tuple[LiveClient, list[str]]:
    """Anyone: the search, a published offer, the referential."""
    editor, org, _email = catalogue_person(app, rp, ["catalogue:editeur"])
    offer_id, _action = full_offer(editor, rp, org.siret)
    assert publish(moderator(app, rp), rp, offer_id).status_code == 302
    return signed_in(rp, new_browser()), [
        "/", "/recherche", f"/recherche?q=électricité&du={TODAY.isoformat()}&page=2",
        "/referentiel?type=rome&q=F1703&retour=/offres/1/formation", "/organismes"]


def repernet_gestionnaire(app: Any, rp: RP) -> tuple[LiveClient, list[str]]:
    """A structure's gestionnaire with its record and a legal document."""
    browser, org = gestionnaire_with_record(app, rp)
    assert upload(browser, rp, org.siret, "statuts", PDF).status_code == 303
    return signed_in(rp, browser), ["/", "/ma-structure", f"/structures/{org.siret}", f"/structures/{org.siret}/modifier",
                                    f"/structures/{org.siret}/pieces", f"/structures/nouvelle?siret={new_siret()}"]


def repernet_instructeur(app: Any, rp: RP) -> tuple[LiveClient, list[str]]:
    """A Région's instructeur, with a record to examine."""
    org = make_structure(app)
    local_record(rp, org)
    region = make_structure(app, kind="region", name=f"Région {uuid.uuid4().hex[:4]}")
    agent, _ = member_of(app, ["repernet:instructeur", "repernet:lecteur"], org=region)
    browser = new_browser()
    rp_login(browser, rp, agent.email)
    return signed_in(rp, browser), ["/", "/instruction", "/instruction?a_examiner=1", f"/structures/{org.siret}"]


def repernet_visitor(app: Any, rp: RP) -> tuple[LiveClient, list[str]]:
    """Anyone: the home page (registering needs a login)."""
    return signed_in(rp, new_browser()), ["/", "/structures/nouvelle"]


# ---------------------------------------------------------------- what makes each app's forms valid

_numbers = itertools.count(100)


def sam_valid(action: str, form: str) -> dict[str, Any]:
    """A new consultation (a unique reference each time), a lot (a new number), a question, a decision,
    an offer's analysis."""
    if action.endswith("/consultations/nouvelle"):
        return {**consultation_fields(), "reference": unique_reference}
    if action.endswith("/lots"):
        return {"number": lambda: str(next(_numbers) % 999 + 1), "title": "Lot", "unit": "HSTA", "place": "Lyon",
                "volume": "100"}
    if action.endswith(("/rectificatif", "/modifier")) and 'name="reason"' in form:
        return {"reason": "Précision du calendrier."}
    if action.endswith("/questions"):
        return {"text": "Le lot 1 peut-il être réalisé à distance ?"}
    if action.endswith("/reponse") and "/questions/" in action:
        return {"answer": "Oui."}
    if action.endswith("/decision"):
        return {"outcome": "awarded", "awardee": "Formation Plus"}
    if action.endswith("/admissibilite"):
        return {"admissible": "1", "reason": "Offre complète et conforme."}
    return {}


def catalogue_valid(action: str, form: str) -> dict[str, Any]:
    """A new offer, action, session, contact; a request to the moderators, the yearly check; a decision."""
    if action.endswith("/formations/nouvelle"):
        return FORMATION
    if action.endswith("/actions/nouvelle"):
        return ACTION
    if action.endswith("/sessions/nouvelle"):
        return session_fields(TODAY + timedelta(days=30), TODAY + timedelta(days=60), new_contact_name="Lucie Martin",
                              new_contact_phone="04 76 00 00 00")
    if action.endswith("/interlocuteurs/ajouter"):
        return {"last_name": "Durand", "phone": "04 76 00 00 01"}
    if action.endswith("/demande"):
        return {"topic": "identification", "text": "Nouveau NDA", "tab": "identification"}
    if action.endswith("/verification"):
        return {"checked": "y"}
    if action.endswith("/renvoyer"):
        return {"comment": "Précisez les objectifs."}
    if "/moderation/demandes/" in action:
        return {"decision": "refuse", "answer": "Pièce manquante."}
    return {}


def repernet_valid(action: str, form: str) -> dict[str, Any]:
    """A registration (a new SIRET each time, the bot question answered)."""
    if action.endswith("/structures/nouvelle"):
        return {**filled({}, form), "siret": new_siret}
    return {}


PEOPLE: dict[str, dict[str, Callable[[Any, RP], tuple[LiveClient, list[str]]]]] = {
    "sam": {"buyer": sam_buyer, "candidate": sam_candidate, "visitor": sam_visitor},
    "catalogue": {"editor": catalogue_editor, "moderator": catalogue_moderator, "visitor": catalogue_visitor},
    "repernet": {"gestionnaire": repernet_gestionnaire, "instructeur": repernet_instructeur,
                 "visitor": repernet_visitor},
}


VALID = {"sam": sam_valid, "catalogue": catalogue_valid, "repernet": repernet_valid}


@pytest.fixture(scope="module")
def fuzzed() -> dict[str, set[Any]]:
    """Per app, the kinds of form, path and query parameter fuzzed already: each is sent its payloads
    by the first person who reaches it (the code behind is the same for the next one)."""
    return {name: set() for name in PEOPLE}


def fuzz_as(client: LiveClient, entry: list[str], name: str, who: str, seen: set[Any]) -> None:
    """Crawl from `entry` as `who`, then send every form, upload, query string and id in a path
    its hostile values (each kind once per app: `seen`)."""
    began = time.monotonic()
    pages = crawl(client, entry, max_pages=MAX_PAGES, skip_links=APP_SKIP_LINKS)
    assert len(pages) >= (1 if who == "visitor" else 3), pages.keys()  # signed in: their pages open
    extra = {**SHELL_QUERIES, **APP_QUERIES[name]} if who == "visitor" else APP_QUERIES[name]
    counts = {"forms": fuzz_forms(client, pages, skip_actions=SKIP_ACTIONS, choose=True, valid=VALID[name], seen=seen),
              "uploads": fuzz_uploads(client, pages, skip_actions=SKIP_ACTIONS, seen=seen),
              "queries": fuzz_query_strings(client, pages, extra=extra, seen=seen),
              "paths": fuzz_paths(client, pages, skip_actions=SKIP_ACTIONS, seen=seen)}
    sent = sum(counts.values())
    print(f"{name} {who}: {len(pages)} pages, {counts} requests in {time.monotonic() - began:.1f} s: "  # noqa: T201
          f"{sorted(pages)}")
    assert sent > 0


@pytest.mark.parametrize(("name", "who"), [(name, who) for name, people in PEOPLE.items() for who in people])
def test_app_pages_survive_hostile_input(app: Any, request: pytest.FixtureRequest, fuzzed: dict[str, set[Any]],
                                         name: str, who: str) -> None:
    rp: RP = request.getfixturevalue(name)
    client, entry = PEOPLE[name][who](app, rp)
    fuzz_as(client, entry, name, who, fuzzed[name])


# What only a buyer reaches once the deadline has passed: the opening, the analysis, the award, and
# the decision on a lot without offers (as `fuzz_paths` and `fuzz_forms` name a route: ids left out).
AFTER_DEADLINE = ("/consultations/{id}/plis/ouverture", "/consultations/{id}/plis/{id}/offres/{id}/admissibilite",
                  "/consultations/{id}/lots/{id}/attribution/{id}", "/consultations/{id}/lots/{id}/decision")


def test_sam_buyer_after_the_deadline_survives_hostile_input(app: Any, sam: RP, fuzzed: dict[str, set[Any]]) -> None:
    client, entry, moment = sam_buyer_after_deadline(app, sam)
    with clock(sam, moment):
        fuzz_as(client, entry, "sam", "buyer after the deadline", fuzzed["sam"])
    posted = {key[2] for key in fuzzed["sam"] if key[:2] == ("path", "post")}
    opened = {key[2] for key in fuzzed["sam"] if key[:2] == ("path", "get")}
    assert set(AFTER_DEADLINE) <= posted, sorted(posted)
    assert {"/consultations/{id}/plis", "/consultations/{id}/plis/{id}"} <= opened, sorted(opened)
    forms_sent = {key[1] for key in fuzzed["sam"] if key[0] == "form" and isinstance(key[1], str)}
    assert set(AFTER_DEADLINE) <= forms_sent, sorted(forms_sent)


# ---------------------------------------------------------------- cookies and the back-channel receiver

def _jwt(header: dict[str, Any], claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(claims)}.{base64.urlsafe_b64encode(b'sig').rstrip(b'=').decode()}"


FORGED_TOKENS = {
    "kid_nul": _jwt({"alg": "RS256", "kid": "a\x00b"}, {"sub": "x"}),
    "kid_long": _jwt({"alg": "RS256", "kid": "k" * 5000}, {"sub": "x"}),
    "kid_object": _jwt({"alg": "RS256", "kid": {"a": 1}}, {"sub": "x"}),
    "alg_none": _jwt({"alg": "none"}, {"sub": "x", "events": {}}),
    "alg_list": _jwt({"alg": ["RS256"], "kid": "x"}, {"sub": "x"}),
    "not_json": "e30.bm90IGpzb24.c2ln", "bad_base64": "***.***.***", "two_parts": "a.b", "dots": "....",
    "header_not_object": base64.urlsafe_b64encode(b"[1]").decode() + ".e30.c2ln",
    "huge": "a" * 9000,
}


@pytest.mark.parametrize("name", list(PEOPLE))
def test_cookies_and_back_channel_logout_survive_hostile_input(request: pytest.FixtureRequest, name: str) -> None:
    rp: RP = request.getfixturevalue(name)
    cookie = rp.app.config.get("SESSION_COOKIE_NAME", "session").encode()
    values = {label: value.encode()[:8000] for label, value in TEXT_PAYLOADS.items() if "\n" not in value}
    for label, value in {**values, "not_utf8": b"\xe9\xff\xfe"}.items():
        for name, header in (("Cookie", cookie + b"=" + value), ("Cookie", b"portail_lang=" + value),
                             ("Accept-Language", value)):
            response = requests.get(f"{rp.url}/", headers={name: header}, allow_redirects=False, timeout=30)
            check_answer(LiveResponse(response), f"GET / {name}: {header[:30]!r} ({label})")
    for label, value in {**TEXT_PAYLOADS, **FORGED_TOKENS}.items():
        response = requests.post(f"{rp.url}/auth/backchannel-logout", data={"logout_token": value}, timeout=30)
        assert response.status_code == 400, (label, response.status_code)
        assert response.headers["Content-Type"].startswith("application/json"), label


# ---------------------------------------------------------------- the APIs

def _check_api(response: requests.Response, where: str) -> None:
    assert response.status_code < 500, (where, response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith(("application/json", "application/problem+json")), where


# Where a value goes in an award (apps.catalogue.awards): each top-level field, the contact's, a
# site's and a session's.
AWARD_PLACES: list[tuple[str, ...]] = [
    *((key,) for key in award("0", "x")), ("contact", "name"), ("contact", "phone"), ("contact", "email"),
    ("sites", 0, "name"), ("sites", 0, "postal_code"), ("sites", 0, "city"), ("sites", 0, "sessions"),
    ("sites", 0, "sessions", 0, "start"), ("sites", 0, "sessions", 0, "end"), ("inconnu",),
]


def _placed(body: dict[str, Any], place: tuple[Any, ...], value: Any) -> dict[str, Any]:
    copy = json.loads(json.dumps(body))
    target = copy
    for step in place[:-1]:
        target = target[step]
    target[place[-1]] = value
    return copy


def test_catalogue_award_api_survives_hostile_bodies(app: Any, live_server: str, catalogue: RP) -> None:
    token = service_token(app, live_server, "catalogue:write")
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    url = f"{catalogue.url}/api/v1/actions"
    siret = new_siret()
    for place in AWARD_PLACES:
        for label, value in JSON_VALUES.items():
            body = _placed(award(siret, f"fuzz-{uuid.uuid4().hex[:8]}"), place, value)
            _check_api(session.post(url, json=body, timeout=30), f"POST {place}={label}")
    for raw in RAW_JSON_BODIES:
        _check_api(session.post(url, data=raw, headers={"Content-Type": "application/json"}, timeout=30),
                   f"POST raw {raw[:10]!r}")
    for odd in ("9" * 40, "%00", "%FF", "a" * 5_000, "-1", "²", "٣", "1.5"):
        _check_api(session.get(f"{url}/{odd}", timeout=30), f"GET /actions/{odd[:20]}")
    _bad_bearers(url, "POST", json=award(siret, "x"))


def test_repernet_api_survives_hostile_paths_and_tokens(app: Any, live_server: str, repernet: RP) -> None:
    token = service_token(app, live_server, "repernet:read")
    url = f"{repernet.url}/api/v1/structures"
    for odd in ("9" * 40, "%00", "%FF%FE", "a" * 5_000, "-1", "²" * 14, "٣" * 14, "1" * 14 + "%0D%0AX-Fuzz:%20x",
                "%3Cscript%3E"):
        response = requests.get(f"{url}/{odd}", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        _check_api(response, f"GET /structures/{odd[:20]}")
        assert "x-fuzz" not in {k.lower() for k in response.headers}
    _bad_bearers(f"{url}/{new_siret()}", "GET")


def _bad_bearers(url: str, method: str, **kwargs: Any) -> None:
    """Tokens that are not ours: 401 problems, never a 500 (the IdP's finding 13 was an unknown kid)."""
    values = [*FORGED_TOKENS.values(), "", "a.b.c", "Bearer", "é" * 100]
    for value in values:
        for scheme in ("Bearer ", "bearer ", "Basic "):
            header = (scheme + value).encode("utf-8")
            response = requests.request(method, url, headers={"Authorization": header}, timeout=30, **kwargs)
            _check_api(response, f"{method} Authorization: {scheme}{value[:20]!r}")
            assert response.status_code in (401, 403), (value[:20], response.status_code)
    # Raw bytes that are not UTF-8, in the header.
    response = requests.request(method, url, headers={"Authorization": b"Bearer \xff\xfe"}, timeout=30, **kwargs)
    _check_api(response, f"{method} Authorization: latin-1")


# ---------------------------------------------------------------- what the fuzz found accepted, refused

START, END = ("sites", 0, "sessions", 0, "start"), ("sites", 0, "sessions", 0, "end")


@pytest.mark.parametrize(("place", "value", "field"), [
    (END, "9999-12-31", "sites[0].sessions[0].end"),  # it was stored: it overflows once a day is added
    (START, "0001-01-01", "sites[0].sessions[0].start"),
    (START, "2027-0²-01", "sites[0].sessions[0].start"),
    (START, 20270101, "sites[0].sessions[0].start"),  # not a string: the session was silently dropped
    (("sites", 0, "postal_code"), "²²²²²", "sites[0].postal_code"),  # str.isdigit() took it
    (("sites", 0, "postal_code"), "٦٩٠٠٣", "sites[0].postal_code"),
])
def test_an_award_with_a_far_day_or_odd_digits_is_a_422_naming_it(app: Any, live_server: str, catalogue: RP,
                                                                   place: tuple[Any, ...], value: Any, field: str) -> None:
    token = service_token(app, live_server, "catalogue:write")
    body = _placed(award(new_siret(), f"odd-{uuid.uuid4().hex[:6]}"), place, value)
    response = requests.post(f"{catalogue.url}/api/v1/actions", json=body, timeout=30,
                             headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 422, response.text[:300]
    assert field in [e["field"] for e in response.json()["errors"]], response.json()


@pytest.mark.parametrize(("field", "value"), [
    ("postal_code", "٦٩٠٠٢"), ("postal_code", "69002\n"), ("ape_code", "٨٥.٥٩A"), ("rep_phone", "٠٤ ٧٢ ٠٠ ٠٠ ٠٠"),
])
def test_repernet_codes_take_ascii_digits_only(app: Any, repernet: RP, field: str, value: str) -> None:
    browser, org = gestionnaire_with_record(app, repernet)
    page = browser.get(f"{repernet.url}/structures/{org.siret}/modifier", allow_redirects=False).text
    form = next(f for f in forms(page) if f["action"].endswith("/modifier"))
    response = browser.post(f"{repernet.url}{form['action']}", data={**form["fields"], **RECORD, field: value},
                            allow_redirects=False)
    assert response.status_code == 422, response.status_code
    saved = browser.post(f"{repernet.url}{form['action']}", data={**form["fields"], **RECORD}, allow_redirects=False)
    assert saved.status_code == 303  # the same form with ASCII digits


@pytest.mark.parametrize("odd", ["\r\nX-Fuzz: x", " – œ"])
def test_the_export_and_the_receipt_of_a_reference_with_a_line_break_or_beyond_latin_1(app: Any, sam: RP,
                                                                                     odd: str) -> None:
    """A reference the form takes (a line break in a forged post, a dash no Latin-1 header carries)
    named the export of the opened bids, the receipt and the generated documents: a 500, or a header
    let through."""
    browser, _org, _email = buyer(app, sam)
    reference = unique_reference()
    cid = published(browser, sam, reference=reference + odd)
    from apps.sam import db
    from apps.sam.models import Consultation

    with sam.app.app_context():  # a one-line field keeps its text on one line (shared.forms.one_line)
        assert db.session.get(Consultation, cid).reference == reference + odd.replace("\r\n", " ")
    candidate, _org, _email = signataire(app, sam)
    rid = start(candidate, sam, cid)
    valid_candidature(candidate, sam, rid)
    valid_offer(candidate, sam, rid, lot_ids(sam, cid)[0])
    ok(submit(candidate, sam, rid))
    receipt = re.search(rf'href="(/reponses/{rid}/accuses/[0-9]+\.pdf)"', candidate.get(f"{sam.url}/reponses/{rid}").text)
    assert receipt
    # The generated DC1 and acte d'engagement are named after the reference too.
    documents = [f"/reponses/{rid}/documents/{did}" for did, _kind, _name in documents_of(sam, rid)]
    assert len(documents) == 2, documents  # the DC1 and the acte d'engagement
    for path in documents:
        response = candidate.get(f"{sam.url}{path}", allow_redirects=False)
        check_answer(LiveResponse(response), path)
        assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"], path
    with clock(sam, deadline_of(sam, cid) + timedelta(seconds=1)):
        ok(post_form(browser, sam, f"/consultations/{cid}/plis", f"/consultations/{cid}/plis/ouverture", {}))
        for who, path in ((browser, f"/consultations/{cid}/plis.csv"), (candidate, receipt.group(1))):
            response = who.get(f"{sam.url}{path}", allow_redirects=False)
            check_answer(LiveResponse(response), path)
            assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"], path
