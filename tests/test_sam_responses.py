# ruff: noqa: F811 - pytest fixtures imported from tests/test_sam_response_helpers.py are parameters here
"""SAM, responses (issue 13) over HTTP against the live IdP, REPERNET and the Catalogue: the
candidature prefilled from REPERNET, draft → validated with what is missing in French, offers only
after the candidature, roles (the rédacteur prepares, the signataire validates, signs, submits),
stale saves, generated PDFs, PAdES signatures and their verification, sealed submission with its
receipt at the deadline's second, withdrawal, the buyer's opening, receipts checked against the
stored bytes, admissibility, award and its e-mails, and another structure's response kept hidden."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import Mailbox, mail_text
from tests.rp_helpers import RP, catalogue, new_browser, repernet, rp_get  # noqa: F401 - fixtures
from tests.test_sam_helpers import PDF, page_text, post_form, published, soon, time_passes
from tests.test_sam_response_helpers import (
    CANDIDATURE,
    OFFER,
    attach,
    clock,
    consultation,
    deadline_of,
    documents_of,
    lot_ids,
    new_offer,
    ok,
    press,
    ready,
    redacteur,
    sam_rp,  # noqa: F401 - the live-server fixture
    save_candidature,
    save_offer,
    signataire,
    start,
    submit,
    valid_candidature,
)


def raw_post(browser: Any, rp: RP, path: str, data: dict[str, str], **kwargs: Any) -> Any:
    """POST to `path` with a valid CSRF token (for a button the page no longer shows)."""
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', browser.get(f"{rp.url}/consultations").text)
    assert token
    return browser.post(f"{rp.url}{path}", data={"csrf_token": token.group(1), **data}, allow_redirects=False, **kwargs)


def response_page(browser: Any, rp: RP, rid: int) -> str:
    page = browser.get(f"{rp.url}/reponses/{rid}", allow_redirects=False)
    assert page.status_code == 200, page.status_code
    return page_text(page)


# ---------------------------------------------------------------- candidature

def test_the_candidature_is_prefilled_from_repernet(app: Any, sam_rp: RP, repernet: RP) -> None:
    from apps.repernet.models import StructureRecord
    from apps.repernet.models import db as repernet_db

    _, _, cid = consultation(app, sam_rp)
    browser, org, _ = signataire(app, sam_rp)
    with repernet.app.app_context():
        repernet_db.session.add(StructureRecord(
            siret=org.siret, siren=org.siret[:9], raison_sociale="Institut de Formation Rhône", legal_category="9220",
            ape_code="8559A", address="5 place Bellecour", postal_code="69002", city="Lyon", rep_first_name="Anne",
            rep_last_name="Rousseau", rep_title="Présidente", rep_email="anne@ifr.test"))
        repernet_db.session.commit()
    rid = start(browser, sam_rp, cid)
    page = response_page(browser, sam_rp, rid)
    assert "reprises de REPERNET" in page and "Institut de Formation Rhône" in page and "5 place Bellecour" in page
    assert "Anne Rousseau, Présidente" in page
    form = page_text(browser.get(f"{sam_rp.url}/reponses/{rid}/candidature"))
    assert 'value="69002"' in form and "Identité et adresse reprises de REPERNET." in form
    # Without a record in REPERNET, the claims: the structure's name.
    other, other_org, _ = signataire(app, sam_rp)
    rid = start(other, sam_rp, cid)
    assert other_org.name in response_page(other, sam_rp, rid)


def test_repernet_read_endpoint_needs_a_token_with_its_scope(repernet: RP) -> None:
    assert rp_get(new_browser(), repernet, "/api/v1/structures/12345678900018").status_code == 401


def test_validation_lists_what_is_missing_and_offers_wait_for_the_candidature(app: Any, sam_rp: RP) -> None:
    _, _, cid = consultation(app, sam_rp, lots=("Lot A", "Lot B"))
    browser, _, _ = signataire(app, sam_rp)
    rid = start(browser, sam_rp, cid)
    ok(press(browser, sam_rp, rid, f"/reponses/{rid}/candidature/valider"))
    page = response_page(browser, sam_rp, rid)
    assert "Le formulaire reste en brouillon" in page
    for missing in ("Représentant légal", "Signataire habilité", "Pièce jointe manquante : Pouvoir de la personne "
                    "habilitée à engager le candidat", "Pièce jointe manquante : Certification Qualiopi",
                    "Sites de réalisation : au moins un site de réalisation"):
        assert missing in page, missing
    # No offer before the candidature is validated.
    response = browser.post(f"{sam_rp.url}/reponses/{rid}/offres",
                            data={"lot": str(lot_ids(sam_rp, cid)[0]),
                                  "csrf_token": re.search(r'name="csrf_token"[^>]*value="([^"]+)"',
                                                          browser.get(f"{sam_rp.url}/reponses/{rid}").text).group(1)},
                            allow_redirects=False)
    assert response.status_code == 303
    assert "Validez d'abord la candidature" in response_page(browser, sam_rp, rid)
    # A group needs its members and the mandate letter.
    ok(save_candidature(browser, sam_rp, rid, group_kind="groupement"))
    ok(press(browser, sam_rp, rid, f"/reponses/{rid}/candidature/valider"))
    page = response_page(browser, sam_rp, rid)
    assert "Membres du groupement : au moins un co-traitant" in page and "Lettre d'habilitation du mandataire" in page
    valid_candidature(browser, sam_rp, rid)
    assert "DC1 - " in response_page(browser, sam_rp, rid)
    # Saving again returns it to draft (and the DC1 goes with its validation).
    ok(save_candidature(browser, sam_rp, rid, phone="04 78 99 99 99"))
    page = response_page(browser, sam_rp, rid)
    assert "Valider la candidature" in page and "DC1 - " not in page


def test_offer_fields_validation_and_one_offer_per_lot(app: Any, sam_rp: RP) -> None:
    _, _, cid = consultation(app, sam_rp, lots=("Lot A", "Lot B"))
    browser, _, _ = signataire(app, sam_rp)
    rid = start(browser, sam_rp, cid)
    valid_candidature(browser, sam_rp, rid)
    first, second = lot_ids(sam_rp, cid)
    oid = new_offer(browser, sam_rp, rid, first)
    ok(press(browser, sam_rp, rid, f"/reponses/{rid}/offres/{oid}/valider"))
    page = response_page(browser, sam_rp, rid)
    for missing in ("Formacode (5 chiffres)", "Objectifs de la formation", "Prix unitaire par unité d'œuvre (HSTA)",
                    "Sessions prévues : au moins une session", "Pièce jointe manquante : Annexe technique"):
        assert missing in page, missing
    bad = save_offer(browser, sam_rp, rid, oid, hours="beaucoup", unit_price="douze")
    assert bad.status_code == 422 and "Saisissez un nombre." in page_text(bad) and "Module 1 : habilitations" in page_text(bad)
    ok(save_offer(browser, sam_rp, rid, oid, **{"sessions-0-end": "2026-01-01"}))
    ok(attach(browser, sam_rp, rid, "annexe", offer=oid))
    ok(press(browser, sam_rp, rid, f"/reponses/{rid}/offres/{oid}/valider"))
    assert "Session n° 1 : la fin doit suivre le début" in response_page(browser, sam_rp, rid)
    ok(save_offer(browser, sam_rp, rid, oid))
    ok(press(browser, sam_rp, rid, f"/reponses/{rid}/offres/{oid}/valider"))
    page = response_page(browser, sam_rp, rid)
    assert "Acte d'engagement - " in page and "12,50 € par HSTA" in page
    # The lot answered is no longer offered for a new offer; the other one is.
    assert f'<option value="{first}"' not in browser.get(f"{sam_rp.url}/reponses/{rid}").text
    assert f'<option value="{second}"' in browser.get(f"{sam_rp.url}/reponses/{rid}").text


def test_a_redacteur_prepares_but_cannot_validate_sign_or_submit(app: Any, sam_rp: RP) -> None:
    _, _, cid = consultation(app, sam_rp)
    boss, org, _, rid, _ = ready(app, sam_rp, cid)
    writer, _, _ = redacteur(app, sam_rp, org=org)
    assert response_page(writer, sam_rp, rid)  # they read and prepare it
    ok(save_candidature(writer, sam_rp, rid, phone="04 00 00 00 00"))
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', writer.get(f"{sam_rp.url}/reponses/{rid}").text).group(1)
    for action in ("candidature/valider", "deposer", "retirer"):
        refused = writer.post(f"{sam_rp.url}/reponses/{rid}/{action}", data={"csrf_token": token}, allow_redirects=False)
        assert refused.status_code == 403, action
        assert "Signataire" in page_text(refused) or "signataire" in page_text(refused)
    assert "Valider la candidature" not in response_page(writer, sam_rp, rid)
    assert "Déposer la réponse" not in response_page(writer, sam_rp, rid)


def test_two_people_saving_the_same_form_the_second_gets_a_conflict(app: Any, sam_rp: RP) -> None:
    _, _, cid = consultation(app, sam_rp)
    first, org, _ = signataire(app, sam_rp)
    rid = start(first, sam_rp, cid)
    second, _, _ = redacteur(app, sam_rp, org=org)
    path = f"/reponses/{rid}/candidature"
    from tests.rp_helpers import page_form

    one = page_form(first.get(f"{sam_rp.url}{path}").text, path)["fields"]
    two = page_form(second.get(f"{sam_rp.url}{path}").text, path)["fields"]
    assert first.post(f"{sam_rp.url}{path}", data={**one, **CANDIDATURE, "legal_name": "Saisie de la première"},
                      allow_redirects=False).status_code == 303
    stale = second.post(f"{sam_rp.url}{path}", data={**two, **CANDIDATURE, "legal_name": "Saisie de la seconde"},
                        allow_redirects=False)
    assert stale.status_code == 409
    assert "modifiée par quelqu'un d'autre" in page_text(stale) and 'value="Saisie de la seconde"' in stale.text
    assert "Saisie de la première" in response_page(first, sam_rp, rid)


# ---------------------------------------------------------------- documents and signatures

def _pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type /Page\b", pdf))


def test_generated_documents_carry_the_reference_on_every_page_and_follow_the_data(app: Any, sam_rp: RP) -> None:
    _, _, cid = consultation(app, sam_rp, reference=f"REF-{hashlib.sha256(str(soon(0)).encode()).hexdigest()[:8]}")
    browser, _, _, rid, oid = ready(app, sam_rp, cid)
    reference = re.search(r"Réponse de .* — (\S+)</h1>", response_page(browser, sam_rp, rid)).group(1)
    docs = {kind: did for did, kind, _ in documents_of(sam_rp, rid)}
    assert set(docs) == {"dc1", "ae"}
    for did in docs.values():
        pdf = browser.get(f"{sam_rp.url}/reponses/{rid}/documents/{did}").content
        assert pdf.startswith(b"%PDF-")
        assert pdf.count(f"Réf. {reference}".encode("latin-1")) == _pages(pdf) >= 1  # every page's footer
    ae = browser.get(f"{sam_rp.url}/reponses/{rid}/documents/{docs['ae']}").content
    assert b"12,50 EUR par HSTA" in ae and b"420 heures" in ae
    # Changed data, new document.
    ok(save_offer(browser, sam_rp, rid, oid, unit_price="13.75"))
    ok(attach(browser, sam_rp, rid, "annexe", offer=oid, content=PDF + b"%v2"))
    ok(press(browser, sam_rp, rid, f"/reponses/{rid}/offres/{oid}/valider"))
    docs = {kind: did for did, kind, _ in documents_of(sam_rp, rid)}
    ae = browser.get(f"{sam_rp.url}/reponses/{rid}/documents/{docs['ae']}").content
    assert b"13,75 EUR par HSTA" in ae


def _document_hashes(rp: RP, rid: int) -> dict[str, str]:
    from apps.sam import db
    from apps.sam.models import TenderResponse

    with rp.app.app_context():
        return {d.kind: d.sha256 for d in db.session.get(TenderResponse, rid).documents}


def test_an_amendment_regenerates_the_documents_of_responses_in_preparation_only(app: Any, sam_rp: RP) -> None:
    """An "avis rectificatif" (the consultation's title, a lot's title) reaches the DC1 and the actes
    d'engagement of responses in preparation; a submitted response stays as its receipt sealed it."""
    buyer_browser, _, cid = consultation(app, sam_rp, title="Formations initiales")
    browser, _, _, rid, _ = ready(app, sam_rp, cid)
    sealed_browser, _, _, sealed_rid, _ = ready(app, sam_rp, cid)
    ok(submit(sealed_browser, sam_rp, sealed_rid))
    sealed = _document_hashes(sam_rp, sealed_rid)
    lot = lot_ids(sam_rp, cid)[0]
    path = f"/consultations/{cid}/lots/{lot}/modifier"
    ok(post_form(buyer_browser, sam_rp, path, path, {"title": "Electricien courant fort", "unit": "HSTA",
                                                     "reason": "Intitule precise"}))
    path = f"/consultations/{cid}/rectificatif"
    ok(post_form(buyer_browser, sam_rp, path, path, {"title": "Formations rectifiees", "reason": "Titre precise"}))
    docs = {kind: did for did, kind, _ in documents_of(sam_rp, rid)}
    ae = browser.get(f"{sam_rp.url}/reponses/{rid}/documents/{docs['ae']}").content
    assert b"Electricien courant fort" in ae and b"Formations rectifiees" in ae
    assert b"Formations rectifiees" in browser.get(f"{sam_rp.url}/reponses/{rid}/documents/{docs['dc1']}").content
    assert _document_hashes(sam_rp, sealed_rid) == sealed
    assert "Votre réponse est déposée" in response_page(sealed_browser, sam_rp, sealed_rid)


