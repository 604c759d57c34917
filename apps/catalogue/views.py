"""The Catalogue's pages: thin views (parse the form, call one domain function, map errors, commit).

Public: home, search, an offer's public page, the LHEO export. Signed in: the organisation
record and its tabs, the offers (formation, actions, sessions), their history; the moderation
queue for the Carif-Oref.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from sqlalchemy import and_, func, or_, select
from werkzeug.wrappers import Response as BaseResponse

from apps.catalogue import lheo, offers, organisations, referential, search
from apps.catalogue.access import ANY, MODERATE, READ, Rights, rights_for
from apps.catalogue.forms import (
    ActionForm,
    AttestationForm,
    ContactForm,
    FormationForm,
    IdentificationForm,
    PlainForm,
    PotentialForm,
    RequestDecisionForm,
    RequestForm,
    ReturnForm,
    SessionForm,
    VersionOnlyForm,
    certification_choices,
)
from apps.catalogue.models import (
    ChangeRequest,
    Offer,
    OfferVersion,
    Organisation,
    PublicAction,
    RecordEvent,
    db,
)
from apps.catalogue.offers import CatalogueError, Invalid
from shared import (
    CONFLICT_MESSAGE,
    N_,
    Identity,
    RoleMissing,
    ServiceClient,
    StaleVersion,
    ascii_digits,
    current_identity,
    form_view,
    login_required,
    page_number,
    parse_day,
    parse_id,
    plural,
    requires_role,
    send_mail,
    translated,
    utcnow,
)

bp = Blueprint("catalogue", __name__, template_folder="templates")
PARIS = ZoneInfo("Europe/Paris")
ROLES = ANY
TABS = {"identification": N_("Identification"), "administratif": N_("Infos administratives"),
        "interlocuteurs": N_("Interlocuteurs"), "infos-of": N_("Infos OF"), "historique": N_("Historique")}


def _identity() -> Identity:
    identity = current_identity()
    assert identity is not None
    return identity


def _actor() -> str:
    identity = _identity()
    return identity.name or identity.email or identity.sub


def _today() -> date:
    return datetime.now(PARIS).date()


def _links_ttl() -> timedelta:
    return timedelta(seconds=current_app.config["LINKS_TTL_SECONDS"])


@bp.app_context_processor
def helpers() -> dict[str, Any]:
    return {"STATUSES": translated(offers.STATUSES), "DECISIONS": translated(offers.DECISIONS),
            "ENTRY_MODES": translated(offers.ENTRY_MODES), "RECRUITMENT": translated(offers.RECRUITMENT),
            "PUBLICS": translated(offers.PUBLICS), "LEVELS": translated(offers.LEVELS),
            "TEACHING": translated(offers.TEACHING), "PATHS": translated(offers.PATHS),
            "TOPICS": translated(organisations.TOPICS), "TABS": translated(TABS),
            "code_label": referential.label, "certification": referential.certification,
            "as_date": lambda value: date.fromisoformat(value).strftime("%d/%m/%Y") if value else "—"}


# ---------------------------------------------------------------- loading within the person's reach

def _organisation(siret: str, *, create: bool = True) -> tuple[Organisation, Rights]:
    """The record of `siret` and the person's rights on it; their own structure's record is created
    on their first visit (named as in the claims), anything else missing is a 404."""
    identity = current_identity()
    if identity is None or not ascii_digits(siret, 14):
        abort(404)
    organisation = organisations.find(db.session, siret)
    current = identity.structure
    if organisation is None:
        if not create or current is None or current.siret != siret or not identity.has_role(*READ):
            abort(404)
        organisation = organisations.ensure(db.session, siret, current.name, current.id)
        _refresh_own_link(organisation)
        db.session.commit()
    return organisation, rights_for(identity, organisation)


def _refresh_own_link(organisation: Organisation) -> None:
    api: ServiceClient | None = current_app.extensions.get("shell.service")
    if api is not None:
        organisations.refresh_own_link(db.session, api, organisation, utcnow(), _links_ttl())


def _offer(offer_id: str) -> tuple[Offer, Rights]:
    offer = db.session.get(Offer, parse_id(offer_id))
    if offer is None:
        abort(404)
    return offer, rights_for(current_identity(), offer.organisation)


def _conflict_flash() -> None:
    flash(CONFLICT_MESSAGE, "error")


def _field_error(form: Any, error: CatalogueError) -> str | None:
    """Put a domain error beside its field; returns it as a page message when it has none."""
    field = getattr(form, error.field, None) if error.field else None
    if field is not None and hasattr(field, "errors"):
        field.errors = [*field.errors, error.message]
        return None
    return error.message


def _recipients(*addresses: str) -> list[str]:
    return [a for a in dict.fromkeys(a.strip().lower() for a in addresses if a and "@" in a)]


# ---------------------------------------------------------------- home and public pages

@bp.get("/", endpoint="index")
def index() -> str:
    """Home: what the Catalogue is for; signed in, the person's roles and organisations."""
    identity = current_identity()
    if identity is not None and not identity.has_role(*ROLES):
        raise RoleMissing(ROLES)
    pending = 0
    if identity is not None and identity.has_role(*MODERATE):
        pending = db.session.scalar(select(func.count()).select_from(Offer).where(Offer.pending_version_id.is_not(None)))
    return render_template("catalogue/index.html", pending=pending)


