"""SAM's pages: thin views (parse the form, call one domain function, map errors, commit).

Public: the list of consultations (current / closed, keywords, device), a consultation's page and
its DCE downloads. Logged in with a SAM role: questions. Buyers (`acheteur`) of the owning
structure: create, edit the draft and its lots, publish, amend, cancel, upload the DCE, answer
questions, decide lots, and read the audit trail.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

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
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from apps.sam import consultations as domain
from apps.sam import responses
from apps.sam.forms import (
    ActionForm,
    AmendmentForm,
    AnswerForm,
    ConsultationForm,
    DceForm,
    DecisionForm,
    LotAmendmentForm,
    LotForm,
    QuestionForm,
    ReasonForm,
)
from apps.sam.models import DRAFT, PUBLISHED, STATE_LABELS, UNITS, Consultation, Lot, db
from shared import (
    CONFLICT_MESSAGE,
    RoleMissing,
    StaleVersion,
    UploadRefused,
    check_version,
    current_identity,
    form_view,
    login_required,
    one_of_or_404,
    owned_or_404,
    page_number,
    parse_id,
    requires_role,
    send_mail,
    size_label,
    translated,
)

bp = Blueprint("sam", __name__, template_folder="templates", static_folder="static",
               static_url_path="/sam-static")

ROLES = ("redacteur", "signataire", "acheteur")
BUYER = ("acheteur",)
MAX_PAGE = 10_000


@bp.app_context_processor
def helpers() -> dict[str, Any]:
    return {"state_labels": translated(STATE_LABELS), "units": translated(UNITS), "size_label": size_label}


@bp.get("/", endpoint="index")
def index() -> str:
    """Home: what SAM is for; signed in, the person's roles in SAM for the current structure."""
    identity = current_identity()
    if identity is not None and not identity.has_role(*ROLES):
        raise RoleMissing(ROLES)
    return render_template("sam/index.html")


# ---------------------------------------------------------------- helpers

def now() -> datetime:
    """SAM's clock (`app.extensions["sam.clock"]`), read by every page: deadlines are judged by it
    and the tests move it (nobody sleeps)."""
    return current_app.extensions["sam.clock"]()  # type: ignore[no-any-return]


def _actor() -> domain.Actor:
    identity = current_identity()
    assert identity is not None
    structure = identity.structure
    # Claims are trusted but the columns are bounded: cut rather than fail on a long name.
    return domain.Actor(sub=identity.sub[:64], name=(identity.name or identity.email)[:200], email=identity.email[:254],
                        structure_id=structure.id[:64] if structure else "",
                        structure_siret=structure.siret[:14] if structure else "",
                        structure_name=structure.name[:200] if structure else "")


def _is_buyer_of(consultation: Consultation) -> bool:
    """The person is a buyer of the structure that owns the consultation (acting for it now)."""
    identity = current_identity()
    return (identity is not None and identity.structure is not None and identity.has_role(*BUYER)
            and identity.structure.siret == consultation.structure_siret)


def _visible(ident: str) -> Consultation:
    """A consultation anyone may read (published once), or a draft its buyers read; else 404."""
    consultation = db.session.get(Consultation, parse_id(ident))
    if consultation is None or not (consultation.is_public or _is_buyer_of(consultation)):
        abort(404)
    return consultation


def _owned(ident: str) -> Consultation:
    """A consultation of the buyer's own structure: another structure's looks missing (404)."""
    return owned_or_404(db.session, Consultation, ident, current_identity(), roles=BUYER)


def _lot(consultation: Consultation, ident: str) -> Lot:
    return one_of_or_404(consultation.lots, ident)


def _files_dir() -> Path:
    return Path(current_app.config["FILES_DIR"]).resolve()


def _page_url(consultation: Consultation, anchor: str | None = None) -> str:
    return url_for("sam.consultation", ident=consultation.id, _anchor=anchor)


def _alert(rows: list[Any], template: str, consultation: Consultation, **context: Any) -> int:
    """Mail every registered downloader once (durable outbox, sent after the commit)."""
    link = url_for("sam.consultation", ident=consultation.id, _external=True)
    sent = set()
    for row in rows:
        if row.person_email.lower() in sent:
            continue
        sent.add(row.person_email.lower())
        send_mail(template, row.person_email, consultation=consultation, link=link, name=row.person_name, **context)
    return len(sent)