def _sign_first_ae(browser: Any, rp: RP, rid: int) -> int:
    did = next(did for did, kind, _ in documents_of(rp, rid) if kind == "ae")
    ok(post_form(browser, rp, f"/reponses/{rid}", f"/reponses/{rid}/documents/{did}/signer", {}))
    return did


def test_sign_and_verify_and_a_pdf_edited_after_signing_fails(app: Any, sam_rp: RP) -> None:
    _, _, cid = consultation(app, sam_rp)
    browser, _, _, rid, _ = ready(app, sam_rp, cid)
    did = _sign_first_ae(browser, sam_rp, rid)
    assert "est signé électroniquement (PAdES)" in response_page(browser, sam_rp, rid)
    check = page_text(browser.get(f"{sam_rp.url}/reponses/{rid}/documents/{did}/verification"))
    assert "Signature valide." in check and "Camille Test" in check
    assert "Document modifié après signature</dt><dd id=\"modified\">Non" in check
    assert "il se rattache à une autorité de confiance" in check
    signed = browser.get(f"{sam_rp.url}/reponses/{rid}/documents/{did}", params={"signe": "1"}).content
    assert b"/ByteRange" in signed

    def verify(content: bytes) -> str:
        response = post_form(browser, sam_rp, "/signature/verifier", "/signature/verifier", {},
                             files={"file": ("acte.pdf", content, "application/pdf")})
        assert response.status_code == 200, response.status_code
        return page_text(response)

    assert "Signature valide." in verify(signed)
    at = signed.index(b"Acte d'engagement")
    edited = signed[:at] + b"Acte d'engagemenX" + signed[at + len(b"Acte d'engagement"):]
    result = verify(edited)
    assert "Signature NON valide." in result and "Oui : le document a été modifié après la signature" in result
    assert "ne porte aucune signature" in verify(browser.get(f"{sam_rp.url}/reponses/{rid}/documents/{did}").content)
    assert "n'est pas un PDF lisible" in verify(b"not a pdf at all")