def _search_criteria() -> tuple[search.Criteria, list[str]]:
    errors = []
    args = request.args

    def day(name: str) -> date | None:
        value = args.get(name, "").strip()
        if not value:
            return None
        try:
            return parse_day(value)
        except ValueError:  # another format, or a day out of shared.bounds' range
            errors.append(_("Date incorrecte : « %(value)s » (format aaaa-mm-jj).", value=value[:20]))
            return None

    certifying = {"oui": True, "non": False}.get(args.get("certifiante", ""))
    entry = args.get("entree", "")
    return search.Criteria(keywords=args.get("q", "")[:200], place=args.get("lieu", "")[:100], date_from=day("du"),
                           date_to=day("au"), certifying=certifying,
                           entry_mode=entry if entry in offers.ENTRY_MODES else "",
                           include_past=args.get("passees") == "1"), errors


@bp.get("/recherche", endpoint="search")
def public_search() -> str:
    """Public search of the published offers (no login): keyword, place, dates, certifying, entry mode."""
    criteria, errors = _search_criteria()
    results = search.search_actions(db.session, criteria, _today(), page_number(request.args.get("page")),
                                    current_app.config["PER_PAGE"])
    searched = any(request.args.get(k) for k in ("q", "lieu", "du", "au", "certifiante", "entree", "passees"))
    return render_template("catalogue/search.html", results=results, criteria=criteria, errors=errors,
                           searched=searched)


@bp.get("/formations/<public_id>", endpoint="public_offer")
def public_offer(public_id: str) -> str:
    """The public page of a published action: the formation, this place, its sessions, the organisation."""
    row = db.session.get(PublicAction, parse_id(public_id))
    if row is None:
        abort(404)
    offer = db.session.get(Offer, row.offer_id)
    doc = offers.published_document(db.session, offer) if offer else None
    if offer is None or doc is None:
        abort(404)
    action = next((a for a in doc["actions"] if a["key"] == row.action_key), None)
    if action is None:
        abort(404)
    others = db.session.scalars(select(PublicAction).where(PublicAction.offer_id == offer.id,
                                                           PublicAction.id != row.id)).all()
    return render_template("catalogue/public_offer.html", row=row, offer=offer, doc=doc, action=action,
                           organisation=offer.organisation, others=others, today=_today().isoformat())


def _published_batch(after: int) -> list[lheo.Published]:
    rows = db.session.execute(
        select(Offer.id, Offer.updated_at, OfferVersion.data, Organisation)
        .join(OfferVersion, OfferVersion.id == Offer.published_version_id)
        .join(Organisation, Organisation.id == Offer.organisation_id)
        .where(Offer.id > after).order_by(Offer.id).limit(lheo.BATCH)).all()
    batch = [lheo.Published(offer_id, updated, data, {
        "siret": org.siret, "nda": org.nda, "name": org.name, "sigle": org.sigle, "address": org.address,
        "postal_code": org.postal_code, "city": org.city, "phone": org.phone, "email": org.email})
        for offer_id, updated, data, org in rows]
    db.session.commit()  # one short transaction per page: a long export never holds the database
    return batch


@bp.get("/lheo.xml", endpoint="lheo")
def lheo_export() -> Response:
    """Every published offer as LHEO 2.3 XML (no login), streamed."""
    first = _published_batch(0)
    response = Response(stream_with_context(lheo.stream(_published_batch, first)), mimetype="application/xml")
    response.headers["Content-Disposition"] = 'inline; filename="lheo.xml"'
    return response


@bp.get("/referentiel", endpoint="referential")
def referential_search() -> str:
    """The referential by code or label: certifications, Formacode, ROME, NSF (no login)."""
    kind = request.args.get("type", "certification")
    query = request.args.get("q", "")[:100]
    if kind == "certification":
        results: list[Any] = referential.search_certifications(query)
    elif kind in referential.KINDS:
        results = referential.search_codes(kind, query)
    else:
        abort(404)
    return render_template("catalogue/referential.html", kind=kind, query=query, results=results)


# ---------------------------------------------------------------- organisation records

@bp.get("/organismes", endpoint="organisations")
@requires_role(*ROLES)
def organisation_list() -> Any:
    """The organisations the person may see: theirs and its établissements; every one for a moderator."""
    identity = _identity()
    if identity.has_role(*MODERATE):
        query = request.args.get("q", "")[:100]
        statement = select(Organisation).order_by(Organisation.name)
        if query:
            like = f"%{query.replace('%', '').replace('_', '')}%"
            statement = statement.where(or_(Organisation.name.ilike(like), Organisation.siret.like(like)))
        page = db.paginate(statement, page=page_number(request.args.get("page")), per_page=current_app.config["PER_PAGE"],
                           error_out=False)
        return render_template("catalogue/organisations.html", page=page, query=query, rows=page.items)
    if identity.structure is None:
        abort(404)
    organisation, _rights = _organisation(identity.structure.siret)
    return redirect(url_for("catalogue.organisation", siret=organisation.siret))


