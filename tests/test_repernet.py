# ruff: noqa: F811 - pytest fixtures imported from tests/rp_helpers.py are parameters here
"""REPERNET (SPEC §8) over HTTP against the live IdP: registering a structure (hand-off, bad
input, bot challenge), the record and its optimistic locking, legal documents (types, sizes,
hashes, replace, download), who sees what (gestionnaire, lecteur, instructeur, other structures),
and freshness: a member detached at the IdP loses REPERNET at once (back-channel logout)."""

from __future__ import annotations

import hashlib
import html
import re
import time
from typing import Any

import pytest
import requests

from tests.conftest import forms
from tests.oidc_helpers import browse
from tests.rp_helpers import (
    RP,
    Org,
    add_member,
    detach,
    follow,
    logged_out,
    make_person,
    make_structure,
    member_of,
    new_browser,
    new_siret,
    page_form,
    repernet,  # noqa: F401 - the live-server fixture
    rp_get,
    rp_login,
)

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64

RECORD = {
    "raison_sociale": "Organisme Formation Test", "sigle": "OFT", "commercial_name": "", "legal_category": "9220",
    "ape_code": "85.59A", "address": "1 rue de la République", "address_complement": "", "postal_code": "69002",
    "city": "Lyon", "rep_first_name": "Lucie", "rep_last_name": "Martin", "rep_title": "Présidente",
    "rep_email": "lucie.martin@example.test", "rep_phone": "04 72 00 00 00",
}


def text(response: requests.Response) -> str:
    return html.unescape(response.text)


def local_record(rp: RP, org: Org, **overrides: Any) -> None:
    """A REPERNET record for a structure that already exists at the IdP."""
    from apps.repernet import db, registry

    with rp.app.app_context():
        registry.create_record(db.session, org.siret, registry.RecordData(**{**RECORD, **overrides}), actor="test")
        db.session.commit()


def gestionnaire_with_record(app: Any, rp: RP, **overrides: Any) -> tuple[requests.Session, Org]:
    person, org = member_of(app, ["repernet:gestionnaire", "repernet:lecteur"])
    local_record(rp, org, **overrides)
    browser = new_browser()
    rp_login(browser, rp, person.email)
    return browser, org


# ---------------------------------------------------------------- registration

def registration(browser: requests.Session, rp: RP, query: str = "") -> tuple[dict[str, str], str]:
    page = rp_get(browser, rp, f"/structures/nouvelle{query}")
    assert page.status_code == 200, page.status_code
    return page_form(page.text, "/structures/nouvelle")["fields"], page.text


def answer(page: str) -> str:
    a, b = re.search(r"Combien font (\d+) \+ (\d+) \?", page).groups()  # type: ignore[union-attr]
    return str(int(a) + int(b))


def filled(fields: dict[str, str], page: str, **overrides: str) -> dict[str, str]:
    return {**fields, **RECORD, "is_siege": "siege", "domain": "Emploi et formation",
            "subdomain": "Formation professionnelle",
            "action": "Déposer une offre de formation en réponse à un appel d'offres",
            "admin_first_name": "Anne", "admin_last_name": "Admin", "admin_email": "anne.admin@example.test",
            "challenge_answer": answer(page), **overrides}


def test_registration_needs_a_login(repernet: RP) -> None:
    response = rp_get(new_browser(), repernet, "/structures/nouvelle?siret=12345678200010")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_hand_off_prefills_the_siret(app: Any, live_server: str, repernet: RP) -> None:
    person = make_person(app)
    browser = new_browser()
    siret = new_siret()
    page = rp_login(browser, repernet, person.email,
                    path=f"/structures/nouvelle?siret={siret}&return_to={live_server}/join")
    assert page.status_code == 200
    fields = page_form(page.text, "/structures/nouvelle")["fields"]
    assert fields["siret"] == siret and fields["return_to"] == f"{live_server}/join"
    assert "Combien font" in page.text