def _expired(form: Any) -> bool:
    return bool(form.csrf_token.errors)


# ---------------------------------------------------------------- the public list

def _page_number() -> int:
    return min(page_number(request.args.get("page")), MAX_PAGE)


@bp.get("/consultations")
def consultations() -> str:
    """Consultations en cours (or clôturées), by keyword and device, newest first, without login."""
    closed = request.args.get("etat") == "cloturees"
    query = request.args.get("q", "")[:200].replace("\x00", "")
    device = request.args.get("dispositif", "")[:120].replace("\x00", "")
    moment = now()
    stmt = domain.listing(db.session, now=moment, closed=closed, query=query, device=device)
    page = db.paginate(stmt, page=_page_number(), per_page=current_app.config["CONSULTATIONS_PER_PAGE"],
                       error_out=False)
    return render_template("sam/consultations.html", page=page, closed=closed, query=query, device=device,
                           devices=domain.devices(db.session), now=moment)


def _consultation_page(consultation: Consultation, status: int = 200, **forms: Any) -> tuple[str, int]:
    """A consultation's page: public part for everyone, the buyer's desk for its buyers."""
    moment = now()
    identity = current_identity()
    buyer = _is_buyer_of(consultation)
    context: dict[str, Any] = {
        "c": consultation, "now": moment, "state": consultation.state(moment), "buyer": buyer,
        "can_ask": (identity is not None and identity.has_role(*ROLES) and not buyer
                    and consultation.accepts_questions(moment)),
        "question_form": forms.get("question_form") or QuestionForm(formdata=None),
        "min_days": current_app.config["AMENDMENT_MIN_DAYS"],
    }
    if buyer:
        context.update(
            lot_form=forms.get("lot_form") or LotForm(formdata=None),
            dce_form=forms.get("dce_form") or DceForm(formdata=None),
            cancel_form=forms.get("cancel_form") or ReasonForm(formdata=None),
            action_form=ActionForm(formdata=None),
            answer_forms={q.id: (forms.get("answer_form") if forms.get("answer_for") == q.id else None)
                          or AnswerForm(formdata=None, answer=q.answer) for q in consultation.questions},
            decision_forms={lot.id: (forms.get("decision_form") if forms.get("decision_for") == lot.id else None)
                            or DecisionForm(formdata=None) for lot in consultation.lots},
            registered=domain.registered_structures(db.session, consultation),
            max_bytes=current_app.config["MAX_DCE_BYTES"],
            accepted=_(domain.ACCEPTED_TYPES),
            must_move=domain.deadline_must_move(consultation, moment, current_app.config["AMENDMENT_MIN_DAYS"]),
            response_count=responses.submitted_count(db.session, consultation),
        )
    elif identity is not None and identity.structure is not None and identity.has_role("redacteur", "signataire"):
        context["my_response"] = responses.find_response(db.session, consultation, identity.structure.siret)
        context["can_respond"] = True
    context["error"] = forms.get("error")
    return render_template("sam/consultation.html", **context), status


@bp.get("/consultations/<ident>")
def consultation(ident: str) -> Any:
    """A consultation: description, lots, DCE versions, amendments, published answers."""
    return _consultation_page(_visible(ident))


@bp.get("/consultations/<ident>/dce")
def download_current(ident: str) -> Response:
    """The current DCE version (see `download`)."""
    consultation = _visible(ident)
    if consultation.current_document is None:
        abort(404)
    return _send_document(consultation, consultation.current_document.number)


@bp.get("/consultations/<ident>/dce/<number>")
def download(ident: str, number: str) -> Response:
    """One DCE version, without login; logged in, the download registers the structure for alerts."""
    return _send_document(_visible(ident), parse_id(number))


def _send_document(consultation: Consultation, number: int) -> Response:
    document = next((d for d in consultation.documents if d.number == number), None)
    if document is None:
        abort(404)
    path = domain.dce_path(_files_dir(), consultation, document)
    if not path.is_file():
        abort(404)
    if current_identity() is not None and not _is_buyer_of(consultation):
        domain.register_download(db.session, consultation, _actor(), now=now())
        try:
            db.session.commit()
        except IntegrityError:  # the same person's parallel download registered first
            db.session.rollback()
    response = send_file(path, mimetype=document.content_type, as_attachment=True, download_name=document.filename)
    response.headers["X-Content-SHA256"] = document.sha256
    response.headers["Cache-Control"] = "private, no-cache"
    return response


