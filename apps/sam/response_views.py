"""SAM's response pages (issue 13): thin views over `apps.sam.responses`.

Organismes (`redacteur` prepares, `signataire` validates, signs, submits and withdraws): a
response per structure and consultation, its candidature, offers per lot, attachments, generated
and signed documents, receipts. Another structure's response looks missing (404).

Buyers (`acheteur` of the owning structure): before the deadline, the number of submitted
responses only; every route to a response's content answers 404 until the deadline has passed and
the opening ("ouverture des plis") is recorded. Then: each response with its receipt check, its
files, admissibility, award, outcome e-mails and the flow to the Catalogue.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path
from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from apps.sam import dispatch, signing
from apps.sam import responses as domain
from apps.sam.consultations import NotAllowed, SamError
from apps.sam.forms import (
    ActionForm,
    AdmissibilityForm,
    AttachmentForm,
    CandidatureForm,
    NewOfferForm,
    OfferForm,
    SignForm,
    VerifyForm,
)
from apps.sam.models import (
    FORM_LABELS,
    RESPONSE_LABELS,
    CatalogueDispatch,
    Consultation,
    GeneratedDocument,
    Offer,
    TenderResponse,
    db,
)
from apps.sam.views import ROLES, _actor, _field_error, _files_dir, _lot, _owned, _visible, bp, now
from shared import (
    CONFLICT_MESSAGE,
    ApiError,
    RoleMissing,
    StaleVersion,
    check_version,
    current_identity,
    download_name,
    form_view,
    login_required,
    one_of_or_404,
    owned_or_404,
    paris_shown,
    parse_id,
    send_mail,
    size_label,
    translated,
)

log = logging.getLogger(__name__)
ORGANISME = ("redacteur", "signataire")
SIGNATAIRE = ("signataire",)


@bp.app_context_processor
def response_helpers() -> dict[str, Any]:
    return {"form_labels": translated(FORM_LABELS), "response_labels": translated(RESPONSE_LABELS),
            "dispatch_labels": translated(dispatch.STATUS_LABELS),
            "candidature_kinds": domain.CANDIDATURE_ATTACHMENTS, "offer_kinds": domain.OFFER_ATTACHMENTS}


# ---------------------------------------------------------------- loaders (404 for other structures)

def _my_response(rid: str, roles: tuple[str, ...] = ORGANISME) -> TenderResponse:
    """A response of the person's current structure, with one of `roles`; another structure's is missing."""
    return owned_or_404(db.session, TenderResponse, rid, current_identity(), roles=roles)


def _my_offer(response: TenderResponse, oid: str) -> Offer:
    return one_of_or_404(response.offers, oid)


def _document(response: TenderResponse, did: str) -> GeneratedDocument:
    return one_of_or_404(response.documents, did)


def _response_url(response: TenderResponse, anchor: str | None = None) -> str:
    return url_for("sam.response", rid=response.id, _anchor=anchor)


def _form_ok() -> bool:
    if ActionForm().validate():
        return True
    flash(_("Le formulaire a expiré : recommencez."), "error")
    return False


def _roots() -> list[Any]:
    return signing.trust_roots(db.session, current_app.config["SIGNING_TRUST_ROOTS_PEM"])


def _refused(exc: SamError, response: TenderResponse, anchor: str | None = None) -> Response:
    db.session.rollback()
    flash(exc.message, "error")
    return redirect(_response_url(response, anchor), 303)


# ---------------------------------------------------------------- starting a response

def _prefill(siret: str) -> tuple[dict[str, str], str]:
    """The candidate's legal identity and address from REPERNET (client_credentials), if it holds
    the structure's record; else nothing more than the claims."""
    client = current_app.extensions["sam.repernet"]
    try:
        record = client.json("GET", f"/structures/{siret}", missing_ok=True)
    except ApiError as exc:
        log.info("REPERNET unavailable for %s: %s", siret, exc.detail)
        return {}, "claims"
    if not record:
        return {}, "claims"
    rep = record.get("legal_representative") or {}
    address = ", ".join(p for p in (record.get("address"), record.get("address_complement")) if p)
    return {
        "legal_name": record.get("raison_sociale", ""), "legal_category": record.get("legal_category_label", ""),
        "ape_code": record.get("ape_code", ""), "address": address, "postal_code": record.get("postal_code", ""),
        "city": record.get("city", ""), "site_address": address,
        "representative": " ".join(p for p in (rep.get("first_name"), rep.get("last_name")) if p),
        "representative_title": rep.get("title", ""),
    }, "repernet"