BAD = [
    ({"siret": "12345678200011"}, "Le SIRET doit comporter 14 chiffres et être valide"),
    ({"siret": "1234"}, "Le SIRET doit comporter 14 chiffres et être valide"),
    ({"raison_sociale": ""}, "Ce champ est obligatoire."),
    ({"postal_code": "6900"}, "Le code postal compte 5 chiffres."),
    ({"ape_code": "8559"}, "Le code APE s'écrit comme 85.59A."),
    ({"admin_email": "pas-une-adresse"}, "Saisissez une adresse e-mail valide."),
    ({"legal_category": "0000"}, "N'est pas un choix valide."),
    ({"action": "Gérer la fiche structure", "subdomain": "Formation professionnelle", "domain": ""},
     "Ce champ est obligatoire."),
    ({"subdomain": "Apprentissage"}, "Cette action n'existe pas pour ce domaine et ce sous-domaine."),
    ({"challenge_answer": "9999"}, "Le code de vérification est incorrect"),
    ({"challenge_token": "forged"}, "Le code de vérification est invalide"),
    ({"website": "http://spam.example"}, "La vérification anti-robot a échoué."),
    ({"csrf_token": "forged"}, "Le formulaire a expiré"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD)
def test_bad_registration_input_gets_a_french_message_and_keeps_what_was_typed(
        app: Any, repernet: RP, overrides: dict[str, str], message: str) -> None:
    person = make_person(app)
    browser = new_browser()
    rp_login(browser, repernet, person.email)
    fields, page = registration(browser, repernet)
    data = filled(fields, page, **{"siret": new_siret(), **overrides})
    response = browser.post(f"{repernet.url}/structures/nouvelle", data=data, allow_redirects=False)
    assert response.status_code == 422, response.status_code
    assert message in text(response)
    kept = page_form(response.text, "/structures/nouvelle")["fields"]
    for name in ("raison_sociale", "city", "rep_email", "admin_email", "siret"):
        if name not in overrides:
            assert kept[name] == data[name], name
    assert kept["challenge_answer"] == ""  # a new question every time


def test_an_etablissement_needs_its_siege_registered(app: Any, repernet: RP) -> None:
    person = make_person(app)
    browser = new_browser()
    rp_login(browser, repernet, person.email)
    fields, page = registration(browser, repernet)
    response = browser.post(f"{repernet.url}/structures/nouvelle", allow_redirects=False,
                            data=filled(fields, page, siret=new_siret(), is_siege="etablissement"))
    assert response.status_code == 422
    assert "enregistrez d'abord le siège social" in text(response)


def test_a_siret_already_in_repernet_is_refused(app: Any, repernet: RP) -> None:
    person, org = member_of(app, ["repernet:lecteur"])
    local_record(repernet, org)
    browser = new_browser()
    rp_login(browser, repernet, person.email)
    fields, page = registration(browser, repernet)
    response = browser.post(f"{repernet.url}/structures/nouvelle", allow_redirects=False,
                            data=filled(fields, page, siret=org.siret))
    assert response.status_code == 409
    assert "existe déjà dans REPERNET" in text(response)
    assert page_form(response.text, "/structures/nouvelle")["fields"]["raison_sociale"] == RECORD["raison_sociale"]


def test_registration_creates_the_structure_at_the_idp_and_goes_back(app: Any, live_server: str, repernet: RP,
                                                                      mailbox: Any) -> None:
    person = make_person(app)
    browser = new_browser()
    siret = new_siret()
    return_to = f"{live_server}/join/{siret}"
    rp_login(browser, repernet, person.email)
    fields, page = registration(browser, repernet, f"?siret={siret}&return_to={return_to}")
    admin_email = f"admin-{siret}@example.test"
    response = browser.post(f"{repernet.url}/structures/nouvelle", allow_redirects=False,
                            data=filled(fields, page, admin_email=admin_email))
    assert response.status_code == 303, text(response)[:2000]
    assert response.headers["Location"] == return_to
    mailbox.wait_for(admin_email)
    # At the IdP: the structure with its admin e-mail; a second registration is refused.
    from idp.core.structures import find_by_siret
    from idp.extensions import db

    with app.app_context():
        structure = find_by_siret(db.session, siret)
        assert structure is not None and structure.admin_email == admin_email
    fields, page = registration(browser, repernet)
    from apps.repernet import db as rdb
    from apps.repernet.models import StructureRecord

    with repernet.app.app_context():
        rdb.session.query(StructureRecord).filter_by(siret=siret).delete()
        rdb.session.commit()
    response = browser.post(f"{repernet.url}/structures/nouvelle", allow_redirects=False,
                            data=filled(fields, page, siret=siret))
    assert response.status_code == 409 and "existe déjà sur le portail" in text(response)


def test_return_to_elsewhere_is_ignored(app: Any, live_server: str, repernet: RP) -> None:
    person = make_person(app)
    browser = new_browser()
    rp_login(browser, repernet, person.email)
    siret = new_siret()
    fields, page = registration(browser, repernet, f"?siret={siret}&return_to=https://evil.example/")
    response = browser.post(f"{repernet.url}/structures/nouvelle", allow_redirects=False, data=filled(fields, page))
    assert response.status_code == 303
    assert response.headers["Location"] == f"/structures/{siret}/enregistree"
    done = rp_get(browser, repernet, response.headers["Location"])
    assert "Statuts à jour" in text(done) and "Récépissé de déclaration en préfecture" in text(done)


def test_the_registrant_named_admin_switches_to_the_new_structure(app: Any, live_server: str, repernet: RP) -> None:
    person, _org = member_of(app, ["repernet:gestionnaire"])  # acts for another structure today
    browser = new_browser()
    rp_login(browser, repernet, person.email)
    siret = new_siret()
    fields, page = registration(browser, repernet, f"?siret={siret}")
    response = browser.post(f"{repernet.url}/structures/nouvelle", allow_redirects=False,
                            data=filled(fields, page, admin_email=person.email))
    done = rp_get(browser, repernet, response.headers["Location"])
    link = re.search(r'href="(/auth/switch[^"]+)"', done.text)
    assert link, "no link to act for the new structure"
    start = rp_get(browser, repernet, html.unescape(link.group(1)))
    callback = browse(browser, start.headers["Location"], stop=f"{repernet.url}/auth/callback")
    record = follow(browser, browser.get(callback, allow_redirects=False))
    assert record.url == f"{repernet.url}/structures/{siret}" and record.status_code == 200
    assert "Accès refusé" not in record.text and RECORD["raison_sociale"] in text(record)


# ---------------------------------------------------------------- the record

def edit_fields(browser: requests.Session, rp: RP, siret: str) -> dict[str, str]:
    """The edit form's fields (selects are sent as a browser would: the test parser skips them)."""
    fields = page_form(rp_get(browser, rp, f"/structures/{siret}/modifier").text, "/modifier")["fields"]
    return {**fields, "legal_category": RECORD["legal_category"]}


def test_required_fields_are_marked_and_the_mark_explained(app: Any, repernet: RP) -> None:
    """Issue 16: a person sees which fields must be filled, and what the star means."""
    browser, org = gestionnaire_with_record(app, repernet)
    form = rp_get(browser, repernet, f"/structures/{org.siret}/modifier").text
    star = '<abbr class="req" title="obligatoire">*</abbr>'
    assert re.search(r'<label for="raison_sociale">[^<]+ ' + re.escape(star) + "</label>", form)  # required
    assert re.search(r'<label for="sigle">[^<]+</label>', form)  # optional: no star
    assert "Les champs marqués " + star + " sont obligatoires." in form


def test_gestionnaire_edits_and_a_stale_save_gets_409(app: Any, repernet: RP) -> None:
    browser, org = gestionnaire_with_record(app, repernet)
    colleague = make_person(app)
    add_member(app, org, colleague, ["repernet:gestionnaire"])
    other = new_browser()
    rp_login(other, repernet, colleague.email)
    mine = edit_fields(browser, repernet, org.siret)
    theirs = edit_fields(other, repernet, org.siret)
    first = other.post(f"{repernet.url}/structures/{org.siret}/modifier", data={**theirs, "city": "Grenoble"},
                       allow_redirects=False)
    assert first.status_code == 303
    second = browser.post(f"{repernet.url}/structures/{org.siret}/modifier", data={**mine, "city": "Valence"},
                          allow_redirects=False)
    assert second.status_code == 409
    assert "modifiée par quelqu'un d'autre" in text(second)
    again = {**page_form(second.text, "/modifier")["fields"], "legal_category": RECORD["legal_category"]}
    assert again["city"] == "Valence"  # what was typed is kept
    third = browser.post(f"{repernet.url}/structures/{org.siret}/modifier", data=again, allow_redirects=False)
    assert third.status_code == 303  # saved on purpose, knowing the current version
    assert "Valence" in rp_get(browser, repernet, f"/structures/{org.siret}").text


@pytest.mark.parametrize(("overrides", "message"), [
    ({"postal_code": "ABCDE"}, "Le code postal compte 5 chiffres."),
    ({"rep_email": "x"}, "Saisissez une adresse e-mail valide."),
    ({"city": ""}, "Ce champ est obligatoire."),
    ({"version": "abc"}, "modifiée par quelqu'un d'autre"),
])
def test_bad_edit_input(app: Any, repernet: RP, overrides: dict[str, str], message: str) -> None:
    browser, org = gestionnaire_with_record(app, repernet)
    fields = edit_fields(browser, repernet, org.siret)
    response = browser.post(f"{repernet.url}/structures/{org.siret}/modifier",
                            data={**fields, "raison_sociale": "Nom saisi", **overrides}, allow_redirects=False)
    assert response.status_code in (409, 422)
    assert message in text(response)
    assert page_form(response.text, "/modifier")["fields"]["raison_sociale"] == "Nom saisi"


def test_a_gestionnaire_completes_a_record_missing_in_repernet(app: Any, repernet: RP) -> None:
    person, org = member_of(app, ["repernet:gestionnaire"])
    browser = new_browser()
    page = rp_login(browser, repernet, person.email, path="/ma-structure")
    assert "pas encore de fiche" in page.text
    form = page_form(rp_get(browser, repernet, f"/structures/{org.siret}/modifier").text, "/modifier")
    assert form["fields"]["raison_sociale"] == org.name
    response = browser.post(f"{repernet.url}/structures/{org.siret}/modifier",
                            data={**form["fields"], **RECORD}, allow_redirects=False)
    assert response.status_code == 303
    assert RECORD["rep_email"] in rp_get(browser, repernet, f"/structures/{org.siret}").text


# ---------------------------------------------------------------- legal documents

def upload(browser: requests.Session, rp: RP, siret: str, kind: str, content: bytes, name: str = "piece.pdf",
           issued_on: str = "") -> requests.Response:
    page = rp_get(browser, rp, f"/structures/{siret}/pieces")
    form = page_form(page.text, f"/pieces/{kind}")
    return browser.post(f"{rp.url}{form['action']}", data={**form["fields"], "issued_on": issued_on},
                        files={"file": (name, content, "application/octet-stream")}, allow_redirects=False)


def test_documents_by_legal_category_upload_replace_and_download(app: Any, repernet: RP) -> None:
    browser, org = gestionnaire_with_record(app, repernet)
    page = text(rp_get(browser, repernet, f"/structures/{org.siret}/pieces"))
    for label in ("Statuts à jour", "Récépissé de déclaration en préfecture", "Attestation de vigilance URSSAF"):
        assert label in page
    assert "Kbis" not in page  # an association
    assert page.count("Manquant") == 5

    assert upload(browser, repernet, org.siret, "statuts", PDF, "statuts 2024.pdf").status_code == 303
    download = rp_get(browser, repernet, f"/structures/{org.siret}/pieces/statuts/fichier")
    assert download.status_code == 200 and download.content == PDF
    assert download.headers["Content-Type"] == "application/pdf"
    assert "attachment" in download.headers["Content-Disposition"]
    assert download.headers["X-Content-SHA256"] == hashlib.sha256(PDF).hexdigest()

    assert upload(browser, repernet, org.siret, "statuts", PNG, "scan.png").status_code == 303  # replace
    download = rp_get(browser, repernet, f"/structures/{org.siret}/pieces/statuts/fichier")
    assert download.content == PNG and download.headers["Content-Type"] == "image/png"
    page = text(rp_get(browser, repernet, f"/structures/{org.siret}/pieces"))
    assert page.count("Manquant") == 4 and hashlib.sha256(PNG).hexdigest()[:16] in page


def test_an_old_certificate_is_listed_as_expired(app: Any, repernet: RP) -> None:
    browser, org = gestionnaire_with_record(app, repernet)
    assert upload(browser, repernet, org.siret, "urssaf", PDF, issued_on="2020-01-15").status_code == 303
    page = text(rp_get(browser, repernet, f"/structures/{org.siret}/pieces"))
    assert "Expiré" in page and "15/07/2020" in page


@pytest.mark.parametrize(("kind", "content", "issued_on", "status", "message"), [
    ("statuts", b"MZ\x90\x00 not a pdf", "", 422, "Type de fichier non accepté"),
    ("statuts", b"", "", 422, "Choisissez un fichier"),
    ("statuts", b"%PDF-" + b"x" * (64 * 1024), "", 413, "taille maximale"),
    ("statuts", b"%PDF-" + b"x" * (400 * 1024), "", 413, "taille maximale"),
    ("urssaf", PDF, "", 422, "Indiquez la date de délivrance"),
    ("urssaf", PDF, "2099-01-01", 422, "ne peut pas être dans le futur"),
    ("urssaf", PDF, "0001-01-01", 422, "Saisissez une date entre le 01/01/2000 et le 31/12/2100"),
    ("urssaf", PDF, "9999-12-31", 422, "Saisissez une date entre le 01/01/2000 et le 31/12/2100"),
    ("urssaf", PDF, "15/01/2024", 422, "date"),
])
def test_bad_uploads_get_a_french_message(app: Any, repernet: RP, kind: str, content: bytes, issued_on: str,
                                          status: int, message: str) -> None:
    browser, org = gestionnaire_with_record(app, repernet)
    response = upload(browser, repernet, org.siret, kind, content, issued_on=issued_on)
    assert response.status_code == status
    assert message in text(response)
    assert text(rp_get(browser, repernet, f"/structures/{org.siret}/pieces")).count("Manquant") == 5


def test_an_upload_without_its_csrf_token_is_refused(app: Any, repernet: RP) -> None:
    browser, org = gestionnaire_with_record(app, repernet)
    response = browser.post(f"{repernet.url}/structures/{org.siret}/pieces/statuts",
                            files={"file": ("a.pdf", PDF)}, allow_redirects=False)
    assert response.status_code == 422 and "Le formulaire a expiré" in text(response)


# ---------------------------------------------------------------- who sees what

def test_lecteur_reads_but_cannot_change(app: Any, repernet: RP) -> None:
    browser, org = gestionnaire_with_record(app, repernet)
    upload(browser, repernet, org.siret, "statuts", PDF)
    reader, _ = member_of(app, ["repernet:lecteur"], org=org)
    other = new_browser()
    rp_login(other, repernet, reader.email)
    assert rp_get(other, repernet, f"/structures/{org.siret}").status_code == 200
    page = rp_get(other, repernet, f"/structures/{org.siret}/pieces")
    assert page.status_code == 200 and not [f for f in forms(page.text) if "/pieces/" in f["action"]]
    assert rp_get(other, repernet, f"/structures/{org.siret}/pieces/statuts/fichier").content == PDF
    assert rp_get(other, repernet, f"/structures/{org.siret}/modifier").status_code == 403
    response = other.post(f"{repernet.url}/structures/{org.siret}/pieces/statuts", files={"file": ("a.pdf", PDF)},
                          allow_redirects=False)
    assert response.status_code == 403


def test_a_member_without_repernet_role_is_refused(app: Any, repernet: RP) -> None:
    person, org = member_of(app, ["sam:redacteur"])
    local_record(repernet, org)
    browser = new_browser()
    rp_login(browser, repernet, person.email)
    response = rp_get(browser, repernet, f"/structures/{org.siret}")
    assert response.status_code == 403 and "Accès refusé" in response.text


def test_structure_a_cannot_reach_structure_b(app: Any, repernet: RP) -> None:
    browser_b, org_b = gestionnaire_with_record(app, repernet)
    upload(browser_b, repernet, org_b.siret, "statuts", PDF)
    browser_a, _org_a = gestionnaire_with_record(app, repernet)
    for path in ("", "/pieces", "/pieces/statuts/fichier", "/modifier"):
        assert rp_get(browser_a, repernet, f"/structures/{org_b.siret}{path}").status_code == 404, path
    for path in ("/pieces/statuts", "/modifier", "/examen"):
        response = browser_a.post(f"{repernet.url}/structures/{org_b.siret}{path}", data={}, allow_redirects=False)
        assert response.status_code in (403, 404), path
    assert rp_get(browser_a, repernet, "/instruction").status_code == 403


def test_a_member_of_both_is_told_to_switch(app: Any, repernet: RP) -> None:
    person, org_a = member_of(app, ["repernet:lecteur"])
    org_b = make_structure(app)
    add_member(app, org_b, person, ["repernet:lecteur"])
    local_record(repernet, org_b)
    browser = new_browser()
    rp_login(browser, repernet, person.email, structure=str(org_a.id))
    response = rp_get(browser, repernet, f"/structures/{org_b.siret}")
    assert response.status_code == 403 and "changez de structure" in text(response)


def test_instructeur_sees_all_and_marks_reviewed(app: Any, repernet: RP) -> None:
    browser, org = gestionnaire_with_record(app, repernet, raison_sociale="Structure à instruire")
    upload(browser, repernet, org.siret, "statuts", PDF)
    region = make_structure(app, kind="region", name="Région (tests REPERNET)")
    agent, _ = member_of(app, ["repernet:instructeur", "repernet:lecteur"], org=region)
    instructeur = new_browser()
    rp_login(instructeur, repernet, agent.email)
    listing = text(rp_get(instructeur, repernet, "/instruction?a_examiner=1"))
    assert "Structure à instruire" in listing
    page = rp_get(instructeur, repernet, f"/structures/{org.siret}")
    assert page.status_code == 200
    assert rp_get(instructeur, repernet, f"/structures/{org.siret}/pieces/statuts/fichier").content == PDF
    assert rp_get(instructeur, repernet, f"/structures/{org.siret}/modifier").status_code == 403
    form = page_form(page.text, "/examen")
    done = instructeur.post(f"{repernet.url}{form['action']}", data=form["fields"], allow_redirects=False)
    assert done.status_code == 303
    assert "Examinée le" in text(rp_get(instructeur, repernet, f"/structures/{org.siret}"))
    assert "Structure à instruire" not in text(rp_get(instructeur, repernet, "/instruction?a_examiner=1"))
    assert "Examiné" in text(rp_get(browser, repernet, f"/structures/{org.siret}/pieces"))


# ---------------------------------------------------------------- freshness (SPEC §5.3)

def test_a_member_detached_at_the_idp_loses_repernet_within_60_seconds(app: Any, repernet: RP) -> None:
    browser, org = gestionnaire_with_record(app, repernet)
    colleague, _ = member_of(app, ["repernet:lecteur"], org=org)
    other = new_browser()
    rp_login(other, repernet, colleague.email)
    assert rp_get(other, repernet, f"/structures/{org.siret}").status_code == 200
    started = time.monotonic()
    detach(app, org, colleague)
    while time.monotonic() - started < 60 and not logged_out(other, repernet):
        time.sleep(0.2)
    assert logged_out(other, repernet), "still logged in to REPERNET 60 s after the detach"
    # Logging in again gives claims without the structure: its record is out of reach.
    rp_login(other, repernet, colleague.email)
    assert rp_get(other, repernet, f"/structures/{org.siret}").status_code == 404
    assert not logged_out(browser, repernet)  # the admin's own session is untouched