@bp.get("/organismes/<siret>", endpoint="organisation")
@login_required
def organisation_page(siret: str) -> BaseResponse:
    """An organisation record: its first tab."""
    _organisation(siret)
    return redirect(url_for("catalogue.organisation_tab", siret=siret, tab="identification"))


def _render_record(organisation: Organisation, rights: Rights, tab: str, status: int = 200,
                   **forms: Any) -> tuple[str, int]:
    identification = forms.get("identification") or IdentificationForm(obj=organisation, formdata=None)
    identification.version.data = identification.version.data or organisation.version
    potential = forms.get("potential") or PotentialForm(formdata=None, version=organisation.version,
                                                        potential=organisation.potential,
                                                        certifications=[c["key"] for c in organisation.certification_keys])
    potential.certifications.choices = certification_choices()[1:]
    attestation = forms.get("attestation") or AttestationForm(formdata=None, version=organisation.version,
                                                              comment=organisation.comment)
    context = {
        "organisation": organisation, "rights": rights, "tab": tab, "identification": identification,
        "potential": potential, "attestation": attestation, "request_form": forms.get("request_form") or RequestForm(formdata=None),
        "contact_form": forms.get("contact_form") or ContactForm(formdata=None), "conflict": forms.get("conflict"),
        "due": organisations.attestation_due(organisation, utcnow()),
        "siege": organisations.find(db.session, organisation.parent_siret) if organisation.parent_siret else None,
        "establishments": organisations.establishments(db.session, organisation),
        "requests": db.session.scalars(select(ChangeRequest).where(ChangeRequest.organisation_id == organisation.id)
                                       .order_by(ChangeRequest.id.desc())).all(),
        "events": db.session.scalars(select(RecordEvent).where(RecordEvent.organisation_id == organisation.id)
                                     .order_by(RecordEvent.id.desc()).limit(100)).all(),
        "offers_count": db.session.scalar(select(func.count()).select_from(Offer)
                                          .where(Offer.organisation_id == organisation.id)),
    }
    return render_template("catalogue/organisation.html", **context), status


@form_view
@bp.route("/organismes/<siret>/<tab>", methods=["GET", "POST"], endpoint="organisation_tab")
@login_required
def organisation_tab(siret: str, tab: str) -> Any:
    """A tab of the record; POST saves its form (editors), a stale save answers 409 with the input kept."""
    if tab not in TABS:
        abort(404)
    organisation, rights = _organisation(siret)
    if request.method == "GET":
        return _render_record(organisation, rights, tab)
    rights.require_edit()
    if tab == "identification":
        form = IdentificationForm()
        if not form.validate():
            return _render_record(organisation, rights, tab, 422, identification=form)
        data = organisations.IdentificationData(**{k: getattr(form, k).data or "" for k in (
            "name", "sigle", "address", "postal_code", "city", "phone", "email", "website")})
        try:
            changes = organisations.update_identification(db.session, organisation, data, actor=_actor(),
                                                          expected_version=form.version.data)
        except StaleVersion:
            db.session.rollback()
            form.version.data = organisation.version
            return _render_record(organisation, rights, tab, 409, identification=form, conflict=CONFLICT_MESSAGE)
        except Invalid as exc:
            db.session.rollback()
            message = _field_error(form, exc)
            return _render_record(organisation, rights, tab, 422, identification=form, conflict=message)
        if name_changed := any(c[0] == organisations.LABELS["name"] for c in changes):
            search.reindex_organisation(db.session, organisation.id, _today())
    elif tab == "infos-of":
        form = PotentialForm()
        form.certifications.choices = certification_choices()[1:]
        if not form.validate():
            return _render_record(organisation, rights, tab, 422, potential=form)
        pairs = [(key, request.form.get(f"comment-{key}", "")) for key in form.certifications.data or []]
        try:
            changes = organisations.update_potential(db.session, organisation, form.potential.data or "", pairs,
                                                     actor=_actor(), expected_version=form.version.data)
        except StaleVersion:
            db.session.rollback()
            form.version.data = organisation.version
            return _render_record(organisation, rights, tab, 409, potential=form, conflict=CONFLICT_MESSAGE)
        except Invalid as exc:
            db.session.rollback()
            form.certifications.errors = [exc.message]
            return _render_record(organisation, rights, tab, 422, potential=form)
        name_changed = False
    else:
        abort(405)
    if not changes:
        flash(_("Aucune modification : la fiche n'a pas été enregistrée."), "info")
        return redirect(url_for("catalogue.organisation_tab", siret=siret, tab=tab))
    _mail_record(organisation, changes)
    db.session.commit()
    flash(_("Fiche enregistrée. Un courriel de confirmation vous est envoyé ; le Carif-Oref en est informé.")
          + (" " + _("Le nom de l'organisme est mis à jour dans la recherche.") if name_changed else ""), "success")
    return redirect(url_for("catalogue.organisation_tab", siret=siret, tab=tab))