@form_view
@bp.route("/consultations/<ident>/reponse", methods=["GET", "POST"])
@login_required
def respond(ident: str) -> Any:
    """Open (or start) the current structure's response to a consultation."""
    consultation = _visible(ident)
    identity = current_identity()
    assert identity is not None
    if identity.structure is None or not identity.has_role(*ORGANISME):
        raise RoleMissing(ORGANISME)
    found = domain.find_response(db.session, consultation, identity.structure.siret)
    if found is not None:
        return redirect(_response_url(found), 303)
    if request.method == "GET":
        return render_template("sam/respond.html", c=consultation, form=ActionForm(formdata=None), now=now())
    if not _form_ok():
        return redirect(url_for("sam.respond", ident=consultation.id), 303)
    prefill, source = _prefill(identity.structure.siret)
    try:
        response = domain.start_response(db.session, consultation, _actor(), prefill=prefill, source=source, now=now())
        db.session.commit()
    except SamError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("sam.consultation", ident=consultation.id), 303)
    except IntegrityError:  # a colleague started it at the same moment
        db.session.rollback()
        response = domain.find_response(db.session, consultation, identity.structure.siret)
        assert response is not None
    flash(_("Votre réponse est créée : complétez la candidature, puis vos offres.") if source != "repernet" else
          _("Votre réponse est créée ; l'identité et l'adresse de votre structure sont reprises de REPERNET."),
          "success")
    return redirect(_response_url(response), 303)


# ---------------------------------------------------------------- the response page

def _response_page(response: TenderResponse, status: int = 200, **forms: Any) -> tuple[str, int]:
    moment = now()
    identity = current_identity()
    assert identity is not None
    taken = {o.lot_id for o in response.offers}
    new_offer = forms.get("new_offer") or NewOfferForm(formdata=None)
    new_offer.lot.choices = [(lot.id, _("Lot n° %(number)d", number=lot.number) + f" — {lot.title}")
                             for lot in response.consultation.lots if lot.id not in taken]
    upload = forms.get("upload") or AttachmentForm(formdata=None)
    upload.kind.choices = [("", _("— Choisissez —")), *((k, _(v[0])) for k, v in domain.CANDIDATURE_ATTACHMENTS.items())]
    offer_uploads = {}
    for offer in response.offers:
        form = forms.get("offer_upload") if forms.get("upload_for") == offer.id else None
        form = form or AttachmentForm(formdata=None)
        form.kind.choices = [("", _("— Choisissez —")), *((k, _(v[0])) for k, v in domain.OFFER_ATTACHMENTS.items())]
        offer_uploads[offer.id] = form
    c = response.consultation
    return render_template(
        "sam/response.html", r=response, c=c, now=moment, state=c.state(moment),
        editable=not response.is_submitted and c.state(moment) == "published",
        signataire=identity.has_role(*SIGNATAIRE),
        candidature_missing=domain.candidature_missing(response),
        offer_missing={o.id: domain.offer_missing(o) for o in response.offers},
        problems=domain.submission_problems(response, _files_dir(), _roots()),
        new_offer=new_offer, upload=upload, offer_uploads=offer_uploads, action_form=ActionForm(formdata=None),
        sign_form=SignForm(formdata=None), members=domain.members_of(response), sites=domain.sites_of(response),
        max_bytes=current_app.config["MAX_ATTACHMENT_BYTES"], demo_signing=current_app.config["SIGNING_DEMO"],
    ), status


@bp.get("/reponses/<rid>")
@login_required
def response(rid: str) -> Any:
    """A response: candidature, offers, attachments, documents, submission and receipts."""
    return _response_page(_my_response(rid))


# ---------------------------------------------------------------- candidature