def test_a_signature_from_an_untrusted_authority_is_not_trusted(app: Any, sam_rp: RP) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from apps.sam import documents, signing
    from apps.sam.models import db

    engine = create_engine("sqlite://")
    db.metadata.create_all(engine)
    with Session(engine) as other:  # another "platform": its own CA, unknown to SAM
        signer = signing.demo_signer(other, "intrus", "Intrus", datetime.now(UTC))
        pdf = signing.sign_pdf(documents.receipt({
            "reference": "X", "title": "X", "candidate": "X", "siret": "1", "number": 1,
            "submitted_at": datetime.now(UTC), "submitted_by": "X", "digest": "0" * 64, "files": []}),
            signer, name="Intrus", reason="test")
    browser, _, _ = signataire(app, sam_rp)
    response = post_form(browser, sam_rp, "/signature/verifier", "/signature/verifier", {},
                         files={"file": ("x.pdf", pdf, "application/pdf")})
    result = page_text(response)
    assert "Signature NON valide." in result and "ne se rattache à aucune autorité de confiance" in result
    assert '<dd id="modified">Non' in result


def test_a_consultation_requiring_signatures_refuses_a_missing_one(app: Any, sam_rp: RP) -> None:
    _, _, cid = consultation(app, sam_rp, signature_required="y")
    browser, _, _, rid, _ = ready(app, sam_rp, cid)
    ok(submit(browser, sam_rp, rid))
    page = response_page(browser, sam_rp, rid)
    assert "La réponse ne peut pas être déposée" in page and "n'est pas signé" in page and "En préparation" in page
    _sign_first_ae(browser, sam_rp, rid)
    ok(submit(browser, sam_rp, rid))
    assert "Votre réponse est déposée" in response_page(browser, sam_rp, rid)


# ---------------------------------------------------------------- submission

