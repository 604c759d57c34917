"""REPERNET's pages: thin views (parse the form, call one registry function, map errors, commit)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import RequestEntityTooLarge

from apps.repernet import registry
from apps.repernet.challenge import check_challenge, new_challenge
from apps.repernet.forms import DocumentForm, RecordForm, RegistrationForm, ReviewForm
from apps.repernet.models import StructureRecord, db
from apps.repernet.reference import ACTIONS, DOCUMENT_KINDS, required_documents
from shared import (
    CONFLICT_MESSAGE,
    ApiUnavailable,
    RoleMissing,
    ServiceClient,
    StaleVersion,
    UploadRefused,
    accepted_label,
    check_access,
    check_version,
    current_identity,
    forbidden,
    form_view,
    login_required,
    requires_role,
    signing_keys,
    size_label,
    switch_url,
)

bp = Blueprint("repernet", __name__, template_folder="templates")


def _today() -> date:
    return date.today()


def _actor() -> str:
    identity = current_identity()
    assert identity is not None
    return identity.name or identity.email or identity.sub


@bp.app_context_processor
def helpers() -> dict[str, Any]:
    return {"legal_category_label": lambda code: _(registry.legal_category_label(code))}


@bp.get("/", endpoint="index")
def index() -> str:
    """Home: what REPERNET is for, and the way in for each role."""
    return render_template("repernet/index.html")


# ---------------------------------------------------------------- registering a structure

def _idp_return(value: str | None) -> str | None:
    """`return_to` only when it points at the IdP (no open redirect)."""
    if not value:
        return None
    target, idp = urlsplit(value), urlsplit(current_app.config["OIDC_ISSUER"])
    if target.scheme in ("http", "https") and (target.scheme, target.netloc) == (idp.scheme, idp.netloc):
        return value
    return None


def _render_registration(form: RegistrationForm, status: int, error: str | None = None) -> tuple[str, int]:
    question, token = new_challenge(signing_keys(current_app))
    form.challenge_token.data = token
    form.challenge_answer.data = ""
    return render_template("repernet/register.html", form=form, question=question, error=error,
                           actions=ACTIONS), status


@form_view
@bp.route("/structures/nouvelle", methods=["GET", "POST"])
@login_required
def register_structure() -> Any:
    """Register a structure; from the IdP's "Créer la structure" the SIRET comes pre-filled."""
    form = RegistrationForm()
    if not form.is_submitted():
        form.siret.data = request.args.get("siret", "")[:20]
        form.return_to.data = request.args.get("return_to", "")[:2000]
        return _render_registration(form, 200)
    valid = form.validate()
    challenge_error = check_challenge(signing_keys(current_app), form.challenge_token.data or "",
                                      form.challenge_answer.data or "", form.website.data or "",
                                      min_seconds=current_app.config["CHALLENGE_MIN_SECONDS"])
    if challenge_error:
        form.challenge_answer.errors = [*form.challenge_answer.errors, challenge_error]
    if form.siret.data and not form.siret.errors:
        try:
            form.siret.data = registry.clean_siret(form.siret.data)
        except registry.InvalidInput as exc:
            form.siret.errors = [exc.message]
    if valid and (form.domain.data, form.subdomain.data, form.action.data) not in ACTIONS:
        form.action.errors = [_("Cette action n'existe pas pour ce domaine et ce sous-domaine.")]
    if not valid or challenge_error or form.siret.errors or form.action.errors:
        return _render_registration(form, 422)
    data = registry.Registration(
        siret=form.siret.data, is_siege=form.is_siege.data == "siege", domain=form.domain.data,
        subdomain=form.subdomain.data, action=form.action.data, record=registry.RecordData(**form.record_values()),
        admin_first_name=form.admin_first_name.data.strip(), admin_last_name=form.admin_last_name.data.strip(),
        admin_email=form.admin_email.data.strip(),
    )
    identity = current_identity()
    assert identity is not None
    api: ServiceClient = current_app.extensions["shell.service"]
    try:
        record = registry.register(db.session, api, data, actor=identity.sub)
    except registry.RegistryError as exc:
        db.session.rollback()
        field = getattr(form, exc.field) if exc.field and hasattr(form, exc.field) else None
        if field is not None:
            field.errors = [exc.message]
        return _render_registration(form, 409 if isinstance(exc, registry.Conflict) else 422,
                                    None if field is not None else exc.message)
    except ApiUnavailable:
        db.session.rollback()
        return _render_registration(form, 503, _("Le portail ne répond pas pour le moment : vos saisies sont "
                                                 "conservées, validez à nouveau dans quelques instants."))
    db.session.commit()
    back = _idp_return(form.return_to.data)
    if back:
        return redirect(back, 303)  # the registrant finishes joining on the IdP
    return redirect(url_for("repernet.registered", siret=record.siret), 303)