def _candidature_page(response: TenderResponse, form: CandidatureForm, status: int = 200, **context: Any) -> Any:
    return render_template("sam/candidature.html", r=response, c=response.consultation, form=form, **context), status


@form_view
@bp.route("/reponses/<rid>/candidature", methods=["GET", "POST"])
@login_required
def candidature(rid: str) -> Any:
    """Edit and save the candidature (it returns to draft until validated again)."""
    response = _my_response(rid)
    form = CandidatureForm()
    if not form.is_submitted():
        form.fill(response, domain.candidature_data(response))
        return _candidature_page(response, form)
    if not form.validate():
        return _candidature_page(response, form, 422)
    try:
        check_version(response, form.version.data)
        domain.save_candidature(db.session, _files_dir(), response, form.data_for_domain(), actor=_actor(), now=now())
        db.session.commit()
    except (StaleVersion, StaleDataError):
        db.session.rollback()
        return _candidature_page(db.session.get(TenderResponse, response.id), form, 409, conflict=CONFLICT_MESSAGE)
    except NotAllowed as exc:
        db.session.rollback()
        return _candidature_page(response, form, 409, error=exc.message)
    except SamError as exc:
        db.session.rollback()
        return _candidature_page(response, form, 422, error=exc.message)
    flash(_("La candidature est enregistrée (brouillon) : validez-la quand elle est complète."), "success")
    return redirect(_response_url(response, "candidature"), 303)


@form_view
@bp.post("/reponses/<rid>/candidature/valider")
@login_required
def validate_candidature(rid: str) -> Response:
    """"Valider" the candidature (signataire): every mandatory field and attachment, or the list of what is missing."""
    response = _my_response(rid, SIGNATAIRE)
    if not _form_ok():
        return redirect(_response_url(response, "candidature"), 303)
    try:
        domain.validate_candidature(db.session, _files_dir(), response, actor=_actor(), now=now())
        db.session.commit()
    except SamError as exc:
        return _refused(exc, response, "candidature")
    flash(_("La candidature est validée ; la lettre de candidature (DC1) est générée. Vous pouvez saisir vos offres."),
          "success")
    return redirect(_response_url(response, "candidature"), 303)


# ---------------------------------------------------------------- offers

@form_view
@bp.post("/reponses/<rid>/offres")
@login_required
def add_offer(rid: str) -> Any:
    """Create an offer on a lot (once the candidature is validated)."""
    response = _my_response(rid)
    form = NewOfferForm()
    form.lot.choices = [(lot.id, str(lot.number)) for lot in response.consultation.lots]
    if not form.validate():
        return _response_page(response, 422, new_offer=form)
    lot = next(lot for lot in response.consultation.lots if lot.id == form.lot.data)
    try:
        offer = domain.add_offer(db.session, response, lot, actor=_actor(), now=now())
        db.session.commit()
    except SamError as exc:
        return _refused(exc, response, "offres")
    except IntegrityError:
        db.session.rollback()
        flash(_("Votre réponse comporte déjà une offre sur le lot n° %(number)d.", number=lot.number), "error")
        return redirect(_response_url(response, "offres"), 303)
    flash(_("L'offre sur le lot n° %(number)d est créée : complétez-la.", number=lot.number), "success")
    return redirect(url_for("sam.offer", rid=response.id, oid=offer.id), 303)


def _offer_page(response: TenderResponse, offer: Offer, form: OfferForm, status: int = 200, **context: Any) -> Any:
    return render_template("sam/offer.html", r=response, c=response.consultation, o=offer, form=form,
                           missing=domain.offer_missing(offer), **context), status