def test_submission_receipt_mail_immutability_withdrawal_and_history(app: Any, sam_rp: RP, mailbox: Mailbox) -> None:
    _, _, cid = consultation(app, sam_rp)
    browser, _, email, rid, oid = ready(app, sam_rp, cid)
    ok(submit(browser, sam_rp, rid))
    page = response_page(browser, sam_rp, rid)
    digest = re.search(r'id="receipt-digest">([0-9a-f]{64})<', page).group(1)
    assert "Votre réponse est déposée le" in page and "Déposée" in page
    mail = mailbox.wait_for(email, "Accusé de réception")
    assert digest in mail_text(mail) and f"/reponses/{rid}" in mail_text(mail)
    from apps.sam import db
    from apps.sam.models import Submission

    with sam_rp.app.app_context():
        submission = db.session.query(Submission).filter_by(response_id=rid).one()
        assert hashlib.sha256(submission.manifest.encode()).hexdigest() == digest
        sealed = json.loads(submission.manifest)["response"]
        assert {f["role"] for f in sealed["files"]} >= {"document généré"} and sealed["offers"][0]["hours"] == 420
        sid = submission.id
    receipt = browser.get(f"{sam_rp.url}/reponses/{rid}/accuses/{sid}.pdf")
    assert receipt.status_code == 200 and receipt.content.startswith(b"%PDF-") and digest.encode() in receipt.content
    # Immutable: no save, no file, no validation.
    refused = save_candidature(browser, sam_rp, rid, legal_name="Changé après dépôt")
    assert refused.status_code == 409 and "La réponse est déposée" in page_text(refused)
    assert save_offer(browser, sam_rp, rid, oid, hours="1").status_code == 409
    ok(raw_post(browser, sam_rp, f"/reponses/{rid}/pieces", {"kind": "bilan"},
                files={"file": ("bilan.pdf", PDF, "application/pdf")}))
    assert "ne peut plus être modifiée" in response_page(browser, sam_rp, rid)
    ok(raw_post(browser, sam_rp, f"/reponses/{rid}/offres/{oid}/valider", {}))
    assert "ne peut plus être modifiée" in response_page(browser, sam_rp, rid)
    # Withdraw, change, submit again: the last counts, the first receipt stays in the history.
    ok(press(browser, sam_rp, rid, f"/reponses/{rid}/retirer"))
    assert "Votre réponse est retirée" in response_page(browser, sam_rp, rid)
    ok(save_offer(browser, sam_rp, rid, oid, hours="400"))
    ok(press(browser, sam_rp, rid, f"/reponses/{rid}/offres/{oid}/valider"))
    ok(submit(browser, sam_rp, rid))
    page = response_page(browser, sam_rp, rid)
    second = re.search(r'id="receipt-digest">([0-9a-f]{64})<', page).group(1)
    assert second != digest and "Accusé de réception n° 2" in page
    assert "Historique des dépôts" in page and digest in page and "(retiré le" in page


def test_a_submission_one_second_after_the_deadline_is_refused(app: Any, sam_rp: RP) -> None:
    _, _, cid = consultation(app, sam_rp)
    browser, _, _, rid, _ = ready(app, sam_rp, cid)
    deadline = deadline_of(sam_rp, cid)
    with clock(sam_rp, deadline + timedelta(seconds=1)):
        ok(raw_post(browser, sam_rp, f"/reponses/{rid}/deposer", {}))
        page = response_page(browser, sam_rp, rid)
        assert "La date limite de remise des offres est passée" in page and "En préparation" in page
    with clock(sam_rp, deadline - timedelta(seconds=1)):
        ok(submit(browser, sam_rp, rid))
        assert "Votre réponse est déposée" in response_page(browser, sam_rp, rid)
    with clock(sam_rp, deadline):  # the deadline itself is already too late
        ok(raw_post(browser, sam_rp, f"/reponses/{rid}/retirer", {}))
        assert "La date limite de remise des offres est passée" in response_page(browser, sam_rp, rid)


# ---------------------------------------------------------------- sealed, then opened

def _buyer_routes(cid: int, rid: int, did: int, aid: int) -> list[str]:
    return [f"/consultations/{cid}/plis/{rid}", f"/consultations/{cid}/plis/{rid}/documents/{did}",
            f"/consultations/{cid}/plis/{rid}/documents/{did}?signe=1", f"/consultations/{cid}/plis/{rid}/pieces/{aid}",
            f"/consultations/{cid}/plis.csv", f"/reponses/{rid}", f"/reponses/{rid}/candidature",
            f"/reponses/{rid}/documents/{did}", f"/reponses/{rid}/pieces/{aid}", f"/reponses/{rid}/accuses/1.pdf",
            f"/reponses/{rid}/documents/{did}/verification"]


def _ids(rp: RP, rid: int) -> tuple[int, int]:
    from apps.sam import db
    from apps.sam.models import TenderResponse

    with rp.app.app_context():
        response = db.session.get(TenderResponse, rid)
        return response.documents[0].id, response.attachments[0].id


def test_sealed_until_the_deadline_then_opened_with_the_receipt_checked(app: Any, sam_rp: RP) -> None:
    buyer_browser, _, cid = consultation(app, sam_rp)
    browser, _, _, rid, _ = ready(app, sam_rp, cid, formacode="44028")
    _sign_first_ae(browser, sam_rp, rid)
    ok(submit(browser, sam_rp, rid))
    did, aid = _ids(sam_rp, rid)
    digest = re.search(r'id="receipt-digest">([0-9a-f]{64})<', response_page(browser, sam_rp, rid)).group(1)
    # Before the deadline: the number only, every route to the content is missing.
    page = page_text(buyer_browser.get(f"{sam_rp.url}/consultations/{cid}"))
    assert "1 réponse déposée" in page
    plis = page_text(buyer_browser.get(f"{sam_rp.url}/consultations/{cid}/plis"))
    assert "1</strong> réponse déposée" in plis and "scellés" in plis and "Formation Plus" not in plis
    for path in _buyer_routes(cid, rid, did, aid):
        assert rp_get(buyer_browser, sam_rp, path).status_code == 404, path
    # After the deadline, still sealed until the opening; the opening is audited.
    time_passes(sam_rp, cid, responses=True)
    assert rp_get(buyer_browser, sam_rp, f"/consultations/{cid}/plis/{rid}").status_code == 404
    ok(post_form(buyer_browser, sam_rp, f"/consultations/{cid}/plis", f"/consultations/{cid}/plis/ouverture", {}))
    assert "Ouverture des plis" in page_text(buyer_browser.get(f"{sam_rp.url}/consultations/{cid}"))
    opened = page_text(buyer_browser.get(f"{sam_rp.url}/consultations/{cid}/plis/{rid}"))
    assert "Formation Plus" in opened and digest in opened and "Conforme" in opened
    assert buyer_browser.get(f"{sam_rp.url}/consultations/{cid}/plis/{rid}/pieces/{aid}").content == PDF
    assert buyer_browser.get(f"{sam_rp.url}/consultations/{cid}/plis/{rid}/documents/{did}").content.startswith(b"%PDF")
    export = buyer_browser.get(f"{sam_rp.url}/consultations/{cid}/plis.csv")
    assert export.status_code == 200 and "Formation Plus" in export.content.decode("utf-8-sig") and digest in export.text
    # The candidate's own routes stay theirs.
    assert rp_get(buyer_browser, sam_rp, f"/reponses/{rid}").status_code == 404
    # A changed byte in a stored file shows as a mismatch.
    from apps.sam import db
    from apps.sam.models import TenderResponse
    from apps.sam.responses import attachment_path

    with sam_rp.app.app_context():
        response = db.session.get(TenderResponse, rid)
        path = attachment_path(__import__("pathlib").Path(sam_rp.app.config["FILES_DIR"]).resolve(), response,
                               response.attachments[0])
        original = path.read_bytes()
        path.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    try:
        tampered = page_text(buyer_browser.get(f"{sam_rp.url}/consultations/{cid}/plis/{rid}"))
        assert "Non conforme" in tampered and "a changé ou manque" in tampered
    finally:
        path.write_bytes(original)