# ---------------------------------------------------------------- questions

@form_view
@bp.post("/consultations/<ident>/questions")
@login_required
def ask(ident: str) -> Any:
    """Ask a question (SAM role required) until the question deadline."""
    consultation = _visible(ident)
    identity = current_identity()
    assert identity is not None
    if not identity.has_role(*ROLES):
        raise RoleMissing(ROLES)
    if _is_buyer_of(consultation):
        raise RoleMissing(message=_("L'acheteur répond aux questions de sa consultation : il n'en pose pas."))
    form = QuestionForm()
    if not form.validate():
        return _consultation_page(consultation, 422, question_form=form)
    try:
        domain.ask(db.session, consultation, form.text.data, asker=_actor(), now=now())
    except domain.SamError as exc:
        db.session.rollback()
        form.text.errors = [exc.message]
        return _consultation_page(consultation, 409 if isinstance(exc, domain.NotAllowed) else 422,
                                  question_form=form)
    db.session.commit()
    flash(_("Votre question est transmise à l'acheteur. Sa réponse sera publiée sur cette page et vous serez "
          "prévenu par e-mail."), "success")
    return redirect(_page_url(consultation, "questions"), 303)


@form_view
@bp.post("/consultations/<ident>/questions/<qid>/reponse")
@login_required
def answer(ident: str, qid: str) -> Any:
    """Publish (or correct) the answer to a question; registered structures are alerted."""
    consultation = _owned(ident)
    question = one_of_or_404(consultation.questions, qid)
    form = AnswerForm()
    if not form.validate():
        return _consultation_page(consultation, 422, answer_form=form, answer_for=question.id)
    try:
        rows = domain.answer(db.session, consultation, question, form.answer.data, actor=_actor(), now=now())
    except domain.SamError as exc:
        db.session.rollback()
        form.answer.errors = [exc.message]
        return _consultation_page(consultation, 409, answer_form=form, answer_for=question.id)
    _alert(rows, "answer", consultation, question=question)
    db.session.commit()
    flash(_("La réponse est publiée ; les structures inscrites sont prévenues par e-mail."), "success")
    return redirect(_page_url(consultation, "questions"), 303)


# ---------------------------------------------------------------- the buyer's desk

@bp.get("/acheteur")
@requires_role(*BUYER)
def desk() -> str:
    """The buyer structure's consultations: drafts, published, closed."""
    identity = current_identity()
    assert identity is not None and identity.structure is not None
    rows = domain.drafts_and_own(db.session, identity.structure.siret)
    return render_template("sam/desk.html", rows=rows, now=now())


def _edit_form_page(form: Any, consultation: Consultation | None, status: int = 200, **context: Any) -> tuple[str, int]:
    return render_template("sam/edit.html", form=form, c=consultation, **context), status


def _field_error(form: Any, exc: domain.SamError) -> str | None:
    """Put the domain's message beside its field; return it when no field holds it."""
    field = getattr(form, exc.field, None) if exc.field else None
    if field is not None:
        field.errors = [*field.errors, exc.message]
        return None
    return exc.message


@form_view
@bp.route("/consultations/nouvelle", methods=["GET", "POST"])
@requires_role(*BUYER)
def create() -> Any:
    """Create a consultation (draft) for the buyer's structure."""
    form = ConsultationForm()
    if not form.is_submitted():
        return _edit_form_page(form, None)
    if not form.validate():
        return _edit_form_page(form, None, 422)
    try:
        consultation = domain.create_consultation(db.session, form.data_for_domain(), actor=_actor(), now=now())
        db.session.commit()
    except domain.SamError as exc:
        db.session.rollback()
        return _edit_form_page(form, None, 422, error=_field_error(form, exc))
    except IntegrityError:
        db.session.rollback()
        form.reference.errors = [_("Cette référence est déjà celle d'une autre consultation.")]
        return _edit_form_page(form, None, 409)
    flash(_("Le brouillon est enregistré : ajoutez les lots et le DCE, puis publiez."), "success")
    return redirect(_page_url(consultation), 303)