@form_view
@bp.route("/reponses/<rid>/offres/<oid>", methods=["GET", "POST"])
@login_required
def offer(rid: str, oid: str) -> Any:
    """Edit and save an offer (it returns to draft until validated again)."""
    response = _my_response(rid)
    item = _my_offer(response, oid)
    form = OfferForm()
    if not form.is_submitted():
        form.fill(item, domain.offer_data(item))
        return _offer_page(response, item, form)
    if not form.validate():
        return _offer_page(response, item, form, 422)
    try:
        check_version(item, form.version.data)
        domain.save_offer(db.session, _files_dir(), item, form.data_for_domain(), actor=_actor(), now=now())
        db.session.commit()
    except (StaleVersion, StaleDataError):
        db.session.rollback()
        fresh = db.session.get(TenderResponse, response.id)
        assert fresh is not None
        return _offer_page(fresh, _my_offer(fresh, oid), form, 409, conflict=CONFLICT_MESSAGE)
    except NotAllowed as exc:
        db.session.rollback()
        return _offer_page(response, item, form, 409, error=exc.message)
    except SamError as exc:
        db.session.rollback()
        return _offer_page(response, item, form, 422, error=exc.message)
    flash(_("L'offre sur le lot n° %(number)d est enregistrée (brouillon).", number=item.lot.number), "success")
    return redirect(_response_url(response, f"offre-{item.id}"), 303)


@form_view
@bp.post("/reponses/<rid>/offres/<oid>/valider")
@login_required
def validate_offer(rid: str, oid: str) -> Response:
    """"Valider" an offer (signataire): its acte d'engagement is generated."""
    response = _my_response(rid, SIGNATAIRE)
    item = _my_offer(response, oid)
    if not _form_ok():
        return redirect(_response_url(response, f"offre-{item.id}"), 303)
    try:
        domain.validate_offer(db.session, _files_dir(), item, actor=_actor(), now=now())
        db.session.commit()
    except SamError as exc:
        return _refused(exc, response, f"offre-{item.id}")
    flash(_("L'offre sur le lot n° %(number)d est validée ; son acte d'engagement est généré.", number=item.lot.number),
          "success")
    return redirect(_response_url(response, f"offre-{item.id}"), 303)


@form_view
@bp.post("/reponses/<rid>/offres/<oid>/supprimer")
@login_required
def remove_offer(rid: str, oid: str) -> Response:
    """Remove an offer."""
    response = _my_response(rid)
    item = _my_offer(response, oid)
    if not _form_ok():
        return redirect(_response_url(response, "offres"), 303)
    number = item.lot.number
    try:
        domain.remove_offer(db.session, _files_dir(), item, actor=_actor(), now=now())
        db.session.commit()
    except SamError as exc:
        return _refused(exc, response, "offres")
    flash(_("L'offre sur le lot n° %(number)d est supprimée.", number=number), "success")
    return redirect(_response_url(response, "offres"), 303)


# ---------------------------------------------------------------- attachments

def _upload(response: TenderResponse, offer: Offer | None) -> Any:
    max_bytes = current_app.config["MAX_ATTACHMENT_BYTES"]
    anchor = f"offre-{offer.id}" if offer else "pieces"
    try:
        request.files  # noqa: B018 - parse now: a body over MAX_CONTENT_LENGTH raises here
    except RequestEntityTooLarge:
        flash(_("Le fichier dépasse la taille maximale de %(size)s.", size=size_label(max_bytes)), "error")
        return redirect(_response_url(response, anchor), 303)
    form = AttachmentForm()
    kinds = domain.OFFER_ATTACHMENTS if offer else domain.CANDIDATURE_ATTACHMENTS
    form.kind.choices = [("", _("— Choisissez —")), *((k, _(v[0])) for k, v in kinds.items())]
    upload = request.files.get("file")
    if not form.validate() or upload is None or not upload.filename:
        if upload is None or not upload.filename:
            form.file.errors = [_("Choisissez un fichier à déposer.")]
        forms = {"offer_upload": form, "upload_for": offer.id} if offer else {"upload": form}
        return _response_page(response, 422, **forms)
    try:
        domain.store_attachment(db.session, _files_dir(), response, offer, form.kind.data, upload.filename,
                                upload.stream, max_bytes=max_bytes, actor=_actor(), now=now())
        db.session.commit()
    except SamError as exc:
        return _refused(exc, response, anchor)
    flash(_("La pièce est déposée ; le formulaire repasse en brouillon jusqu'à sa validation."), "success")
    return redirect(_response_url(response, anchor), 303)


