# ruff: noqa: F811 - pytest fixtures imported from tests/test_sam_helpers.py are parameters here
"""SAM, consultations (SPEC §7, issue 12) over HTTP against the live IdP: the buyer's drafts,
lots, publication, amendments with the deadline rule, cancellation and lot decisions; the public
list and keyword search (accents and plurals, on SQLite and PostgreSQL); the DCE (types by content,
sizes, hashes, versions, downloads without login); registrations and alert mails over real SMTP;
questions and answers; who may see and do what; stale saves; bad input never a 500."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from tests.conftest import Mailbox, mail_text
from tests.rp_helpers import RP, Org, make_structure, new_browser, page_form, rp_get, serve_rp
from tests.test_sam_helpers import (
    MAX_DCE_BYTES,
    PDF,
    PNG,
    add_lot,
    buyer,
    consultation_fields,
    create,
    listed,
    local,
    organisme_user,
    page_text,
    post_form,
    publish,
    published,
    region,
    sam_site,  # noqa: F401 - the live-server fixture
    soon,
    time_passes,
    unique_reference,
    upload,
)


def word() -> str:
    """A made-up word no other test uses (keyword searches stay independent)."""
    return "mot" + uuid.uuid4().hex[:8]


# ---------------------------------------------------------------- drafts, lots, publication

def test_a_buyer_creates_a_draft_adds_lots_and_publishes(app: Any, sam_site: RP) -> None:
    browser, org, _ = buyer(app, sam_site)
    reference = unique_reference()
    cid = create(browser, sam_site, reference=reference, title="Cuisine collective")
    page = page_text(browser.get(f"{sam_site.url}/consultations/{cid}"))
    assert "Brouillon" in page and reference in page and org.name in page
    assert add_lot(browser, sam_site, cid, 1, "Commis de cuisine", unit="HSTA", volume=12000).status_code == 303
    assert add_lot(browser, sam_site, cid, 2, "Chef de partie", unit="FORP", volume=30).status_code == 303
    assert add_lot(browser, sam_site, cid, 3, "Pâtisserie", unit="HGRO", place="Grenoble").status_code == 303
    page = page_text(browser.get(f"{sam_site.url}/consultations/{cid}"))
    assert "Heure stagiaire (HSTA)" in page and "Forfait de parcours (FORP)" in page and "Heure groupe (HGRO)" in page
    assert "12 000 HSTA" in page and "Grenoble" in page
    # Anonymous people don't see a draft, nor does it appear in the list.
    assert rp_get(new_browser(), sam_site, f"/consultations/{cid}").status_code == 404
    assert f'href="/consultations/{cid}"' not in listed(new_browser(), sam_site, reference)
    response = publish(browser, sam_site, cid)
    assert response.status_code == 303
    public = page_text(rp_get(new_browser(), sam_site, f"/consultations/{cid}"))
    assert "En cours" in public and "Commis de cuisine" in public and "Chef de partie" in public
    assert f'href="/consultations/{cid}"' in listed(new_browser(), sam_site, reference)
    assert "Journal des actions" not in public  # the audit trail is the buyers'


def test_lot_rules_and_edits(app: Any, sam_site: RP) -> None:
    browser, _, _ = buyer(app, sam_site)
    cid = create(browser, sam_site)
    assert add_lot(browser, sam_site, cid, 1, "Soudure").status_code == 303
    duplicate = add_lot(browser, sam_site, cid, 1, "Tuyauterie")
    assert duplicate.status_code == 422
    assert "Le lot n° 1 existe déjà" in page_text(duplicate) and 'value="Tuyauterie"' in duplicate.text
    bad_unit = add_lot(browser, sam_site, cid, 2, "Tuyauterie", unit="XXXX")
    assert bad_unit.status_code == 422 and "pas un choix valide" in page_text(bad_unit).lower()
    not_a_number = add_lot(browser, sam_site, cid, "deux", "Tuyauterie")  # type: ignore[arg-type]
    assert not_a_number.status_code == 422 and "Saisissez un nombre entier." in page_text(not_a_number)
    page = rp_get(browser, sam_site, f"/consultations/{cid}").text
    edit_link = re.search(rf"/consultations/{cid}/lots/(\d+)/modifier", page).group(0)  # type: ignore[union-attr]
    response = post_form(browser, sam_site, edit_link, edit_link, {"title": "Soudure TIG", "unit": "HGRO"})
    assert response.status_code == 303
    page = page_text(rp_get(browser, sam_site, f"/consultations/{cid}"))
    assert "Soudure TIG" in page and "Heure groupe (HGRO)" in page
    remove = re.search(rf"/consultations/{cid}/lots/\d+/supprimer", page).group(0)  # type: ignore[union-attr]
    assert post_form(browser, sam_site, f"/consultations/{cid}", remove, {}).status_code == 303
    assert "<td>Soudure TIG</td>" not in page_text(rp_get(browser, sam_site, f"/consultations/{cid}"))


def test_publishing_needs_a_lot(app: Any, sam_site: RP) -> None:
    browser, _, _ = buyer(app, sam_site)
    cid = create(browser, sam_site)
    response = publish(browser, sam_site, cid)
    assert response.status_code == 303
    page = page_text(browser.get(f"{sam_site.url}/consultations/{cid}"))
    assert "Ajoutez au moins un lot avant de publier la consultation." in page and "Brouillon" in page


def test_times_are_typed_and_shown_in_paris_and_stored_in_utc(app: Any, sam_site: RP) -> None:
    from apps.sam import db
    from apps.sam.models import Consultation

    browser, _, _ = buyer(app, sam_site)
    year = datetime.now(UTC).year + 1
    cid = create(browser, sam_site, question_deadline=f"{year}-01-10T09:30",
                 response_deadline=f"{year}-07-15T12:00")
    page = page_text(browser.get(f"{sam_site.url}/consultations/{cid}"))
    assert f"10/01/{year} à 09:30 (heure de Paris)" in page and f"15/07/{year} à 12:00 (heure de Paris)" in page
    with sam_site.app.app_context():
        consultation = db.session.get(Consultation, cid)
        assert consultation.question_deadline == datetime(year, 1, 10, 8, 30, tzinfo=UTC)  # winter: UTC+1
        assert consultation.response_deadline == datetime(year, 7, 15, 10, 0, tzinfo=UTC)  # summer: UTC+2


BAD_CONSULTATIONS = [
    ({"title": ""}, "Ce champ est obligatoire."),
    ({"reference": "x" * 41}, "40 caractères au maximum."),
    ({"response_deadline": "demain"}, "Saisissez une date et une heure valides"),
    ({"response_deadline": "2027-02-30T10:00"}, "Saisissez une date et une heure valides"),
    ({"question_deadline": "0001-01-01T00:00"}, "Saisissez une date entre 2000 et 2100."),
    ({"response_deadline": "9999-12-31T23:59"}, "Saisissez une date entre 2000 et 2100."),
    ({"question_deadline": local(soon(30)), "response_deadline": local(soon(20))},
     "La date limite des questions doit précéder la date limite de remise des offres."),
    ({"csrf_token": "forged"}, "Le formulaire a expiré"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_CONSULTATIONS)
def test_bad_consultation_input_keeps_the_form(app: Any, sam_site: RP, overrides: dict[str, str],
                                               message: str) -> None:
    browser, _, _ = buyer(app, sam_site)
    fields = consultation_fields(title=overrides.get("title", "Titre gardé"), description="Description gardée",
                                 **{k: v for k, v in overrides.items() if k != "title"})
    response = post_form(browser, sam_site, "/consultations/nouvelle", "/consultations/nouvelle", fields)
    assert response.status_code == 422, response.status_code
    page = page_text(response)
    assert message in page
    assert "Description gardée" in page and fields["reference"][:40] in page


def test_a_reference_is_unique(app: Any, sam_site: RP) -> None:
    browser, _, _ = buyer(app, sam_site)
    reference = unique_reference()
    create(browser, sam_site, reference=reference)
    response = post_form(browser, sam_site, "/consultations/nouvelle", "/consultations/nouvelle",
                         consultation_fields(reference=reference))
    assert response.status_code == 422
    assert "Cette référence est déjà celle d'une autre consultation." in page_text(response)


def test_only_buyers_create(app: Any, sam_site: RP) -> None:
    anonymous = rp_get(new_browser(), sam_site, "/consultations/nouvelle")
    assert anonymous.status_code == 302 and "/auth/login" in anonymous.headers["Location"]
    browser, _, _ = organisme_user(app, sam_site, ["sam:redacteur", "sam:signataire"])
    response = rp_get(browser, sam_site, "/consultations/nouvelle")
    assert response.status_code == 403
    assert "Accès refusé" in page_text(response) and "SAM — Acheteur" in page_text(response)
    assert rp_get(browser, sam_site, "/acheteur").status_code == 403


def test_a_buyer_of_another_structure_cannot_see_a_draft_or_edit(app: Any, sam_site: RP) -> None:
    owner, _, _ = buyer(app, sam_site)
    draft = create(owner, sam_site, title="Brouillon confidentiel")
    live = published(owner, sam_site)
    other, _, _ = buyer(app, sam_site)
    assert rp_get(other, sam_site, f"/consultations/{draft}").status_code == 404
    assert rp_get(other, sam_site, f"/consultations/{draft}/modifier").status_code == 404
    assert rp_get(other, sam_site, f"/consultations/{live}/rectificatif").status_code == 404
    page = rp_get(other, sam_site, f"/consultations/{live}")
    assert page.status_code == 200 and "Espace acheteur" not in page_text(page).split("</header>")[1]
    # A forged POST with the other buyer's own CSRF token changes nothing.
    token = page_form(rp_get(other, sam_site, "/consultations/nouvelle").text, "/consultations/nouvelle")["fields"]
    for path in (f"/consultations/{draft}/publier", f"/consultations/{live}/annuler", f"/consultations/{live}/lots"):
        assert other.post(f"{sam_site.url}{path}", data={"csrf_token": token["csrf_token"], "reason": "x"},
                          allow_redirects=False).status_code == 404
    assert "Brouillon" in page_text(rp_get(owner, sam_site, f"/consultations/{draft}"))


def test_two_buyers_saving_the_same_draft_the_second_gets_409(app: Any, sam_site: RP) -> None:
    first, org, _ = buyer(app, sam_site)
    second, _, _ = buyer(app, sam_site, org=org)
    cid = create(first, sam_site, title="Version initiale")
    path = f"/consultations/{cid}/modifier"
    form_one = page_form(rp_get(first, sam_site, path).text, path)["fields"]
    form_two = page_form(rp_get(second, sam_site, path).text, path)["fields"]
    saved = first.post(f"{sam_site.url}{path}", data={**form_one, "title": "Titre de la première"},
                       allow_redirects=False)
    assert saved.status_code == 303
    stale = second.post(f"{sam_site.url}{path}", data={**form_two, "title": "Titre de la seconde"},
                        allow_redirects=False)
    assert stale.status_code == 409
    assert "modifiée par quelqu'un d'autre" in page_text(stale) and "Titre de la seconde" in page_text(stale)
    page = page_text(rp_get(first, sam_site, f"/consultations/{cid}"))
    assert "Titre de la première" in page and "Titre de la seconde" not in page


# ---------------------------------------------------------------- amendments and the deadline rule

def test_an_amendment_is_kept_in_a_visible_history(app: Any, sam_site: RP) -> None:
    browser, _, _ = buyer(app, sam_site)
    cid = published(browser, sam_site, title="Titre d'origine")
    # Published: the draft form now leads to the amendment.
    assert rp_get(browser, sam_site, f"/consultations/{cid}/modifier").status_code == 303
    path = f"/consultations/{cid}/rectificatif"
    no_reason = post_form(browser, sam_site, path, path, {"title": "Titre rectifié", "reason": ""})
    assert no_reason.status_code == 422 and "Ce champ est obligatoire." in page_text(no_reason)
    assert 'value="Titre rectifié"' in no_reason.text
    response = post_form(browser, sam_site, path, path, {"title": "Titre rectifié",
                                                         "reason": "Erreur matérielle dans l'intitulé"})
    assert response.status_code == 303
    public = page_text(rp_get(new_browser(), sam_site, f"/consultations/{cid}"))
    assert "Avis rectificatif n° 1" in public and "Erreur matérielle dans l'intitulé" in public
    assert "Intitulé : « Titre d'origine » → « Titre rectifié »" in public
    journal = page_text(rp_get(browser, sam_site, f"/consultations/{cid}"))
    assert "Journal des actions" in journal and "Avis rectificatif" in journal and "Publication" in journal


def test_an_amendment_close_to_the_deadline_must_push_it_back(app: Any, sam_site: RP) -> None:
    browser, _, _ = buyer(app, sam_site)
    cid = published(browser, sam_site, question_deadline=local(soon(1)), response_deadline=local(soon(3)))
    path = f"/consultations/{cid}/rectificatif"
    form_page = page_text(rp_get(browser, sam_site, path))
    assert "Il reste moins de 6 jours avant la date limite de remise des offres" in form_page
    refused = post_form(browser, sam_site, path, path, {"description": "Précision", "reason": "Précision"})
    assert refused.status_code == 422
    assert "Un avis rectificatif doit laisser au moins 6 jours" in page_text(refused)
    assert "Précision" in page_text(refused)
    pushed = post_form(browser, sam_site, path, path, {"description": "Précision", "reason": "Précision",
                                                       "response_deadline": local(soon(7))})
    assert pushed.status_code == 303
    public = page_text(rp_get(new_browser(), sam_site, f"/consultations/{cid}"))
    assert "Date limite de remise des offres" in public and "Avis rectificatif n° 1" in public


def test_the_minimum_notice_is_configurable(app: Any, sam_site: RP) -> None:
    browser, _, _ = buyer(app, sam_site)
    cid = published(browser, sam_site, question_deadline=local(soon(1)), response_deadline=local(soon(3)))
    sam_site.app.config["AMENDMENT_MIN_DAYS"] = 2
    try:
        path = f"/consultations/{cid}/rectificatif"
        response = post_form(browser, sam_site, path, path, {"description": "Précision", "reason": "Précision"})
        assert response.status_code == 303
    finally:
        sam_site.app.config["AMENDMENT_MIN_DAYS"] = 6


def test_cancelling_a_published_consultation(app: Any, sam_site: RP) -> None:
    browser, _, _ = buyer(app, sam_site)
    cid = published(browser, sam_site, title="Consultation à annuler")
    no_reason = post_form(browser, sam_site, f"/consultations/{cid}", f"/consultations/{cid}/annuler", {"reason": ""})
    assert no_reason.status_code == 422
    response = post_form(browser, sam_site, f"/consultations/{cid}", f"/consultations/{cid}/annuler",
                         {"reason": "Besoin redéfini"})
    assert response.status_code == 303
    public = page_text(rp_get(new_browser(), sam_site, f"/consultations/{cid}"))
    assert "Annulée" in public and "motif : Besoin redéfini" in public
    page = listed(new_browser(), sam_site, "", etat="cloturees")
    assert "Consultation à annuler" in page


def test_lots_are_decided_once_closed(app: Any, sam_site: RP) -> None:
    browser, _, _ = buyer(app, sam_site)
    cid = published(browser, sam_site, lots=("Lot A", "Lot B"))
    page = rp_get(browser, sam_site, f"/consultations/{cid}").text
    assert "/decision" not in page  # open: no decision yet
    time_passes(sam_site, cid, responses=True)
    page = rp_get(browser, sam_site, f"/consultations/{cid}").text
    decisions = re.findall(rf"/consultations/{cid}/lots/\d+/decision", page)
    assert len(decisions) == 2
    no_awardee = post_form(browser, sam_site, f"/consultations/{cid}", decisions[0], {"outcome": "awarded"})
    assert no_awardee.status_code == 422 and "Indiquez l'attributaire du lot." in page_text(no_awardee)
    assert post_form(browser, sam_site, f"/consultations/{cid}", decisions[0],
                     {"outcome": "awarded", "awardee": "Formation Plus"}).status_code == 303
    assert "Clôturée" in page_text(rp_get(new_browser(), sam_site, f"/consultations/{cid}"))
    assert post_form(browser, sam_site, f"/consultations/{cid}", decisions[1],
                     {"outcome": "unsuccessful"}).status_code == 303
    public = page_text(rp_get(new_browser(), sam_site, f"/consultations/{cid}"))
    assert "Attribuée" in public and "Attribué : Formation Plus" in public and "Infructueux" in public


# ---------------------------------------------------------------- the public list and the search

def test_search_ignores_accents_and_plurals(app: Any, sam_site: RP) -> None:
    browser, _, _ = buyer(app, sam_site)
    tag = word()
    device = f"Dispositif {tag}"
    cid = published(browser, sam_site, title=f"Électricité des bâtiments {tag}", device=device,
                    lots=("Formation d'électricien", "Maintenance des chaudières"))
    reference = rp_get(new_browser(), sam_site, f"/consultations/{cid}").text
    for query in ("electricite", "ÉLECTRICITÉ", "électricités", "batiment", "bâtiments", "formations", "formation",
                  "chaudiere", "CHAUDIÈRES", "electricite batiment", "maintenances"):
        assert f"/consultations/{cid}\"" in listed(new_browser(), sam_site, query, dispositif=device), query
    for query in ("plomberie", "electricite plomberie"):
        assert f"/consultations/{cid}\"" not in listed(new_browser(), sam_site, query, dispositif=device), query
    ref = re.search(r"Réf\. <strong>([^<]+)</strong>", reference).group(1)  # type: ignore[union-attr]
    assert f"/consultations/{cid}\"" in listed(new_browser(), sam_site, ref)
    assert f"/consultations/{cid}\"" in listed(new_browser(), sam_site, tag)


def test_device_filter_closed_tab_pagination_newest_first(app: Any, sam_site: RP) -> None:
    browser, _, _ = buyer(app, sam_site)
    device = f"Dispositif {word()}"
    ids = [published(browser, sam_site, title=f"Consultation {n}", device=device) for n in range(4)]
    page_one = listed(new_browser(), sam_site, "", dispositif=device)
    found = [int(i) for i in re.findall(r'href="/consultations/(\d+)"', page_one)]
    assert found == [ids[3], ids[2], ids[1]]  # newest first, three per page in the tests
    assert "Page 1 sur 2 · 4 résultats" in page_one and f"dispositif={device.replace(' ', '+')}" in page_one
    page_two = listed(new_browser(), sam_site, "", dispositif=device, page="2")
    assert [int(i) for i in re.findall(r'href="/consultations/(\d+)"', page_two)] == [ids[0]]
    assert device in page_one  # the device is one of the filter's options
    time_passes(sam_site, ids[0], responses=True)
    closed = listed(new_browser(), sam_site, "", dispositif=device, etat="cloturees")
    assert f'href="/consultations/{ids[0]}"' in closed and f'href="/consultations/{ids[1]}"' not in closed
    current = listed(new_browser(), sam_site, "", dispositif=device)
    assert f'href="/consultations/{ids[0]}"' not in current
    assert "Clôturée" in page_text(rp_get(new_browser(), sam_site, f"/consultations/{ids[0]}"))
    for weird in ("0", "-1", "abc", "9" * 40, "99999"):
        assert browser.get(f"{sam_site.url}/consultations", params={"page": weird}).status_code == 200


# ---------------------------------------------------------------- the DCE

def test_dce_versions_hashes_and_public_downloads(app: Any, sam_site: RP) -> None:
    browser, _, _ = buyer(app, sam_site)
    cid = published(browser, sam_site, dce=PDF)
    second = b"%PDF-1.7\n% version 2\n%%EOF\n"
    assert upload(browser, sam_site, cid, "DCE modifié.pdf", second).status_code == 303
    page = page_text(rp_get(new_browser(), sam_site, f"/consultations/{cid}"))
    assert hashlib.sha256(second).hexdigest() in page and hashlib.sha256(PDF).hexdigest() in page
    assert "Versions précédentes" in page and "version 2" in page
    anonymous = new_browser()
    current = rp_get(anonymous, sam_site, f"/consultations/{cid}/dce")
    assert current.status_code == 200 and current.content == second
    assert current.headers["Content-Type"] == "application/pdf" and "attachment" in current.headers["Content-Disposition"]
    assert current.headers["X-Content-SHA256"] == hashlib.sha256(second).hexdigest()
    first = rp_get(anonymous, sam_site, f"/consultations/{cid}/dce/1")
    assert first.status_code == 200 and first.content == PDF
    assert rp_get(anonymous, sam_site, f"/consultations/{cid}/dce/3").status_code == 404
    journal = page_text(rp_get(browser, sam_site, f"/consultations/{cid}"))
    assert "Remplacement du DCE" in journal and "Dépôt du DCE" in journal


def _zip(names: dict[str, bytes]) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in names.items():
            archive.writestr(name, content)
    return buffer.getvalue()


DOCX = _zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document/>"})
ODT = _zip({"mimetype": b"application/vnd.oasis.opendocument.text", "content.xml": b"<office/>"})
ZIP = _zip({"CCTP.pdf": PDF, "RC.pdf": PDF})


@pytest.mark.parametrize(("name", "content", "content_type", "download_name"), [
    ("dce.zip", ZIP, "application/zip", "dce.zip"),
    ("cctp.docx", DOCX, "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "cctp.docx"),
    ("rc.odt", ODT, "application/vnd.oasis.opendocument.text", "rc.odt"),
    ("archive.pdf", ZIP, "application/zip", "archive.zip"),  # the content decides, not the name
])
def test_accepted_types_are_read_from_the_content(app: Any, sam_site: RP, name: str, content: bytes,
                                                  content_type: str, download_name: str) -> None:
    browser, _, _ = buyer(app, sam_site)
    cid = create(browser, sam_site)
    assert upload(browser, sam_site, cid, name, content, "application/octet-stream").status_code == 303
    response = rp_get(browser, sam_site, f"/consultations/{cid}/dce")
    assert response.status_code == 200 and response.content == content
    assert response.headers["Content-Type"].startswith(content_type)
    assert download_name in response.headers["Content-Disposition"]


@pytest.mark.parametrize(("name", "content", "status", "message"), [
    ("image.pdf", PNG, 422, "Type de fichier non accepté"),
    ("script.pdf", b"#!/bin/sh\necho hi\n", 422, "Type de fichier non accepté"),
    ("vide.pdf", b"", 422, "Choisissez un fichier"),
    ("gros.pdf", b"%PDF-" + b"0" * MAX_DCE_BYTES, 413, "Le fichier dépasse la taille maximale de 64 Ko."),
    ("enorme.pdf", b"%PDF-" + b"0" * (5 * MAX_DCE_BYTES), 413, "Le fichier dépasse la taille maximale de 64 Ko."),
])
def test_bad_uploads_get_a_french_message(app: Any, sam_site: RP, name: str, content: bytes, status: int,
                                          message: str) -> None:
    browser, _, _ = buyer(app, sam_site)
    cid = create(browser, sam_site, title="Titre conservé")
    response = upload(browser, sam_site, cid, name, content)
    assert response.status_code == status
    page = page_text(response)
    assert message in page and "Titre conservé" in page and f"/consultations/{cid}/dce" in page
    assert rp_get(browser, sam_site, f"/consultations/{cid}/dce").status_code == 404


def test_only_the_owning_buyer_uploads(app: Any, sam_site: RP) -> None:
    owner, _, _ = buyer(app, sam_site)
    cid = published(owner, sam_site)
    user, _, _ = organisme_user(app, sam_site)
    token = page_form(rp_get(user, sam_site, f"/consultations/{cid}").text, "/questions")["fields"]["csrf_token"]
    response = user.post(f"{sam_site.url}/consultations/{cid}/dce", data={"csrf_token": token},
                         files={"file": ("x.pdf", PDF, "application/pdf")}, allow_redirects=False)
    assert response.status_code == 404


# ---------------------------------------------------------------- registrations and alerts (real SMTP)

def test_a_registered_structure_is_alerted_an_unregistered_one_is_not(app: Any, sam_site: RP,
                                                                      mailbox: Mailbox) -> None:
    owner, _, _ = buyer(app, sam_site)
    cid = published(owner, sam_site, title="Consultation suivie")
    registered, org, registered_email = organisme_user(app, sam_site)
    unregistered, _, unregistered_email = organisme_user(app, sam_site)
    assert rp_get(registered, sam_site, f"/consultations/{cid}/dce").status_code == 200
    assert rp_get(unregistered, sam_site, f"/consultations/{cid}").status_code == 200  # reads, downloads nothing
    assert rp_get(new_browser(), sam_site, f"/consultations/{cid}/dce").status_code == 200  # anonymous download
    desk = page_text(rp_get(owner, sam_site, f"/consultations/{cid}"))
    assert "Structures inscrites aux alertes (1)" in desk and org.siret in desk

    assert upload(owner, sam_site, cid, "v2.pdf", b"%PDF-1.7\nv2\n%%EOF").status_code == 303
    mail = mailbox.wait_for(registered_email, "DCE modifié")
    assert "Consultation suivie" in mail_text(mail) and f"/consultations/{cid}#dce" in mail_text(mail)
    assert hashlib.sha256(b"%PDF-1.7\nv2\n%%EOF").hexdigest() in mail_text(mail)

    path = f"/consultations/{cid}/rectificatif"
    assert post_form(owner, sam_site, path, path, {"title": "Consultation suivie (rectifiée)",
                                                   "reason": "Nouvel intitulé"}).status_code == 303
    mail = mailbox.wait_for(registered_email, "Avis rectificatif")
    assert "Nouvel intitulé" in mail_text(mail)
    assert mailbox.to(unregistered_email) == []


def test_questions_and_published_answers(app: Any, sam_site: RP, mailbox: Mailbox) -> None:
    owner, _, _ = buyer(app, sam_site)
    cid = published(owner, sam_site, title="Consultation avec questions")
    asker, asker_org, asker_email = organisme_user(app, sam_site)
    downloader, _, downloader_email = organisme_user(app, sam_site)
    assert rp_get(downloader, sam_site, f"/consultations/{cid}/dce").status_code == 200
    empty = post_form(asker, sam_site, f"/consultations/{cid}", "/questions", {"text": "  "})
    assert empty.status_code == 422 and "Saisissez votre question." in page_text(empty)
    asked = post_form(asker, sam_site, f"/consultations/{cid}", "/questions",
                      {"text": "Les stagiaires en situation de handicap sont-ils concernés ?"})
    assert asked.status_code == 303
    # Before the answer nothing is public.
    assert "situation de handicap" not in page_text(rp_get(new_browser(), sam_site, f"/consultations/{cid}"))
    desk = rp_get(owner, sam_site, f"/consultations/{cid}").text
    assert "sans réponse" in page_text(rp_get(owner, sam_site, f"/consultations/{cid}"))
    answer_action = re.search(rf"/consultations/{cid}/questions/\d+/reponse", desk).group(0)  # type: ignore[union-attr]
    assert post_form(owner, sam_site, f"/consultations/{cid}", answer_action,
                     {"answer": "Oui, avec les aménagements prévus au CCTP."}).status_code == 303
    public = page_text(rp_get(new_browser(), sam_site, f"/consultations/{cid}"))
    assert "situation de handicap" in public and "aménagements prévus au CCTP" in public
    assert asker_org.name not in public and asker_email not in public
    for email in (asker_email, downloader_email):
        mail = mailbox.wait_for(email, "Réponse publiée")
        assert "aménagements prévus au CCTP" in mail_text(mail)


def test_people_without_a_sam_role_cannot_ask(app: Any, sam_site: RP) -> None:
    owner, _, _ = buyer(app, sam_site)
    cid = published(owner, sam_site)
    anonymous = new_browser()
    page = page_text(rp_get(anonymous, sam_site, f"/consultations/{cid}"))
    assert "pour poser une question" in page
    token = page_form(rp_get(owner, sam_site, f"/consultations/{cid}").text, "/annuler")["fields"]["csrf_token"]
    response = anonymous.post(f"{sam_site.url}/consultations/{cid}/questions", data={"text": "?", "csrf_token": token},
                              allow_redirects=False)
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    nobody, _, _ = organisme_user(app, sam_site, ["repernet:lecteur"])
    csrf = page_form(rp_get(owner, sam_site, "/consultations/nouvelle").text, "/consultations/nouvelle")
    response = nobody.post(f"{sam_site.url}/consultations/{cid}/questions",
                           data={"text": "Question ?", "csrf_token": csrf["fields"]["csrf_token"]},
                           allow_redirects=False)
    assert response.status_code == 403


def test_a_closed_consultation_refuses_questions(app: Any, sam_site: RP) -> None:
    owner, _, _ = buyer(app, sam_site)
    cid = published(owner, sam_site)
    user, _, _ = organisme_user(app, sam_site)
    form = page_form(rp_get(user, sam_site, f"/consultations/{cid}").text, "/questions")
    time_passes(sam_site, cid, questions=True)
    page = page_text(rp_get(user, sam_site, f"/consultations/{cid}"))
    assert "La date limite des questions est passée." in page and "Envoyer la question" not in page
    response = user.post(f"{sam_site.url}{form['action']}", data={**form["fields"], "text": "Trop tard ?"},
                         allow_redirects=False)
    assert response.status_code == 409
    assert "les questions sont closes" in page_text(response).lower()
    time_passes(sam_site, cid, responses=True)
    response = user.post(f"{sam_site.url}{form['action']}", data={**form["fields"], "text": "Trop tard ?"},
                         allow_redirects=False)
    assert response.status_code == 409


# ---------------------------------------------------------------- bad input: never a 500

@pytest.mark.parametrize("path", [
    "/consultations/0", "/consultations/-1", "/consultations/abc", "/consultations/" + "9" * 30,
    "/consultations/9223372036854775808", "/consultations/9223372036854775807",
    "/consultations/1%00", "/consultations/1/dce/" + "9" * 30, "/consultations/%C3%A9/dce",
])
def test_strange_ids_are_missing(sam_site: RP, path: str) -> None:
    assert rp_get(new_browser(), sam_site, path).status_code == 404


@pytest.mark.parametrize("query", ["\x00", "abc\x00def", "\"", "*", "NEAR(", "a OR b", "'; DROP TABLE x; --",
                                   "é" * 500, "-", "^", "()"])
def test_strange_searches_never_fail(sam_site: RP, query: str) -> None:
    response = new_browser().get(f"{sam_site.url}/consultations", params={"q": query, "dispositif": query})
    assert response.status_code == 200


def test_nul_bytes_in_forms_are_removed(app: Any, sam_site: RP) -> None:
    browser, _, _ = buyer(app, sam_site)
    cid = create(browser, sam_site, title="Titre\x00 avec NUL", description="Texte\x00")
    assert "Titre avec NUL" in page_text(rp_get(browser, sam_site, f"/consultations/{cid}"))
    response = add_lot(browser, sam_site, cid, 1, "Lot\x00")
    assert response.status_code == 303


def test_the_desk_lists_the_structure_s_consultations(app: Any, sam_site: RP) -> None:
    browser, org, _ = buyer(app, sam_site)
    draft = create(browser, sam_site, title="Brouillon du bureau")
    colleague, _, _ = buyer(app, sam_site, org=org)
    page = page_text(rp_get(colleague, sam_site, "/acheteur"))
    assert f"/consultations/{draft}" in page and "Brouillon du bureau" in page and "Brouillon" in page
    other, _, _ = buyer(app, sam_site, org=region(app))
    assert "Brouillon du bureau" not in page_text(rp_get(other, sam_site, "/acheteur"))


def test_deadline_instant_closes_for_everyone(app: Any, sam_site: RP) -> None:
    """Closing needs no scheduler: the same request after the deadline sees it closed."""
    from apps.sam import db
    from apps.sam.models import Consultation

    browser, _, _ = buyer(app, sam_site)
    cid = published(browser, sam_site)
    with sam_site.app.app_context():
        consultation = db.session.get(Consultation, cid)
        now = datetime.now(UTC)
        assert consultation.state(now) == "published"
        assert consultation.state(consultation.response_deadline) == "closed"
        assert consultation.state(consultation.response_deadline - timedelta(seconds=1)) == "published"


def test_the_owning_buyer_neither_asks_nor_registers(app: Any, sam_site: RP) -> None:
    browser, _, _ = buyer(app, sam_site)
    cid = published(browser, sam_site)
    page = rp_get(browser, sam_site, f"/consultations/{cid}")
    assert "Envoyer la question" not in page_text(page)
    assert rp_get(browser, sam_site, f"/consultations/{cid}/dce").status_code == 200
    assert "Structures inscrites aux alertes (0)" in page_text(rp_get(browser, sam_site, f"/consultations/{cid}"))
    token = page_form(page.text, f"/consultations/{cid}/annuler")["fields"]["csrf_token"]
    response = browser.post(f"{sam_site.url}/consultations/{cid}/questions",
                            data={"text": "Question ?", "csrf_token": token}, allow_redirects=False)
    assert response.status_code == 403 and "il n'en pose pas" in page_text(response)


def test_demo_data(tmp_path: Any) -> None:
    """`make run`'s demo: one published consultation of three lots with a DCE, one closed, one draft (once)."""
    from apps.sam import create_app, db
    from apps.sam.demo import REGION_SIRET, seed_app
    from apps.sam.models import Consultation
    from shared.migrations import upgrade

    demo = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
                       "FILES_DIR": str(tmp_path / "files"), "SECRET_KEY": "demo-test"})
    assert seed_app(demo) is False  # nothing before `db upgrade`
    upgrade(demo, db)
    assert seed_app(demo) is True and seed_app(demo) is False
    testclient = demo.test_client()
    current = testclient.get("/consultations").get_data(as_text=True)
    closed = testclient.get("/consultations?etat=cloturees").get_data(as_text=True)
    assert re.findall(r'href="/consultations/(\d+)"', current) == ["1"]
    assert re.findall(r'href="/consultations/(\d+)"', closed) == ["2"]
    page = testclient.get("/consultations/1").get_data(as_text=True)
    assert page.count("Heure stagiaire (HSTA)") + page.count("Heure groupe (HGRO)") == 3
    with testclient.get("/consultations/1/dce") as dce:
        assert dce.status_code == 200 and dce.mimetype == "application/zip" and dce.data.startswith(b"PK")
    assert testclient.get("/consultations/3").status_code == 404  # the draft
    assert "electricien" not in testclient.get("/consultations?q=plombier").get_data(as_text=True).lower()
    assert 'href="/consultations/1"' in testclient.get("/consultations?q=electriciens").get_data(as_text=True)
    with demo.app_context():
        # The Région owns them; a demo seeded before the owner was named gets it at the next start.
        assert set(db.session.scalars(select(Consultation.structure_id))) == {REGION_SIRET}
        db.session.execute(update(Consultation).values(structure_id=""))
        db.session.commit()
    assert seed_app(demo) is False
    with demo.app_context():
        assert set(db.session.scalars(select(Consultation.structure_id))) == {REGION_SIRET}
        db.engine.dispose()