def _mail_record(organisation: Organisation, changes: list[list[str]]) -> None:
    identity = _identity()
    for recipient in _recipients(identity.email, organisation.email, current_app.config["MODERATION_EMAIL"]):
        send_mail("record_saved", recipient, organisation=organisation, changes=changes, actor=_actor(),
                  link=url_for("catalogue.organisation_tab", siret=organisation.siret, tab="historique", _external=True))


@form_view
@bp.post("/organismes/<siret>/demande", endpoint="change_request")
@login_required
def change_request(siret: str) -> Any:
    """A "demande particulière" on read-only data (SIRET, NDA, attachments, contacts)."""
    organisation, rights = _organisation(siret)
    rights.require_edit()
    form = RequestForm()
    tab = request.form.get("tab") if request.form.get("tab") in TABS else "identification"
    if not form.validate():
        return _render_record(organisation, rights, tab, 422, request_form=form)
    try:
        organisations.request_change(db.session, organisation, form.topic.data, form.text.data, actor=_actor(),
                                     email=_identity().email)
    except Invalid as exc:
        db.session.rollback()
        return _render_record(organisation, rights, tab, 422, request_form=form, conflict=_field_error(form, exc))
    for recipient in _recipients(current_app.config["MODERATION_EMAIL"]):
        send_mail("request_received", recipient, organisation=organisation, topic=organisations.TOPICS[form.topic.data],
                  text=form.text.data, actor=_actor(), link=url_for("catalogue.moderation", _external=True))
    db.session.commit()
    flash(_("Votre demande est transmise au Carif-Oref, qui procédera aux modifications après contrôle."), "success")
    return redirect(url_for("catalogue.organisation_tab", siret=siret, tab=tab))


@form_view
@bp.post("/organismes/<siret>/verification", endpoint="attest")
@login_required
def attest(siret: str) -> Any:
    """"J'ai vérifié ma fiche": the yearly attestation, with the date shown on the record."""
    organisation, rights = _organisation(siret)
    rights.require_edit()
    form = AttestationForm()
    if not form.validate():
        return _render_record(organisation, rights, "historique", 422, attestation=form)
    try:
        organisations.attest_checked(db.session, organisation, actor=_actor(), comment=form.comment.data or "",
                                     expected_version=form.version.data, now=utcnow())
    except StaleVersion:
        db.session.rollback()
        form.version.data = organisation.version
        return _render_record(organisation, rights, "historique", 409, attestation=form, conflict=CONFLICT_MESSAGE)
    db.session.commit()
    flash(_("Merci : la vérification de votre fiche est enregistrée."), "success")
    return redirect(url_for("catalogue.organisation_tab", siret=siret, tab="historique"))


@form_view
@bp.post("/organismes/<siret>/interlocuteurs/ajouter", endpoint="add_contact")
@login_required
def add_contact(siret: str) -> Any:
    """A moderator records an interlocuteur (editors ask for it through a request)."""
    organisation, rights = _organisation(siret)
    rights.require_moderation()
    form = ContactForm()
    if not form.validate():
        return _render_record(organisation, rights, "interlocuteurs", 422, contact_form=form)
    try:
        organisations.add_contact(db.session, organisation, actor=_actor(), **{k: getattr(form, k).data or "" for k in (
            "civility", "last_name", "first_name", "function", "phone", "email")})
    except Invalid as exc:
        db.session.rollback()
        return _render_record(organisation, rights, "interlocuteurs", 422, contact_form=form,
                              conflict=_field_error(form, exc))
    db.session.commit()
    flash(_("Interlocuteur ajouté."), "success")
    return redirect(url_for("catalogue.organisation_tab", siret=siret, tab="interlocuteurs"))


# ---------------------------------------------------------------- offers

@bp.get("/organismes/<siret>/formations", endpoint="offers")
@login_required
def offer_list(siret: str) -> str:
    """The organisation's offers; a siège sees its établissements' ones too (seed 004, "Voir les formations")."""
    organisation, rights = _organisation(siret)
    api: ServiceClient | None = current_app.extensions.get("shell.service")
    sites = [organisation]
    if api is not None and not rights.via_siege:
        sites += organisations.refresh_links(db.session, api, organisation, utcnow(), _links_ttl())
        db.session.commit()
    rows = db.session.scalars(select(Offer).where(Offer.organisation_id.in_([o.id for o in sites]))
                              .order_by(Offer.title, Offer.id)).all()
    current = {o.id for o in rows if _current(o)}
    return render_template("catalogue/offers.html", organisation=organisation, rights=rights, rows=rows,
                           current=current, sites=sites)


def _current(offer: Offer) -> bool:
    today = _today().isoformat()
    return any(s["end"] >= today for a in offer.document["actions"] for s in a["sessions"])


def _formation_form(offer: Offer | None, formdata: Any = None) -> FormationForm:
    if offer is None:
        form = FormationForm(formdata=formdata) if formdata is not None else FormationForm()
    else:
        data = offers.formation_data(offer.document)
        kwargs = {**data.__dict__, "certifying": "oui" if data.certifying else "non", "version": offer.version,
                  "formacodes": " ".join(data.formacodes), "romes": " ".join(data.romes), "nsf": " ".join(data.nsf)}
        form = FormationForm(formdata=formdata, **kwargs) if formdata is not None else FormationForm(**kwargs)
    form.certification_key.choices = certification_choices()
    return form