@form_view
@bp.post("/reponses/<rid>/pieces")
@login_required
def upload_attachment(rid: str) -> Any:
    """Join a file to the candidature."""
    return _upload(_my_response(rid), None)


@form_view
@bp.post("/reponses/<rid>/offres/<oid>/pieces")
@login_required
def upload_offer_attachment(rid: str, oid: str) -> Any:
    """Join a file to an offer."""
    response = _my_response(rid)
    return _upload(response, _my_offer(response, oid))


@form_view
@bp.post("/reponses/<rid>/pieces/<aid>/supprimer")
@login_required
def remove_attachment(rid: str, aid: str) -> Response:
    """Remove a file (its form returns to draft)."""
    response = _my_response(rid)
    attachment = one_of_or_404(response.attachments, aid)
    if not _form_ok():
        return redirect(_response_url(response, "pieces"), 303)
    try:
        domain.remove_attachment(db.session, _files_dir(), response, attachment, actor=_actor(), now=now())
        db.session.commit()
    except SamError as exc:
        return _refused(exc, response, "pieces")
    flash(_("La pièce est retirée."), "success")
    return redirect(_response_url(response, "pieces"), 303)


def _send(path: Path, mimetype: str, name: str, sha256: str) -> Response:
    if not path.is_file():
        abort(404)
    reply = send_file(path, mimetype=mimetype, as_attachment=True, download_name=name)
    reply.headers["X-Content-SHA256"] = sha256
    reply.headers["Cache-Control"] = "private, no-store"
    return reply


def _send_attachment(response: TenderResponse, aid: str) -> Response:
    attachment = one_of_or_404(response.attachments, aid)
    return _send(domain.attachment_path(_files_dir(), response, attachment), attachment.content_type,
                 attachment.filename, attachment.sha256)


def _send_document(response: TenderResponse, did: str) -> Response:
    document = _document(response, did)
    signed = request.args.get("signe") == "1"
    if signed and not document.is_signed:
        abort(404)
    name = document.filename.replace(".pdf", " - signé.pdf") if signed else document.filename
    return _send(domain.document_path(_files_dir(), response, document, signed), "application/pdf", name,
                 document.signed_sha256 if signed else document.sha256)


@bp.get("/reponses/<rid>/pieces/<aid>")
@login_required
def attachment(rid: str, aid: str) -> Response:
    """Download a file of one's own response."""
    return _send_attachment(_my_response(rid), aid)


@bp.get("/reponses/<rid>/documents/<did>")
@login_required
def document(rid: str, did: str) -> Response:
    """Download a generated document (`?signe=1`: its signed version)."""
    return _send_document(_my_response(rid), did)


# ---------------------------------------------------------------- signature

@form_view
@bp.post("/reponses/<rid>/documents/<did>/signer")
@login_required
def sign(rid: str, did: str) -> Any:
    """Sign a generated document (PAdES) with one's PKCS#12 (never stored) or the demo certificate."""
    response = _my_response(rid, SIGNATAIRE)
    item = _document(response, did)
    form = SignForm()
    if not form.validate():
        flash(_("Le formulaire a expiré : recommencez."), "error")
        return redirect(_response_url(response, "documents"), 303)
    upload = request.files.get("certificate")
    identity = current_identity()
    assert identity is not None
    try:
        if upload is not None and upload.filename:
            signer = signing.pkcs12_signer(upload.stream.read(64 * 1024), form.passphrase.data or "")
        elif current_app.config["SIGNING_DEMO"]:
            signer = signing.demo_signer(db.session, identity.sub[:64], _actor().name, now())
        else:
            flash(_("Déposez votre certificat personnel (PKCS#12) pour signer."), "error")
            return redirect(_response_url(response, "documents"), 303)
        domain.sign_document(db.session, _files_dir(), item, signer, actor=_actor(), now=now())
        db.session.commit()
    except signing.SigningFailed as exc:
        db.session.rollback()
        flash(_(exc.message), "error")
        return redirect(_response_url(response, "documents"), 303)
    except SamError as exc:
        return _refused(exc, response, "documents")
    flash(_("« %(name)s » est signé électroniquement (PAdES).", name=item.filename), "success")
    return redirect(_response_url(response, "documents"), 303)