def test_another_structure_cannot_read_a_response(app: Any, sam_rp: RP) -> None:
    _, _, cid = consultation(app, sam_rp)
    browser, _, _, rid, oid = ready(app, sam_rp, cid)
    ok(submit(browser, sam_rp, rid))
    did, aid = _ids(sam_rp, rid)
    other, _, _ = signataire(app, sam_rp)
    paths = [f"/reponses/{rid}", f"/reponses/{rid}/candidature", f"/reponses/{rid}/offres/{oid}",
             f"/reponses/{rid}/documents/{did}", f"/reponses/{rid}/documents/{did}?signe=1",
             f"/reponses/{rid}/pieces/{aid}", f"/reponses/{rid}/accuses/1.pdf",
             f"/reponses/{rid}/documents/{did}/verification", f"/consultations/{cid}/plis/{rid}",
             f"/consultations/{cid}/plis"]
    for path in paths:
        assert rp_get(other, sam_rp, path).status_code == 404, path
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', other.get(f"{sam_rp.url}/consultations/{cid}").text).group(1)
    for action in ("candidature/valider", "deposer", "retirer", f"offres/{oid}/valider", f"documents/{did}/signer"):
        assert other.post(f"{sam_rp.url}/reponses/{rid}/{action}", data={"csrf_token": token},
                          allow_redirects=False).status_code == 404, action
    anonymous = rp_get(new_browser(), sam_rp, f"/reponses/{rid}")
    assert anonymous.status_code == 302 and "/auth/login" in anonymous.headers["Location"]
    for bad in ("abc", "0", "99999999999999999999", "-1"):
        assert rp_get(other, sam_rp, f"/reponses/{bad}").status_code == 404


# ---------------------------------------------------------------- award

def test_admissibility_award_outcome_mails_and_the_catalogue_queue(app: Any, sam_rp: RP, mailbox: Mailbox) -> None:
    from apps.sam import db
    from apps.sam.models import CatalogueDispatch

    buyer_browser, _, cid = consultation(app, sam_rp)
    winner, _, winner_email, rid_a, oid_a = ready(app, sam_rp, cid)
    loser, _, loser_email, rid_b, oid_b = ready(app, sam_rp, cid)
    ok(submit(winner, sam_rp, rid_a))
    ok(submit(loser, sam_rp, rid_b))
    lot = lot_ids(sam_rp, cid)[0]
    time_passes(sam_rp, cid, responses=True)
    ok(post_form(buyer_browser, sam_rp, f"/consultations/{cid}/plis", f"/consultations/{cid}/plis/ouverture", {}))
    # Only an admissible offer can win; a reason is required.
    page = page_text(buyer_browser.get(f"{sam_rp.url}/consultations/{cid}/plis"))
    assert "Attribuer le lot à cette offre" not in page
    for rid, oid, value, reason in ((rid_a, oid_a, "1", "Offre complète et conforme."),
                                    (rid_b, oid_b, "0", "Prix anormalement bas.")):
        path = f"/consultations/{cid}/plis/{rid}"
        action = f"{path}/offres/{oid}/admissibilite"
        # Bad input: a 422 with the message beside its field (a reason too long, a choice not offered
        # were a redirect saying "choose and give a reason", found by the fuzz pass).
        for bad, message in (((value, ""), "Ce champ est obligatoire."),
                             ((value, "   "), "Indiquez le motif de la décision d'admissibilité."),
                             ((value, "é" * 2001), "2000 caractères au maximum."),
                             (("²", reason), "N'est pas un choix valide.")):
            refused = post_form(buyer_browser, sam_rp, path, action, {"admissible": bad[0], "reason": bad[1]})
            assert refused.status_code == 422 and message in page_text(refused), (bad[0], bad[1][:5], refused.status_code)
        assert "à analyser" in page_text(buyer_browser.get(f"{sam_rp.url}{path}"))
        ok(post_form(buyer_browser, sam_rp, path, action, {"admissible": value, "reason": reason}))
    page = buyer_browser.get(f"{sam_rp.url}/consultations/{cid}/plis").text
    assert f"/lots/{lot}/attribution/{oid_b}" not in page
    ok(post_form(buyer_browser, sam_rp, f"/consultations/{cid}/plis", f"/consultations/{cid}/lots/{lot}/attribution/{oid_a}", {}))
    page = page_text(buyer_browser.get(f"{sam_rp.url}/consultations/{cid}"))
    assert "Attribué : Formation Plus" in page
    decided = raw_post(buyer_browser, sam_rp, f"/consultations/{cid}/plis/{rid_b}/offres/{oid_b}/admissibilite",
                       {"admissible": "1", "reason": "Revu."})
    assert decided.status_code == 409 and "Le lot n° 1 est déjà décidé." in page_text(decided)
    won = mailbox.wait_for(winner_email, "Votre offre est retenue")
    assert "le lot vous est attribué" in mail_text(won)
    lost = mailbox.wait_for(loser_email, "Votre offre n'est pas retenue")
    assert "Prix anormalement bas." in mail_text(lost)
    with sam_rp.app.app_context():
        row = db.session.query(CatalogueDispatch).filter_by(offer_id=oid_a).one()
        payload = json.loads(row.payload)
        assert row.award_id == f"sam-award-{lot}" and payload["formacode"] == "44028"
        assert payload["sites"][0]["sessions"] == [{"start": "2027-01-11", "end": "2027-06-30"}]
        assert payload["contact"]["name"] == "Paul Martin" and "unit_price" not in json.dumps(payload)
    assert OFFER["objectives"] == payload["objectives"]