def _fill(form: ConsultationForm, consultation: Consultation) -> None:
    from shared import PARIS

    for name in ("reference", "title", "device", "description", "signature_required"):
        getattr(form, name).data = getattr(consultation, name)
    for name in ("question_deadline", "response_deadline"):
        getattr(form, name).data = getattr(consultation, name).astimezone(PARIS).replace(tzinfo=None)
    form.version.data = str(consultation.version)


def _conflict(form: Any, consultation: Consultation, context: dict[str, Any]) -> tuple[str, int]:
    """A stale save: the form again with what was typed, the current version, and 409."""
    db.session.rollback()
    current = db.session.get(Consultation, consultation.id)
    return _edit_form_page(form, current, 409, conflict=CONFLICT_MESSAGE, **context)


@form_view
@bp.route("/consultations/<ident>/modifier", methods=["GET", "POST"])
@login_required
def edit(ident: str) -> Any:
    """Edit the draft (a published consultation changes by an "avis rectificatif")."""
    consultation = _owned(ident)
    if consultation.status != DRAFT:
        return redirect(url_for("sam.amend", ident=consultation.id), 303)
    form = ConsultationForm()
    if not form.is_submitted():
        _fill(form, consultation)
        return _edit_form_page(form, consultation)
    if not form.validate():
        return _edit_form_page(form, consultation, 422)
    try:
        check_version(consultation, form.version.data)
        domain.update_draft(db.session, consultation, form.data_for_domain(), actor=_actor(), now=now())
        db.session.commit()
    except (StaleVersion, StaleDataError):
        return _conflict(form, consultation, {})
    except domain.SamError as exc:
        db.session.rollback()
        return _edit_form_page(form, consultation, 422, error=_field_error(form, exc))
    flash(_("Le brouillon est enregistré."), "success")
    return redirect(_page_url(consultation), 303)


@form_view
@bp.route("/consultations/<ident>/rectificatif", methods=["GET", "POST"])
@login_required
def amend(ident: str) -> Any:
    """Publish an "avis rectificatif" (kept in the visible history; registered structures alerted)."""
    consultation = _owned(ident)
    moment = now()
    if consultation.state(moment) != PUBLISHED:
        flash(_("Un avis rectificatif ne peut être publié que sur une consultation en cours."), "error")
        return redirect(_page_url(consultation), 303)
    min_days = current_app.config["AMENDMENT_MIN_DAYS"]
    context = {"amending": True, "min_days": min_days, "floor": domain.minimum_deadline(moment, min_days),
               "must_move": domain.deadline_must_move(consultation, moment, min_days)}
    form = AmendmentForm()
    if not form.is_submitted():
        _fill(form, consultation)
        return _edit_form_page(form, consultation, **context)
    if not form.validate():
        return _edit_form_page(form, consultation, 422, **context)
    try:
        check_version(consultation, form.version.data)
        amendment = domain.amend(db.session, consultation, form.data_for_domain(), form.reason.data, actor=_actor(),
                                 now=moment, min_days=min_days)
        # Same transaction: the documents of responses in preparation follow the amendment (issue 13 §2).
        responses.refresh_after_amendment(db.session, _files_dir(), consultation, now=moment)
        # The alerts join the amendment's transaction (durable outbox): both or neither.
        _alert(domain.registrations(consultation), "amendment", consultation, amendment=amendment)
        db.session.commit()
    except (StaleVersion, StaleDataError):
        return _conflict(form, consultation, context)
    except domain.SamError as exc:
        db.session.rollback()
        return _edit_form_page(form, consultation, 422, error=_field_error(form, exc), **context)
    flash(_("L'avis rectificatif est publié ; les structures inscrites sont prévenues par e-mail."), "success")
    return redirect(_page_url(consultation, "historique"), 303)


def _action_form_ok(consultation: Consultation) -> Response | None:
    form = ActionForm()
    if not form.validate():
        flash(_("Le formulaire a expiré : recommencez."), "error")
        return redirect(_page_url(consultation), 303)
    return None