@bp.get("/reponses/<rid>/documents/<did>/verification")
@login_required
def verify_document(rid: str, did: str) -> str:
    """Verify the signature of a signed document: signer, time, changed after signing, trusted chain."""
    response = _my_response(rid)
    item = _document(response, did)
    path = domain.document_path(_files_dir(), response, item, signed=True)
    if not item.is_signed or not path.is_file():
        abort(404)
    data = path.read_bytes()
    return render_template("sam/verification.html", result=signing.verify_pdf(data, _roots()), name=item.filename,
                           back=_response_url(response, "documents"), form=None)


@form_view
@bp.route("/signature/verifier", methods=["GET", "POST"])
@login_required
def verify_upload() -> Any:
    """"Vérifier la signature" (seed 003): check any signed PDF against SAM's trust roots."""
    identity = current_identity()
    if identity is None or not identity.has_role(*ROLES):
        raise RoleMissing(ROLES)
    form = VerifyForm()
    result = None
    name = ""
    if form.is_submitted():
        upload = request.files.get("file")
        if not form.validate() or upload is None or not upload.filename:
            form.file.errors = [*form.file.errors, _("Choisissez un document PDF.")]
            return render_template("sam/verification.html", form=form, result=None, name="", back=None), 422
        name = upload.filename
        result = signing.verify_pdf(upload.stream.read(current_app.config["MAX_ATTACHMENT_BYTES"]), _roots())
    return render_template("sam/verification.html", form=form, result=result, name=name, back=None)


# ---------------------------------------------------------------- submission

@form_view
@bp.post("/reponses/<rid>/deposer")
@login_required
def submit(rid: str) -> Response:
    """Submit the response before the deadline (signataire): sealed, immutable, receipt e-mailed."""
    response = _my_response(rid, SIGNATAIRE)
    if not _form_ok():
        return redirect(_response_url(response, "depot"), 303)
    try:
        submission = domain.submit(db.session, _files_dir(), response, actor=_actor(), now=now(), roots=_roots())
    except SamError as exc:
        return _refused(exc, response, "depot")
    link = url_for("sam.response", rid=response.id, _external=True)
    for email in sorted({e.lower() for e in (submission.submitted_by_email, response.email) if e}):
        send_mail("receipt", email, response=response, submission=submission, link=link,
                  pdf_link=url_for("sam.receipt", rid=response.id, sid=submission.id, _external=True))
    db.session.commit()
    flash(_("Votre réponse est déposée le %(date)s. Empreinte SHA-256 : %(digest)s. L'accusé de réception vous "
            "est envoyé par e-mail.", date=paris_shown(submission.submitted_at, "%d/%m/%Y à %H:%M:%S", zone=True),
            digest=submission.digest), "success")
    return redirect(_response_url(response, "depot"), 303)


@form_view
@bp.post("/reponses/<rid>/retirer")
@login_required
def withdraw(rid: str) -> Response:
    """Withdraw the submitted response before the deadline (to change it and submit again)."""
    response = _my_response(rid, SIGNATAIRE)
    if not _form_ok():
        return redirect(_response_url(response, "depot"), 303)
    try:
        domain.withdraw(db.session, response, actor=_actor(), now=now())
        db.session.commit()
    except SamError as exc:
        return _refused(exc, response, "depot")
    flash(_("Votre réponse est retirée : elle ne compte plus tant que vous ne la déposez pas à nouveau."), "success")
    return redirect(_response_url(response, "depot"), 303)


@bp.get("/reponses/<rid>/accuses/<sid>.pdf")
@login_required
def receipt(rid: str, sid: str) -> Response:
    """The PDF receipt of one submission."""
    response = _my_response(rid)
    return _receipt_pdf(response, sid)


def _receipt_pdf(response: TenderResponse, sid: str) -> Response:
    submission = one_of_or_404(response.submissions, sid)
    reply = send_file(io.BytesIO(domain.receipt_pdf(response, submission)), mimetype="application/pdf",
                      as_attachment=True,
                      download_name=download_name(f"Accusé de réception - {response.consultation.reference} - "
                                                  f"{submission.number}", "pdf"))
    reply.headers["Cache-Control"] = "private, no-store"
    return reply