def _demo_region(app: Any) -> Org:
    """The demo Région at the live IdP, as `idp demo seed` makes it (its id is the IdP's, not its SIRET)."""
    from apps.sam.demo import REGION_NAME, REGION_SIRET
    from idp.extensions import db
    from idp.models import Structure

    with app.app_context():
        found = db.session.scalar(select(Structure).where(Structure.siret == REGION_SIRET))
        if found is not None:
            return Org(found.siret, found.name, found.id)
    return make_structure(app, name=REGION_NAME, kind="region", siret=REGION_SIRET)


def test_the_demo_buyer_acts_on_the_demo_consultations(app: Any, live_server: str, tmp_path: Any) -> None:
    """The demo's buyer, logged in through the IdP, owns the demo consultations: she publishes the
    draft and opens the closed one's responses (the page that shows her the buttons lets her use them)."""
    from apps.sam.demo import seed_app

    sites = serve_rp(app, live_server, tmp_path, "sam", FILES_DIR=str(tmp_path / "files"))
    site = next(sites)
    try:
        assert seed_app(site.app) is True
        browser, region_org, _ = buyer(app, site, org=_demo_region(app))
        assert str(region_org.id) != region_org.siret  # the claims' structure id is the IdP's own
        assert publish(browser, site, 3).status_code == 303
        assert "La consultation est publiée." in page_text(browser.get(f"{site.url}/consultations/3"))
        assert rp_get(new_browser(), site, "/consultations/3").status_code == 200
        assert rp_get(browser, site, "/consultations/2/plis").status_code == 200
        opened = post_form(browser, site, "/consultations/2/plis", "/consultations/2/plis/ouverture", {})
        assert opened.status_code == 303
        assert "Ouverture des plis" in page_text(browser.get(f"{site.url}/consultations/2"))
    finally:
        next(sites, None)