@bp.get("/structures/<siret>/enregistree")
@login_required
def registered(siret: str) -> Any:
    """Confirmation for the registrant, with the legal documents to provide (seed 000 §3.A)."""
    identity = current_identity()
    assert identity is not None
    record = registry.find_record(db.session, siret)
    if record is None or record.created_by != identity.sub:
        abort(404)
    # The registrant named as admin is one at the portal now: offer to act for the new structure
    # (their current one is still the previous: its claims know nothing of this one yet).
    is_admin = bool(record.admin_email) and record.admin_email.lower() == identity.email.lower()
    switch_link = switch_url(siret=record.siret, next_url=url_for("repernet.record", siret=record.siret))
    return render_template("repernet/registered.html", record=record, switch_link=switch_link if is_admin else None,
                           documents=required_documents(record.legal_category))


# ---------------------------------------------------------------- a structure's record

@dataclass
class Rights:
    read: bool = False
    edit: bool = False
    review: bool = False


READ = ("gestionnaire", "lecteur")
EDIT = ("gestionnaire",)
REVIEW = ("instructeur",)  # the Région's reviewers read every structure (SPEC §8)


def _rights(siret: str, edit: bool = False) -> Rights:
    """Check access with the shell's guard (a record the person may not see: 404; a role missing
    in their structure: 403), then what the page may offer.

    :param edit: the view changes the record (gestionnaire of that structure only).
    """
    identity = current_identity()
    check_access(identity, siret, READ, all_structures=REVIEW)
    assert identity is not None
    own = identity.structure is not None and identity.structure.siret == siret
    rights = Rights(review=identity.has_role(*REVIEW))
    rights.edit = own and identity.has_role(*EDIT)
    rights.read = rights.edit or rights.review or (own and identity.has_role(*READ))
    if edit and not rights.edit:
        raise RoleMissing(EDIT)
    return rights


def _switch_link(siret: str) -> str:
    return switch_url(siret=siret, next_url=url_for("repernet.record", siret=siret))


@bp.get("/ma-structure")
@login_required
def my_structure() -> Any:
    """The current structure's record."""
    identity = current_identity()
    assert identity is not None
    if identity.structure is None:
        return forbidden(message=_("Vous n'êtes rattaché à aucune structure sur le portail."))
    return redirect(url_for("repernet.record", siret=identity.structure.siret))


@bp.get("/structures/<siret>")
@login_required
def record(siret: str) -> Any:
    """A structure's record: legal identity, address, representative, admin, documents."""
    rights = _rights(siret)
    found = registry.find_record(db.session, siret)
    statuses = registry.document_statuses(found, _today()) if found else []
    return render_template("repernet/record.html", record=found, siret=siret, rights=rights, statuses=statuses,
                           review_form=ReviewForm(), switch_link=_switch_link(siret))


@form_view
@bp.route("/structures/<siret>/modifier", methods=["GET", "POST"])
@login_required
def edit_record(siret: str) -> Any:
    """Edit (or complete) the record: gestionnaire of that structure only; stale saves get 409."""
    _rights(siret, edit=True)
    found = registry.find_record(db.session, siret)
    form = RecordForm(obj=found) if found else RecordForm()
    if not form.is_submitted():
        if found:
            form.version.data = str(found.version)
        else:
            identity = current_identity()
            form.raison_sociale.data = identity.structure.name if identity and identity.structure else ""
        return render_template("repernet/edit.html", form=form, record=found, siret=siret)
    if not form.validate():
        return render_template("repernet/edit.html", form=form, record=found, siret=siret), 422
    data = registry.RecordData(**form.record_values())
    try:
        if found is None:
            found = registry.create_record(db.session, siret, data, actor=_actor())
        else:
            check_version(found, form.version.data)
            registry.update_record(found, data)
        db.session.commit()
    except (StaleVersion, StaleDataError):
        db.session.rollback()
        current = registry.find_record(db.session, siret)
        return render_template("repernet/edit.html", form=form, record=current, siret=siret,
                               conflict=CONFLICT_MESSAGE), 409
    flash(_("La fiche de la structure est enregistrée."), "success")
    return redirect(url_for("repernet.record", siret=siret), 303)


# ---------------------------------------------------------------- legal documents

def _files_dir() -> Path:
    return Path(current_app.config["FILES_DIR"]).resolve()