# ---------------------------------------------------------------- the buyer: sealed, then opened

def _opened(ident: str) -> tuple[Consultation, list[TenderResponse]]:
    """The consultation and its submitted responses, for its buyer, once opened; 404 while sealed
    (before the deadline nothing of a response's content exists for a buyer)."""
    consultation = _owned(ident)
    try:
        return consultation, domain.opened_responses(db.session, consultation, now())
    except NotAllowed:
        abort(404)


def _opened_response(ident: str, rid: str) -> tuple[Consultation, TenderResponse]:
    consultation, rows = _opened(ident)
    return consultation, one_of_or_404(rows, rid)


@bp.get("/consultations/<ident>/plis")
@login_required
def plis(ident: str) -> str:
    """The responses of a consultation: their number while sealed; after the opening, each one."""
    consultation = _owned(ident)
    moment = now()
    opened = consultation.opened_at is not None and domain.can_open(consultation, moment)
    rows = domain.opened_responses(db.session, consultation, moment) if opened else []
    checks = {r.id: domain.check_receipt(_files_dir(), r, r.current_submission) for r in rows if r.current_submission}
    dispatches = {d.offer_id: d for d in db.session.scalars(select(CatalogueDispatch).join(Offer).join(TenderResponse)
                                                            .where(TenderResponse.consultation_id == consultation.id))}
    return render_template("sam/plis.html", c=consultation, now=moment, count=domain.submitted_count(db.session, consultation),
                           can_open=domain.can_open(consultation, moment), opened=opened, rows=rows, checks=checks,
                           action_form=ActionForm(formdata=None), dispatches=dispatches,
                           admissibility_form=AdmissibilityForm(formdata=None))


@form_view
@bp.post("/consultations/<ident>/plis/ouverture")
@login_required
def open_plis(ident: str) -> Response:
    """"Ouverture des plis" after the deadline (recorded in the audit trail)."""
    consultation = _owned(ident)
    if _form_ok():
        try:
            domain.open_responses(db.session, consultation, actor=_actor(), now=now())
            db.session.commit()
            flash(_("Les plis sont ouverts ; l'ouverture est inscrite au journal des actions."), "success")
        except SamError as exc:
            db.session.rollback()
            flash(exc.message, "error")
    return redirect(url_for("sam.plis", ident=consultation.id), 303)


@bp.get("/consultations/<ident>/plis/<rid>")
@login_required
def pli(ident: str, rid: str) -> tuple[str, int]:
    """One opened response: candidature, offers, files, receipt hash and whether it still matches."""
    return _pli_page(*_opened_response(ident, rid))


def _pli_page(consultation: Consultation, found: TenderResponse, status: int = 200, form: AdmissibilityForm | None = None,
              form_for: int | None = None, error: str | None = None) -> tuple[str, int]:
    """An opened response's page; `form` (the buyer's input and its errors) on offer `form_for`."""
    submission = found.current_submission
    check = domain.check_receipt(_files_dir(), found, submission) if submission else None
    forms = {o.id: form if form is not None and o.id == form_for else AdmissibilityForm(formdata=None)
             for o in found.offers}
    return render_template("sam/pli.html", c=consultation, r=found, submission=submission, check=check,
                           members=domain.members_of(found), sites=domain.sites_of(found), now=now(),
                           admissibility_forms=forms, action_form=ActionForm(formdata=None), error=error), status


@bp.get("/consultations/<ident>/plis/<rid>/pieces/<aid>")
@login_required
def pli_attachment(ident: str, rid: str, aid: str) -> Response:
    """A file of an opened response."""
    return _send_attachment(_opened_response(ident, rid)[1], aid)


@bp.get("/consultations/<ident>/plis/<rid>/documents/<did>")
@login_required
def pli_document(ident: str, rid: str, did: str) -> Response:
    """A generated (or signed) document of an opened response."""
    return _send_document(_opened_response(ident, rid)[1], did)