# ---------------------------------------------------------------- the flow to the Catalogue (point 7)

def _awarded(app: Any, rp: RP, lot_title: str) -> tuple[int, int, int]:
    """A consultation whose only lot is awarded to one admissible offer: (consultation, lot, offer)."""
    buyer_browser, _, cid = consultation(app, rp, lots=(lot_title,))
    browser, _, _, rid, oid = ready(app, rp, cid)
    ok(submit(browser, rp, rid))
    time_passes(rp, cid, responses=True)
    ok(post_form(buyer_browser, rp, f"/consultations/{cid}/plis", f"/consultations/{cid}/plis/ouverture", {}))
    path = f"/consultations/{cid}/plis/{rid}"
    ok(post_form(buyer_browser, rp, path, f"{path}/offres/{oid}/admissibilite", {"admissible": "1", "reason": "Conforme."}))
    lot = lot_ids(rp, cid)[0]
    ok(post_form(buyer_browser, rp, f"/consultations/{cid}/plis", f"/consultations/{cid}/lots/{lot}/attribution/{oid}", {}))
    return cid, lot, oid


def _dispatch(rp: RP, oid: int) -> dict[str, Any]:
    from apps.sam import db
    from apps.sam.models import CatalogueDispatch

    with rp.app.app_context():
        row = db.session.query(CatalogueDispatch).filter_by(offer_id=oid).one()
        return {"status": row.status, "attempts": row.attempts, "next": row.next_attempt_at, "error": row.last_error,
                "remote_id": row.remote_id, "award_id": row.award_id}


def _catalogue_offers(catalogue: RP, award_id: str) -> list[tuple[int, str, str | None]]:
    from apps.catalogue.models import Offer as CatalogueOffer
    from apps.catalogue.models import db as catalogue_db

    with catalogue.app.app_context():
        return [(o.id, o.title, o.source_client) for o in catalogue_db.session.query(CatalogueOffer)
                .filter_by(source_ref=award_id)]


def test_the_award_reaches_the_catalogue_moderation_queue_once(app: Any, sam_rp: RP, catalogue: RP) -> None:
    from apps.sam import db, dispatch
    from apps.sam.models import CatalogueDispatch
    from tests.test_catalogue import moderator

    title = f"Auxiliaire de vie {uuid.uuid4().hex[:6]}"
    _, _, oid = _awarded(app, sam_rp, title)
    row = _dispatch(sam_rp, oid)
    assert row["status"] == "sent" and row["attempts"] == 1 and row["remote_id"], row
    offers = _catalogue_offers(catalogue, row["award_id"])
    assert len(offers) == 1 and offers[0][1] == title and offers[0][2] == sam_rp.client_id
    queue = page_text(moderator(app, catalogue).get(f"{catalogue.url}/moderation", params={"q": title}))
    assert title in queue
    # Sent again (say our commit was lost after the Catalogue answered): still one action.
    with sam_rp.app.app_context():
        again = db.session.query(CatalogueDispatch).filter_by(offer_id=oid).one()
        again.status = dispatch.PENDING
        db.session.commit()
        assert dispatch.send_due(db.session, sam_rp.app.extensions["sam.catalogue"], soon(1)) == 1
        db.session.commit()
    assert _dispatch(sam_rp, oid)["remote_id"] == row["remote_id"]
    assert len(_catalogue_offers(catalogue, row["award_id"])) == 1


def test_the_catalogue_down_the_award_waits_in_the_queue_and_is_sent_later(app: Any, sam_rp: RP,
                                                                           catalogue: RP) -> None:
    from apps.sam import db, dispatch
    from shared import ServiceClient

    real = sam_rp.app.extensions["sam.catalogue"]
    down = ServiceClient(real.issuer, real.client_id, real.client_secret, real.scope,
                         base_url=f"http://127.0.0.1:{_closed_port()}/api/v1", timeout=2)
    sam_rp.app.extensions["sam.catalogue"] = down
    try:
        _, _, oid = _awarded(app, sam_rp, f"Aide à domicile {uuid.uuid4().hex[:6]}")
    finally:
        sam_rp.app.extensions["sam.catalogue"] = real
    row = _dispatch(sam_rp, oid)
    assert row["status"] == "pending" and row["attempts"] == 1 and "injoignable" in row["error"]
    assert _catalogue_offers(catalogue, row["award_id"]) == []
    with sam_rp.app.app_context():
        # Not due yet (backoff), then due: sent once.
        assert dispatch.send_due(db.session, real, row["next"] - timedelta(seconds=1)) == 0
        assert dispatch.send_due(db.session, real, row["next"]) == 1
        db.session.commit()
    assert _dispatch(sam_rp, oid)["status"] == "sent"
    assert len(_catalogue_offers(catalogue, row["award_id"])) == 1