def _formation_values(form: FormationForm) -> offers.FormationData:
    data = offers.FormationData(
        title=form.title.data or "", objectives=form.objectives.data or "", content=form.content.data or "",
        expected_results=form.expected_results.data or "", prerequisites=form.prerequisites.data or "",
        certifying=form.certifying.data == "oui", certification_key=form.certification_key.data or "",
        formacodes=(form.formacodes.data or "").split(), romes=(form.romes.data or "").split(),
        nsf=(form.nsf.data or "").split(), entry_level=form.entry_level.data or "0", path=form.path.data or "1",
        keywords=form.keywords.data or "")
    return data


def _mail_saved(offer: Offer) -> None:
    identity = _identity()
    link = url_for("catalogue.offer", offer_id=offer.id, _external=True)
    for recipient in _recipients(identity.email, offer.organisation.email, current_app.config["MODERATION_EMAIL"]):
        send_mail("offer_saved", recipient, offer=offer, organisation=offer.organisation, actor=_actor(), link=link)


@form_view
@bp.route("/organismes/<siret>/formations/nouvelle", methods=["GET", "POST"], endpoint="new_offer")
@login_required
def new_offer(siret: str) -> Any:
    """Create a training offer (formation): pending until the Carif-Oref publishes it."""
    organisation, rights = _organisation(siret)
    rights.require_edit()
    form = _formation_form(None, request.form if request.method == "POST" else None)
    picked = request.args.get("certification", "")
    if request.method == "GET" and picked and referential.certification(picked):
        data = offers.apply_certification(_formation_values(form), picked)
        form.title.data, form.certification_key.data, form.certifying.data = data.title, data.certification_key, "oui"
        form.formacodes.data, form.romes.data, form.nsf.data = " ".join(data.formacodes), " ".join(data.romes), " ".join(data.nsf)
    if request.method == "GET" or not form.validate():
        status = 200 if request.method == "GET" else 422
        return render_template("catalogue/formation_form.html", form=form, organisation=organisation, offer=None), status
    try:
        part = offers.formation_part(_formation_values(form))
        offer = offers.create_offer(db.session, organisation, part, actor=_actor(), email=_identity().email)
    except Invalid as exc:
        db.session.rollback()
        return render_template("catalogue/formation_form.html", form=form, organisation=organisation, offer=None,
                               message=_field_error(form, exc)), 422
    _mail_saved(offer)
    db.session.commit()
    flash(_("Formation enregistrée et transmise au Carif-Oref pour validation. Ajoutez maintenant une action et ses sessions."),
          "success")
    return redirect(url_for("catalogue.offer", offer_id=offer.id))


@bp.get("/offres/<offer_id>", endpoint="offer")
@login_required
def offer_page(offer_id: str) -> str:
    """An offer: its formation, actions and sessions, its status; the moderator's decision form."""
    offer, rights = _offer(offer_id)
    return render_template("catalogue/offer.html", offer=offer, rights=rights, doc=offer.document,
                           button=VersionOnlyForm(formdata=None, version=offer.version),
                           return_form=ReturnForm(formdata=None, version=offer.version),
                           missing=offers.missing_parts(offer.document),
                           published=offer.published_version_id is not None,
                           last=offer.versions[-1] if offer.versions else None)


def _save(offer: Offer, doc: dict[str, Any], version: Any) -> bool:
    """Store the document (the pending version follows) and confirm it by mail, as seed 004 does at
    every save ("vous recevez un mail de confirmation ainsi que nos services"); False, with a
    message, when nothing changed (nothing stored, nobody mailed)."""
    if not offers.save_document(db.session, offer, doc, actor=_actor(), email=_identity().email,
                                expected_version=version):
        db.session.rollback()
        flash(_("Aucune modification : l'offre n'a pas été enregistrée."), "info")
        return False
    _mail_saved(offer)
    db.session.commit()
    return True


@form_view
@bp.route("/offres/<offer_id>/formation", methods=["GET", "POST"], endpoint="edit_formation")
@login_required
def edit_formation(offer_id: str) -> Any:
    """Edit the formation part (title, objectives, content, certification, domain codes)."""
    offer, rights = _offer(offer_id)
    rights.require_edit()
    picked = request.args.get("certification", "")
    form = _formation_form(offer, request.form if request.method == "POST" else None)
    if request.method == "GET" and picked and referential.certification(picked):
        data = offers.apply_certification(_formation_values(form), picked)
        form.title.data, form.certification_key.data, form.certifying.data = data.title, data.certification_key, "oui"
        form.formacodes.data, form.romes.data, form.nsf.data = " ".join(data.formacodes), " ".join(data.romes), " ".join(data.nsf)
    if request.method == "GET" or not form.validate():
        return render_template("catalogue/formation_form.html", form=form, organisation=offer.organisation,
                               offer=offer), 200 if request.method == "GET" else 422
    try:
        doc = offers.with_formation(offer.document, offers.formation_part(_formation_values(form)))
        if not _save(offer, doc, form.version.data):
            return redirect(url_for("catalogue.offer", offer_id=offer.id))
    except StaleVersion:
        db.session.rollback()
        form.version.data = offer.version
        return render_template("catalogue/formation_form.html", form=form, organisation=offer.organisation, offer=offer,
                               message=CONFLICT_MESSAGE), 409
    except Invalid as exc:
        db.session.rollback()
        return render_template("catalogue/formation_form.html", form=form, organisation=offer.organisation, offer=offer,
                               message=_field_error(form, exc)), 422
    flash(_("Formation enregistrée : la modification attend la validation du Carif-Oref."), "success")
    return redirect(url_for("catalogue.offer", offer_id=offer.id))