def test_a_lot_is_rectified_by_an_amendment_once_published(app: Any, sam_site: RP, mailbox: Mailbox) -> None:
    browser, _, _ = buyer(app, sam_site)
    cid = published(browser, sam_site, lots=("Maçonnerie",), question_deadline=local(soon(1)),
                    response_deadline=local(soon(3)))
    follower, _, follower_email = organisme_user(app, sam_site)
    assert rp_get(follower, sam_site, f"/consultations/{cid}/dce").status_code == 200
    page = rp_get(browser, sam_site, f"/consultations/{cid}").text
    assert "/supprimer" not in page  # no direct change once published
    path = re.search(rf"/consultations/{cid}/lots/\d+/modifier", page).group(0)  # type: ignore[union-attr]
    form_page = page_text(rp_get(browser, sam_site, path))
    assert "Avis rectificatif" in form_page and "Il reste moins de 6 jours" in form_page
    refused = post_form(browser, sam_site, path, path, {"volume": "9000", "unit": "HSTA", "reason": "Volume revu"})
    assert refused.status_code == 422 and "doit laisser au moins 6 jours" in page_text(refused)
    assert 'value="9000"' in refused.text
    new_deadline = soon(8)
    done = post_form(browser, sam_site, path, path, {"volume": "9000", "unit": "HSTA", "reason": "Volume revu",
                                                     "response_deadline": local(new_deadline)})
    assert done.status_code == 303
    public = page_text(rp_get(new_browser(), sam_site, f"/consultations/{cid}"))
    assert "Avis rectificatif n° 1" in public and "Volume revu" in public and "9 000 HSTA" in public
    assert new_deadline.astimezone(ZoneInfo("Europe/Paris")).strftime("%d/%m/%Y à %H:%M") in public
    assert "Volume revu" in mail_text(mailbox.wait_for(follower_email, "Avis rectificatif"))