@bp.get("/consultations/<ident>/plis.csv")
@login_required
def plis_export(ident: str) -> Response:
    """The opened offers as CSV (candidate, lot, price, hours, headcount, receipt hash)."""
    consultation, rows = _opened(ident)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(["Candidat", "SIRET", "Lot", "Prix unitaire (€)", "Unité", "Heures", "Effectif",
                     "Empreinte de l'accusé"])
    for r in rows:
        for o in r.offers:
            writer.writerow([r.legal_name, r.structure_siret, o.lot.number, o.unit_price, o.lot.unit, o.hours,
                             o.headcount, r.current_submission.digest if r.current_submission else ""])
    # The reference names the file through the shell's rule: written here by hand, a line break in it
    # was a 500 and a dash beyond Latin-1 an answer the server could not send (the fuzz pass).
    reply = send_file(io.BytesIO(("\ufeff" + out.getvalue()).encode()), mimetype="text/csv", as_attachment=True,
                      download_name=download_name(f"plis-{consultation.reference}", "csv"))
    reply.headers["Cache-Control"] = "private, no-store"
    return reply


@form_view
@bp.post("/consultations/<ident>/plis/<rid>/offres/<oid>/admissibilite")
@login_required
def admissibility(ident: str, rid: str, oid: str) -> Any:
    """Mark an opened offer admissible or not, with a reason."""
    consultation, found = _opened_response(ident, rid)
    item = _my_offer(found, oid)
    form = AdmissibilityForm()
    # Bad input is a 422 with the buyer's input and the message beside its field (issue 15), not a
    # redirect whose one message could not say which field was wrong (a reason too long).
    if not form.validate():
        return _pli_page(consultation, found, 422, form=form, form_for=item.id)
    try:
        domain.set_admissibility(db.session, consultation, item, form.admissible.data == "1", form.reason.data,
                                 actor=_actor(), now=now())
        db.session.commit()
    except SamError as exc:
        db.session.rollback()
        error = _field_error(form, exc)
        return _pli_page(consultation, found, 409 if isinstance(exc, NotAllowed) else 422, form=form,
                         form_for=item.id, error=error)
    flash(_("L'analyse de l'offre est enregistrée."), "success")
    return redirect(url_for("sam.pli", ident=consultation.id, rid=found.id, _anchor=f"offre-{item.id}"), 303)


@form_view
@bp.post("/consultations/<ident>/lots/<lot_id>/attribution/<oid>")
@login_required
def award(ident: str, lot_id: str, oid: str) -> Response:
    """Award a lot to an admissible offer: every candidate on the lot is told, the Catalogue receives the offer."""
    consultation = _owned(ident)
    lot = _lot(consultation, lot_id)
    offer_id = parse_id(oid)
    try:
        rows = domain.opened_responses(db.session, consultation, now())
    except NotAllowed:
        abort(404)
    item = next((o for r in rows for o in r.offers if o.id == offer_id and o.lot_id == lot.id), None)
    if item is None:
        abort(404)
    back = url_for("sam.plis", ident=consultation.id, _anchor=f"lot-{lot.id}")
    if not _form_ok():
        return redirect(back, 303)
    try:
        domain.award(db.session, consultation, lot, item, actor=_actor(), now=now())
    except SamError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(back, 303)
    link = url_for("sam.consultation", ident=consultation.id, _external=True)
    for email, name, offer in domain.outcome_recipients(db.session, lot):
        send_mail("outcome", email, consultation=consultation, lot=lot, name=name, offer=offer,
                  won=offer.id == item.id, link=link)
    db.session.commit()
    _send_to_catalogue()
    flash(_("Le lot n° %(number)d est attribué à %(awardee)s ; chaque candidat est prévenu par e-mail et "
            "l'offre est transmise au Catalogue.", number=lot.number, awardee=lot.awardee), "success")
    return redirect(back, 303)


def _send_to_catalogue() -> None:
    """Send what is due now (the queue keeps the rest for the worker or the next award)."""
    try:
        dispatch.send_due(db.session, current_app.extensions["sam.catalogue"], now())
        db.session.commit()
    except Exception:  # the queue is durable: a failure here only delays the sending
        log.exception("sending to the Catalogue failed")
        db.session.rollback()