def _action_values(form: ActionForm) -> offers.ActionData:
    return offers.ActionData(
        address=form.address.data or "", postal_code=form.postal_code.data or "", city=form.city.data or "",
        place_name=form.place_name.data or "", publics=list(form.publics.data or []),
        public_info=form.public_info.data or "", entry_mode=form.entry_mode.data or "", rhythm=form.rhythm.data or "",
        teaching_mode=form.teaching_mode.data or "0", hours=form.hours.data,
        entry_level_required=bool(form.entry_level_required.data), accessibility=form.accessibility.data or "",
        transport=form.transport.data or "", accommodation=form.accommodation.data or "",
        catering=form.catering.data or "", funders=form.funders.data or "")


@form_view
@bp.route("/offres/<offer_id>/actions/nouvelle", methods=["GET", "POST"], endpoint="new_action",
          defaults={"key": None})
@bp.route("/offres/<offer_id>/actions/<key>", methods=["GET", "POST"], endpoint="edit_action")
@login_required
def edit_action(offer_id: str, key: str | None) -> Any:
    """Create or edit an action: place, public, entry mode, accessibility, transport, lodging, catering, funders."""
    offer, rights = _offer(offer_id)
    rights.require_edit()
    try:
        existing = offers.find_action(offer.document, key) if key else None
    except offers.NotFound:
        abort(404)
    if request.method == "GET":
        values = offers.action_data(existing).__dict__ if existing else {}
        form = ActionForm(formdata=None, version=offer.version, **values)
        return render_template("catalogue/action_form.html", form=form, offer=offer, key=key)
    form = ActionForm()
    if not form.validate():
        return render_template("catalogue/action_form.html", form=form, offer=offer, key=key), 422
    try:
        doc, new = offers.with_action(offer.document, _action_values(form), key)
        if not _save(offer, doc, form.version.data):
            return redirect(url_for("catalogue.offer", offer_id=offer.id, _anchor=f"action-{new}"))
    except StaleVersion:
        db.session.rollback()
        form.version.data = offer.version
        return render_template("catalogue/action_form.html", form=form, offer=offer, key=key,
                               message=CONFLICT_MESSAGE), 409
    except Invalid as exc:
        db.session.rollback()
        return render_template("catalogue/action_form.html", form=form, offer=offer, key=key,
                               message=_field_error(form, exc)), 422
    flash(_("Action enregistrée.") + ("" if key else " Ajoutez maintenant ses sessions."), "success")
    return redirect(url_for("catalogue.offer", offer_id=offer.id, _anchor=f"action-{new}"))


def _session_values(form: SessionForm) -> offers.SessionData:
    new = offers.ContactData(form.new_contact_name.data or "", form.new_contact_function.data or "",
                             form.new_contact_phone.data or "", form.new_contact_email.data or "")
    return offers.SessionData(start=form.start.data, end=form.end.data,
                              registration_address=form.registration_address.data or "",
                              registration_postal_code=form.registration_postal_code.data or "",
                              registration_city=form.registration_city.data or "",
                              recruitment=form.recruitment.data or "1", contact_ids=request.form.getlist("contact_id"),
                              new_contact=new)


def _render_session(offer: Offer, action: dict[str, Any], key: str | None, form: SessionForm, status: int = 200,
                    chosen: list[str] | None = None, message: str | None = None, contact_error: str | None = None
                    ) -> tuple[str, int]:
    return render_template("catalogue/session_form.html", form=form, offer=offer, action=action, key=key,
                           contacts=offer.organisation.contacts, chosen=chosen or [], message=message,
                           contact_error=contact_error), status


@form_view
@bp.route("/offres/<offer_id>/actions/<action_key>/sessions/nouvelle", methods=["GET", "POST"],
          endpoint="new_session", defaults={"key": None})