def _documents_page(found: StructureRecord, rights: Rights, status: int = 200, error_kind: str | None = None,
                    error: str | None = None, form: DocumentForm | None = None) -> tuple[str, int]:
    return render_template(
        "repernet/documents.html", record=found, rights=rights, statuses=registry.document_statuses(found, _today()),
        error_kind=error_kind, error=error, form=form or DocumentForm(formdata=None),
        max_mb=current_app.config["MAX_DOCUMENT_BYTES"] // (1024 * 1024), accepted=accepted_label(registry.ACCEPTED),
    ), status


def _record_or_404(siret: str) -> StructureRecord:
    found = registry.find_record(db.session, siret)
    if found is None:
        abort(404)
    return found


@bp.get("/structures/<siret>/pieces")
@login_required
def documents(siret: str) -> Any:
    """Required legal documents for the record's legal category: missing, expired, provided."""
    rights = _rights(siret)
    return _documents_page(_record_or_404(siret), rights)


@form_view
@bp.post("/structures/<siret>/pieces/<kind>")
@login_required
def upload_document(siret: str, kind: str) -> Any:
    """Upload or replace one document (size, type by content, SHA-256)."""
    rights = _rights(siret, edit=True)
    found = _record_or_404(siret)
    if kind not in DOCUMENT_KINDS:
        abort(404)
    try:
        request.files  # noqa: B018 - parse now: a body over MAX_CONTENT_LENGTH raises here
    except RequestEntityTooLarge:
        return _documents_page(found, rights, 413, kind, _("Le fichier dépasse la taille maximale de %(size)s.",
                                                           size=size_label(current_app.config["MAX_DOCUMENT_BYTES"])))
    form = DocumentForm()
    if not form.validate():
        errors = [e for field in (form.csrf_token, form.issued_on) for e in field.errors]
        return _documents_page(found, rights, 422, kind, " ".join(str(e) for e in errors) or _("Formulaire invalide."), form)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _documents_page(found, rights, 422, kind, _("Choisissez un fichier à déposer."), form)
    try:
        registry.store_document(db.session, _files_dir(), found, kind, upload.filename, upload.stream,
                                issued_on=form.issued_on.data, today=_today(),
                                max_bytes=current_app.config["MAX_DOCUMENT_BYTES"], actor=_actor())
    except (registry.InvalidInput, UploadRefused) as exc:
        db.session.rollback()
        too_large = isinstance(exc, UploadRefused) and exc.too_large
        return _documents_page(found, rights, 413 if too_large else 422, kind, exc.message, form)
    db.session.commit()
    flash(_("Pièce « %(label)s » enregistrée.", label=_(DOCUMENT_KINDS[kind].label)), "success")
    return redirect(url_for("repernet.documents", siret=siret), 303)


@bp.get("/structures/<siret>/pieces/<kind>/fichier")
@login_required
def download_document(siret: str, kind: str) -> Any:
    """The stored file, as an attachment, with the type found at upload."""
    _rights(siret)
    found = _record_or_404(siret)
    document = next((d for d in found.documents if d.kind == kind), None)
    if document is None:
        abort(404)
    path = _files_dir() / str(found.id) / document.storage_name
    if not path.is_file():
        abort(404)
    response = send_file(path, mimetype=document.content_type, as_attachment=True,
                         download_name=document.filename)
    response.headers["X-Content-SHA256"] = document.sha256
    response.headers["Cache-Control"] = "private, no-store"
    return response


# ---------------------------------------------------------------- review by the Région

@bp.get("/instruction")
@requires_role(*REVIEW)
def instruction() -> Any:
    """Every registered structure with its missing and expired documents (instructeur)."""
    records = db.session.scalars(select(StructureRecord).order_by(StructureRecord.raison_sociale)).all()
    pending_only = request.args.get("a_examiner") == "1"
    rows = [registry.record_summary(r, _today()) for r in records if not (pending_only and r.reviewed_at)]
    return render_template("repernet/instruction.html", rows=rows, pending_only=pending_only)


@form_view
@bp.post("/structures/<siret>/examen")
@requires_role(*REVIEW)
def review(siret: str) -> Any:
    """Mark the record and its current documents reviewed (instructeur)."""
    found = _record_or_404(siret)
    form = ReviewForm()
    if not form.validate():
        flash(_("Le formulaire a expiré : recommencez."), "error")
        return redirect(url_for("repernet.record", siret=siret), 303)
    registry.mark_reviewed(found, _actor())
    db.session.commit()
    flash(_("Fiche marquée comme examinée."), "success")
    return redirect(url_for("repernet.record", siret=siret), 303)