@form_view
@bp.post("/consultations/<ident>/publier")
@login_required
def publish(ident: str) -> Any:
    """Publish the draft: it appears in the public list at once."""
    consultation = _owned(ident)
    refused = _action_form_ok(consultation)
    if refused:
        return refused
    try:
        domain.publish(db.session, consultation, actor=_actor(), now=now())
    except domain.SamError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(_page_url(consultation), 303)
    db.session.commit()
    flash(_("La consultation est publiée."), "success")
    return redirect(_page_url(consultation), 303)


@form_view
@bp.post("/consultations/<ident>/annuler")
@login_required
def cancel(ident: str) -> Any:
    """Cancel the consultation, with a reason (registered structures alerted)."""
    consultation = _owned(ident)
    form = ReasonForm()
    if not form.validate():
        return _consultation_page(consultation, 422, cancel_form=form)
    try:
        domain.cancel(db.session, consultation, form.reason.data, actor=_actor(), now=now())
    except domain.SamError as exc:
        db.session.rollback()
        form.reason.errors = [exc.message]
        return _consultation_page(consultation, 409, cancel_form=form)
    if consultation.is_public:
        _alert(domain.registrations(consultation), "cancelled", consultation, reason=form.reason.data.strip())
    db.session.commit()
    flash(_("La consultation est annulée."), "success")
    return redirect(_page_url(consultation), 303)


# ---------------------------------------------------------------- lots

@form_view
@bp.post("/consultations/<ident>/lots")
@login_required
def add_lot(ident: str) -> Any:
    """Add a lot to the draft."""
    consultation = _owned(ident)
    form = LotForm()
    if not form.validate():
        return _consultation_page(consultation, 422, lot_form=form)
    try:
        domain.add_lot(db.session, consultation, form.data_for_domain(), actor=_actor(), now=now())
    except domain.SamError as exc:
        db.session.rollback()
        error = _field_error(form, exc)
        return _consultation_page(consultation, 422, lot_form=form, error=error)
    db.session.commit()
    flash(_("Le lot n° %(number)d est ajouté.", number=form.number.data), "success")
    return redirect(_page_url(consultation, "lots"), 303)


@form_view
@bp.route("/consultations/<ident>/lots/<lot_id>/modifier", methods=["GET", "POST"])
@login_required
def edit_lot(ident: str, lot_id: str) -> Any:
    """Change a lot: directly on a draft, by an "avis rectificatif" once published."""
    consultation = _owned(ident)
    lot = _lot(consultation, lot_id)
    moment = now()
    amending = consultation.status != DRAFT
    if amending and consultation.state(moment) != PUBLISHED:
        flash(_("Un avis rectificatif ne peut être publié que sur une consultation en cours."), "error")
        return redirect(_page_url(consultation, "lots"), 303)
    min_days = current_app.config["AMENDMENT_MIN_DAYS"]
    form_class = LotAmendmentForm if amending else LotForm
    form = form_class(obj=lot) if request.method == "GET" else form_class()
    context = {"c": consultation, "lot": lot, "amending": amending, "min_days": min_days,
               "floor": domain.minimum_deadline(moment, min_days),
               "must_move": domain.deadline_must_move(consultation, moment, min_days)}
    if not form.is_submitted():
        return render_template("sam/lot.html", form=form, **context)
    if not form.validate():
        return render_template("sam/lot.html", form=form, **context), 422
    try:
        if isinstance(form, LotAmendmentForm):
            amendment = domain.amend_lot(db.session, consultation, lot, form.data_for_domain(), form.reason.data,
                                         form.new_deadline(), actor=_actor(), now=moment, min_days=min_days)
            responses.refresh_after_amendment(db.session, _files_dir(), consultation, now=moment)
            _alert(domain.registrations(consultation), "amendment", consultation, amendment=amendment)
        else:
            domain.update_lot(db.session, consultation, lot, form.data_for_domain(), actor=_actor(), now=moment)
        db.session.commit()
    except domain.SamError as exc:
        db.session.rollback()
        error = _field_error(form, exc)
        return render_template("sam/lot.html", form=form, error=error, **context), 422
    except StaleDataError:
        db.session.rollback()
        return render_template("sam/lot.html", form=form, conflict=CONFLICT_MESSAGE, **context), 409
    if amending:
        flash(_("L'avis rectificatif est publié ; les structures inscrites sont prévenues par e-mail."), "success")
        return redirect(_page_url(consultation, "historique"), 303)
    flash(_("Le lot n° %(number)d est modifié.", number=lot.number), "success")
    return redirect(_page_url(consultation, "lots"), 303)