def test_a_body_the_catalogue_refuses_is_kept_with_its_errors(app: Any, sam_rp: RP, catalogue: RP) -> None:
    from apps.sam import db, dispatch
    from apps.sam.models import CatalogueDispatch

    _, _, oid = _awarded(app, sam_rp, f"Lot refusé {uuid.uuid4().hex[:6]}")
    with sam_rp.app.app_context():
        bad = CatalogueDispatch(award_id=f"sam-award-bad-{uuid.uuid4().hex[:6]}", offer_id=oid,
                                payload=json.dumps({"award_id": "x", "siret": "123"}), next_attempt_at=soon(-1))
        db.session.add(bad)
        db.session.commit()
        dispatch.send_one(bad, sam_rp.app.extensions["sam.catalogue"], soon(0))
        db.session.commit()
        assert bad.status == dispatch.REJECTED and "siret" in bad.last_error


def _closed_port() -> int:
    from tests.conftest import _free_port

    return _free_port()  # nothing listens there


def test_backoff_grows_and_is_capped() -> None:
    from apps.sam.dispatch import backoff

    assert [backoff(n).total_seconds() for n in (1, 2, 3)] == [30, 60, 120]
    assert backoff(50).total_seconds() == 3600


def test_a_lot_with_offers_is_awarded_from_the_analysis_and_an_unsuccessful_one_tells_its_candidates(
        app: Any, sam_rp: RP, mailbox: Mailbox) -> None:
    buyer_browser, _, cid = consultation(app, sam_rp)
    browser, _, email, rid, _ = ready(app, sam_rp, cid)
    ok(submit(browser, sam_rp, rid))
    time_passes(sam_rp, cid, responses=True)
    lot = lot_ids(sam_rp, cid)[0]
    action = f"/consultations/{cid}/lots/{lot}/decision"
    by_name = post_form(buyer_browser, sam_rp, f"/consultations/{cid}", action, {"outcome": "awarded", "awardee": "X"})
    assert by_name.status_code == 409 and "attribuez-le depuis l'analyse des plis" in page_text(by_name)
    ok(post_form(buyer_browser, sam_rp, f"/consultations/{cid}", action, {"outcome": "unsuccessful", "awardee": ""}))
    mail = mailbox.wait_for(email, "Votre offre n'est pas retenue")
    assert "Le lot est déclaré infructueux." in mail_text(mail)


def test_a_decision_before_the_deadline_is_refused_alike_whether_the_lot_has_offers_or_not(app: Any,
                                                                                        sam_rp: RP) -> None:
    """Sealed (§5): a buyer deciding a lot before the deadline learns nothing about its offers."""
    buyer_browser, _, with_offers = consultation(app, sam_rp)
    browser, _, _, rid, _ = ready(app, sam_rp, with_offers)
    ok(submit(browser, sam_rp, rid))
    without_offers = published(buyer_browser, sam_rp)
    answers = []
    for cid in (with_offers, without_offers):
        lot = lot_ids(sam_rp, cid)[0]
        for outcome in ("awarded", "unsuccessful"):
            answer = raw_post(buyer_browser, sam_rp, f"/consultations/{cid}/lots/{lot}/decision",
                              {"outcome": outcome, "awardee": "Quelqu'un"})
            answers.append((outcome, answer.status_code, re.findall(r'role="alert">([^<]+)<', page_text(answer))))
    assert answers[:2] == answers[2:]
    assert [status for _, status, _ in answers] == [409] * 4
    assert all(messages == ["Un lot ne peut être attribué ou déclaré infructueux qu'une fois la consultation "
                            "clôturée."] for _, _, messages in answers)


def test_every_page_reads_sams_clock(app: Any, sam_rp: RP) -> None:
    """Moving SAM's clock past the deadline closes the consultation on its pages, in the list and in
    the decisions as it does on the response pages: one clock for all."""
    word = f"horloge{uuid.uuid4().hex[:8]}"
    buyer_browser, _, cid = consultation(app, sam_rp, title=f"Formation {word}")
    lot = lot_ids(sam_rp, cid)[0]
    with clock(sam_rp, deadline_of(sam_rp, cid) + timedelta(seconds=1)):
        assert "Ouvrir les plis" in page_text(buyer_browser.get(f"{sam_rp.url}/consultations/{cid}/plis"))
        page = page_text(buyer_browser.get(f"{sam_rp.url}/consultations/{cid}"))
        assert "Clôturée" in page and "Ouverture et analyse des plis" in page and "Plis reçus (scellés" not in page
        closed = page_text(new_browser().get(f"{sam_rp.url}/consultations", params={"etat": "cloturees", "q": word}))
        assert f'href="/consultations/{cid}"' in closed
        ok(post_form(buyer_browser, sam_rp, f"/consultations/{cid}", f"/consultations/{cid}/lots/{lot}/decision",
                     {"outcome": "unsuccessful", "awardee": ""}))
    assert "Infructueuse" in page_text(buyer_browser.get(f"{sam_rp.url}/consultations/{cid}"))


def test_repernet_api_answers_sam_and_refuses_other_audiences(app: Any, sam_rp: RP, repernet: RP) -> None:
    assert sam_rp.app.extensions["sam.repernet"].json("GET", "/structures/73282932000074", missing_ok=True) is None
    catalogue_client = sam_rp.app.extensions["sam.catalogue"]  # a token for the Catalogue, not for REPERNET
    response = catalogue_client.http.get(f"{repernet.url}/api/v1/structures/73282932000074",
                                         headers={"Authorization": f"Bearer {catalogue_client.token()}"})
    assert response.status_code == 401 and response.headers["Content-Type"].startswith("application/problem+json")
    assert sam_rp.app.extensions["sam.repernet"].json("GET", "/structures/not-a-siret", missing_ok=True) is None


def test_attachments_are_checked_by_content_and_size(app: Any, sam_rp: RP) -> None:
    from tests.test_sam_helpers import PNG
    from tests.test_sam_response_helpers import MAX_ATTACHMENT_BYTES

    _, _, cid = consultation(app, sam_rp)
    browser, _, _ = signataire(app, sam_rp)
    rid = start(browser, sam_rp, cid)
    ok(attach(browser, sam_rp, rid, "pouvoir", content=PNG, name="pouvoir.pdf"))
    assert "Type de fichier non accepté" in response_page(browser, sam_rp, rid)
    ok(attach(browser, sam_rp, rid, "pouvoir", content=PDF + b"0" * MAX_ATTACHMENT_BYTES))
    assert "dépasse la taille maximale de 64 Ko" in response_page(browser, sam_rp, rid)
    ok(attach(browser, sam_rp, rid, "pouvoir", name="../../Pouvoir signé.pdf"))
    page = response_page(browser, sam_rp, rid)
    assert "Pouvoir signé.pdf" in page and "../" not in page.split("Pièces jointes de la candidature")[1][:2000]
    missing_kind = attach(browser, sam_rp, rid, "inconnu")
    assert missing_kind.status_code == 422 and "choix valide" in page_text(missing_kind).lower()