@bp.route("/offres/<offer_id>/actions/<action_key>/sessions/<key>", methods=["GET", "POST"], endpoint="edit_session")
@login_required
def edit_session(offer_id: str, action_key: str, key: str | None) -> Any:
    """Create or edit a session: dates, registration address, recruitment, exactly one contact."""
    offer, rights = _offer(offer_id)
    rights.require_edit()
    try:
        action = offers.find_action(offer.document, action_key)
        existing = offers.find_session(action, key) if key else None
    except offers.NotFound:
        abort(404)
    if request.method == "GET":
        if existing:
            data = offers.session_data(existing)
            new = data.new_contact or offers.ContactData("")
            form = SessionForm(formdata=None, version=offer.version, start=data.start, end=data.end,
                               registration_address=data.registration_address,
                               registration_postal_code=data.registration_postal_code,
                               registration_city=data.registration_city, recruitment=data.recruitment,
                               new_contact_name=new.name, new_contact_function=new.function,
                               new_contact_phone=new.phone, new_contact_email=new.email)
            return _render_session(offer, action, key, form, chosen=data.contact_ids)
        form = SessionForm(formdata=None, version=offer.version, registration_address=action["address"],
                           registration_postal_code=action["postal_code"], registration_city=action["city"])
        return _render_session(offer, action, key, form)
    form = SessionForm()
    chosen = request.form.getlist("contact_id")
    if not form.validate():
        return _render_session(offer, action, key, form, 422, chosen)
    try:
        doc, _new = offers.with_session(offer.document, offer.organisation, action_key, _session_values(form), key)
        if not _save(offer, doc, form.version.data):
            return redirect(url_for("catalogue.offer", offer_id=offer.id, _anchor=f"action-{action_key}"))
    except StaleVersion:
        db.session.rollback()
        form.version.data = offer.version
        return _render_session(offer, action, key, form, 409, chosen, message=CONFLICT_MESSAGE)
    except Invalid as exc:
        db.session.rollback()
        if exc.field == "contact":
            return _render_session(offer, action, key, form, 422, chosen, contact_error=exc.message)
        return _render_session(offer, action, key, form, 422, chosen, message=_field_error(form, exc))
    flash(_("Session enregistrée : la modification attend la validation du Carif-Oref."), "success")
    return redirect(url_for("catalogue.offer", offer_id=offer.id, _anchor=f"action-{action_key}"))


@bp.post("/offres/<offer_id>/actions/<action_key>/sessions/<key>/dupliquer", endpoint="duplicate_session")
@login_required
def duplicate_session(offer_id: str, action_key: str, key: str) -> Any:
    """Duplicate a session (a reconduction), then open the copy to set its new dates."""
    offer, rights = _offer(offer_id)
    rights.require_edit()
    form = VersionOnlyForm()
    try:
        doc, new = offers.with_duplicate(offer.document, action_key, key)
        _save(offer, doc, form.version.data)
    except offers.NotFound:
        abort(404)
    flash(_("Session dupliquée : indiquez ses nouvelles dates."), "success")
    return redirect(url_for("catalogue.edit_session", offer_id=offer.id, action_key=action_key, key=new))


@bp.post("/offres/<offer_id>/actions/<action_key>/sessions/<key>/supprimer", endpoint="delete_session")
@login_required
def delete_session(offer_id: str, action_key: str, key: str) -> Any:
    """Remove a session from the offer (the change is moderated like any other)."""
    offer, rights = _offer(offer_id)
    rights.require_edit()
    form = VersionOnlyForm()
    try:
        _save(offer, offers.without_session(offer.document, action_key, key), form.version.data)
    except offers.NotFound:
        abort(404)
    flash(_("Session supprimée : la modification attend la validation du Carif-Oref."), "success")
    return redirect(url_for("catalogue.offer", offer_id=offer.id))


@bp.post("/offres/<offer_id>/actions/<key>/supprimer", endpoint="delete_action")
@login_required
def delete_action(offer_id: str, key: str) -> Any:
    """Remove an action and its sessions (moderated like any other change)."""
    offer, rights = _offer(offer_id)
    rights.require_edit()
    form = VersionOnlyForm()
    try:
        _save(offer, offers.without_action(offer.document, key), form.version.data)
    except offers.NotFound:
        abort(404)
    flash(_("Action supprimée : la modification attend la validation du Carif-Oref."), "success")
    return redirect(url_for("catalogue.offer", offer_id=offer.id))


@bp.get("/offres/<offer_id>/historique", endpoint="history")
@login_required
def offer_history(offer_id: str) -> str:
    """Every version: who, when, the decision and its comment, the field-by-field differences."""
    offer, rights = _offer(offer_id)
    return render_template("catalogue/history.html", offer=offer, rights=rights, rows=offers.history(offer))


# ---------------------------------------------------------------- moderation

@bp.get("/moderation", endpoint="moderation")
@requires_role(*MODERATE)
def moderation() -> str:
    """The moderation queue: offers by status, with counts; the organisations' requests."""
    status = request.args.get("statut", "pending")
    query = request.args.get("q", "")[:100]
    matches = select(Offer).join(Organisation)
    if query:
        like = f"%{query.replace('%', '').replace('_', '')}%"
        matches = matches.where(or_(Organisation.name.ilike(like), Organisation.siret.like(like), Offer.title.ilike(like)))
    conditions = {
        "pending": Offer.pending_version_id.is_not(None),
        "returned": and_(Offer.pending_version_id.is_(None), Offer.returned.is_(True)),
        "published": and_(Offer.pending_version_id.is_(None), Offer.returned.is_(False),
                          Offer.published_version_id.is_not(None)),
    }
    status = status if status in conditions else "pending"
    # The counts beside each status follow the text filter, as the list does (one query).
    tallies = db.session.execute(matches.with_only_columns(*(func.count().filter(c) for c in conditions.values()))
                                 .order_by(None)).one()
    counts = dict(zip(conditions, tallies, strict=True))
    counts["requests"] = db.session.scalar(select(func.count()).select_from(ChangeRequest)
                                           .where(ChangeRequest.status == "pending"))
    statement = matches.where(conditions[status])
    page = db.paginate(statement.order_by(Offer.updated_at, Offer.id), page=page_number(request.args.get("page")),
                       per_page=current_app.config["PER_PAGE"], error_out=False)
    requests = db.session.scalars(select(ChangeRequest).where(ChangeRequest.status == "pending")
                                  .order_by(ChangeRequest.id)).all()
    return render_template("catalogue/moderation.html", page=page, status=status, query=query, counts=counts,
                           requests=requests, decision_form=RequestDecisionForm(formdata=None),
                           reminder_form=PlainForm(formdata=None))