@form_view
@bp.post("/consultations/<ident>/lots/<lot_id>/supprimer")
@login_required
def remove_lot(ident: str, lot_id: str) -> Any:
    """Remove a lot from the draft."""
    consultation = _owned(ident)
    lot = _lot(consultation, lot_id)
    refused = _action_form_ok(consultation)
    if refused:
        return refused
    try:
        domain.remove_lot(db.session, consultation, lot, actor=_actor(), now=now())
    except domain.SamError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(_page_url(consultation, "lots"), 303)
    db.session.commit()
    flash(_("Le lot est supprimé."), "success")
    return redirect(_page_url(consultation, "lots"), 303)


@form_view
@bp.post("/consultations/<ident>/lots/<lot_id>/decision")
@login_required
def decide(ident: str, lot_id: str) -> Any:
    """Award a lot or declare it unsuccessful (closed consultation)."""
    consultation = _owned(ident)
    lot = _lot(consultation, lot_id)
    form = DecisionForm()
    if not form.validate():
        return _consultation_page(consultation, 422, decision_form=form, decision_for=lot.id)
    try:
        responses.decide_without_award(db.session, consultation, lot, form.outcome.data, form.awardee.data or "",
                                       actor=_actor(), now=now())
    except domain.SamError as exc:
        db.session.rollback()
        error = _field_error(form, exc)
        return _consultation_page(consultation, 409 if isinstance(exc, domain.NotAllowed) else 422,
                                  decision_form=form, decision_for=lot.id, error=error)
    link = url_for("sam.consultation", ident=consultation.id, _external=True)
    for email, name, offer in responses.outcome_recipients(db.session, lot):  # issue 13 §6: every candidate hears
        send_mail("outcome", email, consultation=consultation, lot=lot, name=name, offer=offer, won=False, link=link)
    db.session.commit()
    flash(_("Décision enregistrée pour le lot n° %(number)d.", number=lot.number), "success")
    return redirect(_page_url(consultation, "lots"), 303)


# ---------------------------------------------------------------- the DCE

@form_view
@bp.post("/consultations/<ident>/dce")
@login_required
def upload(ident: str) -> Any:
    """Upload a new DCE version (type by content, size limit, SHA-256); registered structures alerted."""
    consultation = _owned(ident)
    max_bytes = current_app.config["MAX_DCE_BYTES"]
    too_big = _("Le fichier dépasse la taille maximale de %(size)s.", size=size_label(max_bytes))
    try:
        request.files  # noqa: B018 - parse now: a body over MAX_CONTENT_LENGTH raises here
    except RequestEntityTooLarge:
        form = DceForm(formdata=None)
        form.file.errors = [too_big]
        return _consultation_page(consultation, 413, dce_form=form)
    form = DceForm()
    if not form.validate():
        return _consultation_page(consultation, 422, dce_form=form)
    upload_file = request.files.get("file")
    if upload_file is None or not upload_file.filename:
        form.file.errors = [_("Choisissez un fichier à déposer.")]
        return _consultation_page(consultation, 422, dce_form=form)
    try:
        document, rows = domain.store_dce(db.session, _files_dir(), consultation, upload_file.filename,
                                          upload_file.stream, max_bytes=max_bytes, actor=_actor(), now=now())
    except (domain.SamError, UploadRefused) as exc:
        db.session.rollback()
        form.file.errors = [exc.message]
        too_large = isinstance(exc, UploadRefused) and exc.too_large
        status = 413 if too_large else 409 if isinstance(exc, domain.NotAllowed) else 422
        return _consultation_page(consultation, status, dce_form=form)
    if rows:
        _alert(rows, "dce_changed", consultation, document=document)
    db.session.commit()
    flash(_("Le DCE (version %(number)d) est déposé.", number=document.number), "success")
    return redirect(_page_url(consultation, "dce"), 303)