def test_two_buyers_publishing_amendments_at_once_the_second_gets_409(app: Any, sam_site: RP) -> None:
    first, org, _ = buyer(app, sam_site)
    second, _, _ = buyer(app, sam_site, org=org)
    cid = published(first, sam_site, title="Avant rectification")
    path = f"/consultations/{cid}/rectificatif"
    form_one = page_form(rp_get(first, sam_site, path).text, path)["fields"]
    form_two = page_form(rp_get(second, sam_site, path).text, path)["fields"]
    assert first.post(f"{sam_site.url}{path}", data={**form_one, "title": "Rectifié par la première",
                                                     "reason": "Première"}, allow_redirects=False).status_code == 303
    stale = second.post(f"{sam_site.url}{path}", data={**form_two, "title": "Rectifié par la seconde",
                                                       "reason": "Seconde"}, allow_redirects=False)
    assert stale.status_code == 409 and "Rectifié par la seconde" in page_text(stale)
    public = page_text(rp_get(new_browser(), sam_site, f"/consultations/{cid}"))
    assert "Avis rectificatif n° 1" in public and "Avis rectificatif n° 2" not in public


def test_the_migration_builds_the_models_schema(tmp_path: Any) -> None:
    """The unreleased 0001 revision matches the models (regenerate it after a model change)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from apps.sam import create_app, db
    from shared.migrations import upgrade

    sam_app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'schema.sqlite3'}",
                          "SECRET_KEY": "schema-test"})
    upgrade(sam_app, db)
    with sam_app.app_context(), db.engine.connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), db.metadata)
        tables = set(db.metadata.tables)
        ours = [d for d in diffs if not (d[0] in ("remove_table", "remove_index")
                                         and (d[1].table if d[0] == "remove_index" else d[1]).name not in tables)]
        assert ours == []
    with sam_app.app_context():
        db.engine.dispose()