def _decision_mail(offer: Offer, version: OfferVersion) -> None:
    link = url_for("catalogue.offer", offer_id=offer.id, _external=True)
    for recipient in _recipients(version.submitted_email, offer.organisation.email):
        send_mail("offer_decided", recipient, offer=offer, version=version, organisation=offer.organisation, link=link,
                  public=url_for("catalogue.search", _external=True))


@bp.post("/offres/<offer_id>/publier", endpoint="publish")
@requires_role(*MODERATE)
def publish(offer_id: str) -> Any:
    """Publish the pending version: it replaces the public one."""
    offer, rights = _offer(offer_id)
    rights.require_moderation()
    form = VersionOnlyForm()
    try:
        version = offers.publish(db.session, offer, actor=_actor(), expected_version=form.version.data)
    except Invalid as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("catalogue.offer", offer_id=offer.id))
    search.reindex_offer(db.session, offer, _today())
    _decision_mail(offer, version)
    db.session.commit()
    flash(_("Version %(number)d publiée : elle est visible dans la recherche publique et l'export LHEO.",
            number=version.number), "success")
    return redirect(url_for("catalogue.moderation"))


@form_view
@bp.post("/offres/<offer_id>/renvoyer", endpoint="return_offer")
@requires_role(*MODERATE)
def return_offer(offer_id: str) -> Any:
    """Return the pending version to the organisation with a comment; the published one stays public."""
    offer, rights = _offer(offer_id)
    rights.require_moderation()
    form = ReturnForm()
    if not form.validate():
        return render_template("catalogue/offer.html", offer=offer, rights=rights, doc=offer.document,
                               button=VersionOnlyForm(formdata=None, version=offer.version), return_form=form,
                               missing=offers.missing_parts(offer.document),
                               published=offer.published_version_id is not None,
                               last=offer.versions[-1] if offer.versions else None), 422
    try:
        version = offers.return_for_correction(db.session, offer, actor=_actor(), comment=form.comment.data,
                                               expected_version=form.version.data)
    except Invalid as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("catalogue.offer", offer_id=offer.id))
    _decision_mail(offer, version)
    db.session.commit()
    flash(_("La modification est renvoyée à l'organisme avec votre commentaire."), "success")
    return redirect(url_for("catalogue.moderation"))


@form_view
@bp.post("/moderation/demandes/<request_id>", endpoint="decide_request")
@requires_role(*MODERATE)
def decide_request(request_id: str) -> Any:
    """Handle an organisation's request (accept, possibly setting the NDA or SIRET; or refuse with an answer)."""
    change = db.session.get(ChangeRequest, parse_id(request_id))
    if change is None:
        abort(404)
    form = RequestDecisionForm()
    if not form.validate():
        flash(_("Choisissez une décision."), "error")
        return redirect(url_for("catalogue.moderation"))
    try:
        organisations.decide_request(db.session, change, accept=form.decision.data == "accept",
                                     answer=form.answer.data or "", actor=_actor(), nda=form.nda.data or "",
                                     siret=form.siret.data or "")
    except Invalid as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("catalogue.moderation"))
    for recipient in _recipients(change.requested_email, change.organisation.email):
        send_mail("request_decided", recipient, change=change, organisation=change.organisation,
                  topic=organisations.TOPICS[change.topic])
    db.session.commit()
    flash(_("Demande traitée ; l'organisme en est informé par courriel."), "success")
    return redirect(url_for("catalogue.moderation"))


@bp.post("/moderation/rappels", endpoint="send_reminders")
@requires_role(*MODERATE)
def send_reminders() -> Any:
    """Send the yearly "vérifiez votre fiche" reminder to the records not checked for more than a year."""
    PlainForm()
    count = remind(utcnow())
    db.session.commit()
    flash(plural(_("%(num)d rappel envoyé.", num=count), _("%(num)d rappels envoyés.", num=count), count), "success")
    return redirect(url_for("catalogue.moderation"))


def remind(now: datetime) -> int:
    """Queue the reminder mails due (also run by `python -m apps.catalogue reminders`)."""
    due = organisations.reminders_due(db.session, now)
    for organisation in due:
        link = url_for("catalogue.organisation_tab", siret=organisation.siret, tab="historique", _external=True)
        send_mail("attestation_reminder", organisation.email, organisation=organisation, link=link)
    organisations.mark_reminded(due, now)
    return len(due)