def _pkcs12(passphrase: bytes) -> tuple[bytes, str]:
    """A signataire's own PKCS#12 from an authority SAM does not know, and that authority's PEM."""
    from datetime import UTC, datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import NameOID

    now = datetime.now(UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def usage(ca: bool) -> x509.KeyUsage:
        return x509.KeyUsage(digital_signature=not ca, content_commitment=not ca, key_encipherment=False,
                             data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                             encipher_only=False, decipher_only=False)

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("AC qualifiée de test")).issuer_name(name("AC qualifiée de test"))
          .public_key(ca_key.public_key()).serial_number(1).not_valid_before(now - timedelta(days=1))
          .not_valid_after(now + timedelta(days=30)).add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
          .add_extension(usage(True), True).sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(name("Paule Personnelle")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(2).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30)).add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
            .add_extension(usage(False), True).sign(ca_key, hashes.SHA256()))
    bundle = pkcs12.serialize_key_and_certificates(b"paule", key, cert, [ca],
                                                   serialization.BestAvailableEncryption(passphrase))
    return bundle, ca.public_bytes(serialization.Encoding.PEM).decode()


def test_signing_with_ones_own_pkcs12_and_explicit_trust_roots(app: Any, sam_rp: RP) -> None:
    _, _, cid = consultation(app, sam_rp)
    browser, _, _, rid, _ = ready(app, sam_rp, cid)
    did = next(did for did, kind, _ in documents_of(sam_rp, rid) if kind == "ae")
    bundle, ca_pem = _pkcs12(b"phrase-secrete")
    path = f"/reponses/{rid}/documents/{did}/signer"
    ok(raw_post(browser, sam_rp, path, {"passphrase": "mauvaise"}, files={"certificate": ("moi.p12", bundle)}))
    assert "n'a pas pu être lu" in response_page(browser, sam_rp, rid)
    ok(raw_post(browser, sam_rp, path, {"passphrase": "phrase-secrete"}, files={"certificate": ("moi.p12", bundle)}))
    assert "est signé électroniquement" in response_page(browser, sam_rp, rid)
    check = page_text(browser.get(f"{sam_rp.url}/reponses/{rid}/documents/{did}/verification"))
    assert "Paule Personnelle" in check and "ne se rattache à aucune autorité de confiance" in check
    assert '<dd id="modified">Non' in check
    sam_rp.app.config["SIGNING_TRUST_ROOTS_PEM"] = ca_pem  # production: the roots SAM is told to trust
    try:
        check = page_text(browser.get(f"{sam_rp.url}/reponses/{rid}/documents/{did}/verification"))
        assert "Signature valide." in check and "il se rattache à une autorité de confiance" in check
    finally:
        sam_rp.app.config["SIGNING_TRUST_ROOTS_PEM"] = ""
    from apps.sam import db
    from apps.sam.models import SigningKey

    with sam_rp.app.app_context():  # the uploaded certificate and key were never stored
        assert not db.session.query(SigningKey).filter(SigningKey.owner_name == "Paule Personnelle").count()


@pytest.mark.parametrize(("price", "shown"), [("12,50", "12,50 €"), ("1 250,5", "1 250,50 €"), ("NaN", None),
                                              ("sNaN", None), ("Infinity", None), ("1e400", None), ("-3", None),
                                              ("douze", None)])
def test_prices_typed_the_french_way_and_bad_numbers_never_a_500(app: Any, sam_rp: RP, price: str,
                                                                 shown: str | None) -> None:
    _, _, cid = consultation(app, sam_rp)
    browser, _, _ = signataire(app, sam_rp)
    rid = start(browser, sam_rp, cid)
    valid_candidature(browser, sam_rp, rid)
    oid = new_offer(browser, sam_rp, rid, lot_ids(sam_rp, cid)[0])
    response = save_offer(browser, sam_rp, rid, oid, unit_price=price, **{"sessions-0-start": "2027-02-30"})
    assert response.status_code == 422
    response = save_offer(browser, sam_rp, rid, oid, unit_price=price)
    if shown:
        assert response.status_code == 303 and shown in response_page(browser, sam_rp, rid)
    else:
        assert response.status_code == 422 and ("Saisissez un nombre." in page_text(response)
                                                or "Entre 0 et 10 000 000 €." in page_text(response))


def test_two_people_saving_the_same_offer_the_second_gets_a_conflict(app: Any, sam_rp: RP) -> None:
    from tests.rp_helpers import page_form

    _, _, cid = consultation(app, sam_rp)
    first, org, _ = signataire(app, sam_rp)
    rid = start(first, sam_rp, cid)
    valid_candidature(first, sam_rp, rid)
    oid = new_offer(first, sam_rp, rid, lot_ids(sam_rp, cid)[0])
    second, _, _ = redacteur(app, sam_rp, org=org)
    path = f"/reponses/{rid}/offres/{oid}"
    one = page_form(first.get(f"{sam_rp.url}{path}").text, path)["fields"]
    two = page_form(second.get(f"{sam_rp.url}{path}").text, path)["fields"]
    assert first.post(f"{sam_rp.url}{path}", data={**one, **OFFER, "objectives": "Objectifs de la première"},
                      allow_redirects=False).status_code == 303
    stale = second.post(f"{sam_rp.url}{path}", data={**two, **OFFER, "objectives": "Objectifs de la seconde"},
                        allow_redirects=False)
    assert stale.status_code == 409 and "Objectifs de la seconde" in page_text(stale)
    assert "modifiée par quelqu'un d'autre" in page_text(stale)
