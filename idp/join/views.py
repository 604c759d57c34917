"""Views of "Mes structures", "Se rattacher à une structure" and "Informations de ma structure"
(SPEC §4.1, §4.2; seed 000 §3.A and §5, seed 001 "Comment se rattacher à un établissement scolaire ?").

Looking up a SIRET and searching change nothing: they are GET forms (no CSRF token in URLs). Sending
or cancelling a request is a POST with its CSRF token.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any
from urllib.parse import urlencode

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from idp import web
from idp.core.accounts import normalize_email
from idp.core.errors import InvalidInput, NotFound
from idp.core.memberships import (
    active_memberships,
    cancel_request,
    choose_structure,
    live_role_ids,
    membership_of,
    request_join,
    structure_admins,
)
from idp.core.structures import clean_siret, find_by_siret, search_structures
from idp.extensions import db, limiter
from idp.join.forms import QUERY_MAX, CancelForm, JoinForm, SearchForm, SiretForm, siret_digits
from idp.join.jobs import address, notify_new_request
from idp.models import (
    JoinRequest,
    Membership,
    MembershipStatus,
    Profile,
    Structure,
    StructureKind,
    User,
)

bp = Blueprint("join", __name__, url_prefix="/structures")

SEARCH_RESULTS = 10
SEARCH_MIN_LENGTH = 2

KIND_LABELS = {
    StructureKind.ORGANISME: _l("Organisme"),
    StructureKind.LYCEE: _l("Établissement scolaire"),
    StructureKind.REGION: _l("Région"),
    StructureKind.AUTRE: _l("Autre structure"),
}


# ------------------------------------------------------------------ rate limit of the instant search

def _search_limit() -> str:
    # A typeahead asks once per pause in typing: the login's per-address budget is too tight for it.
    return current_app.config.get("RATELIMIT_SEARCH", "60/minute")


def _searcher_key() -> str:
    return "structure-search:" + (str(current_user.id) if current_user.is_authenticated else request.remote_addr or "")


def _not_searching() -> bool:
    return request.endpoint == "join.start" and "q" not in request.args


# ------------------------------------------------------------------ helpers

def _me() -> User:
    return current_user._get_current_object()  # type: ignore[no-any-return]  # behind login_required


def _roles_by_app(membership: Membership) -> list[tuple[str, list[str]]]:
    """My live roles in a structure, grouped by application label."""
    live = live_role_ids(membership)
    grouped: dict[str, list[str]] = defaultdict(list)
    for grant in membership.grants:
        if grant.role_id in live:
            grouped[grant.role.application.label].append(grant.role.label)
    return sorted((app, sorted(labels)) for app, labels in grouped.items())


def _my_pending_requests(user_id: uuid.UUID) -> list[JoinRequest]:
    return list(db.session.scalars(
        select(JoinRequest).where(JoinRequest.user_id == user_id, JoinRequest.is_open)
        .order_by(JoinRequest.created_at.desc())))


def _suspended_memberships(user_id: uuid.UUID) -> list[Membership]:
    return list(db.session.scalars(select(Membership).where(
        Membership.user_id == user_id, Membership.status == MembershipStatus.SUSPENDED)))


def _register_url(siret: str) -> str:
    """REPERNET's registration with the SIRET pre-filled and the way back here (SPEC §4.2, §8)."""
    base = current_app.config["REPERNET_REGISTER_URL"]
    # `enregistree`: back from REPERNET, the page welcomes the new structure (not "déjà rattaché(e)").
    query = urlencode({"siret": siret, "return_to": url_for("join.start", siret=siret, enregistree=1, _external=True)})
    return f"{base}{'&' if '?' in base else '?'}{query}"


def _search(text: str) -> list[Structure]:
    return search_structures(db.session, text[:QUERY_MAX], limit=SEARCH_RESULTS)


def _structure_json(structure: Structure) -> dict[str, Any]:
    return {"id": str(structure.id), "siret": structure.siret, "name": structure.name, "city": structure.city,
            "code": structure.code or ""}


def _structure_by_siret(siret: str) -> Structure:
    """:raises NotFound: malformed or unknown SIRET in a URL."""
    try:
        structure = find_by_siret(db.session, clean_siret(siret_digits(siret[:64])))
    except InvalidInput as exc:
        raise NotFound("structure") from exc
    if structure is None:
        raise NotFound("structure")
    return structure


# ------------------------------------------------------------------ pages

@bp.get("/")
@web.login_required
def index() -> str:
    """Mes structures: my memberships with my roles, my pending requests, the ways to join."""
    user = _me()
    memberships = active_memberships(db.session, user.id)
    current = web.current_membership()
    return render_template(
        "join/index.html", memberships=memberships, roles={m.id: _roles_by_app(m) for m in memberships},
        current_id=current.id if current else None, pending=_my_pending_requests(user.id),
        suspended=_suspended_memberships(user.id), cancel_form=CancelForm())


@bp.post("/demandes/<int:request_id>/annuler")
@web.login_required
def cancel(request_id: int) -> Any:
    """Cancel one of my pending requests; someone else's is not found."""
    user = _me()
    form = CancelForm()
    if not form.validate_on_submit():
        flash(_("La page a expiré : veuillez recommencer."), "error")
        return redirect(url_for("join.index")), 303
    join = db.session.get(JoinRequest, request_id)
    if join is None or join.user_id != user.id:
        abort(404)
    try:
        cancel_request(db.session, user, join, web.origin())
    except NotFound:
        db.session.rollback()
        abort(404)
    except InvalidInput:
        db.session.rollback()
        flash(_("Cette demande n'est plus en attente : elle a déjà été traitée ou a expiré."), "error")
        return redirect(url_for("join.index")), 303
    db.session.commit()
    flash(_("Votre demande de rattachement à %(name)s est annulée.", name=join.structure.name), "success")
    return redirect(url_for("join.index")), 303


@bp.get("/rattacher")
@web.login_required
@limiter.limit(_search_limit, key_func=_searcher_key, scope="structure-search", exempt_when=_not_searching)
def start() -> Any:
    """Se rattacher, step 1: the SIRET (or a search without JavaScript) → the structure, or
    "Créer la structure" in REPERNET when the SIRET is unknown."""
    siret_form = SiretForm(request.args if "siret" in request.args else None)
    search_form = SearchForm(request.args if "q" in request.args else None)
    context: dict[str, Any] = {"siret_form": siret_form, "search_form": search_form, "results": None,
                               "not_found": None, "register_url": None, "query_error": None}
    if "siret" in request.args:
        if not siret_form.validate():
            return render_template("join/start.html", **context), 400
        try:
            siret = clean_siret(siret_digits(siret_form.siret.data))
        except InvalidInput:
            siret_form.siret.errors = [_("La clé de contrôle de ce SIRET n'est pas valide : vérifiez les 14 "
                                         "chiffres saisis.")]
            return render_template("join/start.html", **context), 400
        if find_by_siret(db.session, siret) is not None:
            return redirect(url_for("join.structure", siret=siret, **({"enregistree": 1} if request.args.get("enregistree") else {})))
        context.update(not_found=siret, register_url=_register_url(siret))
        return render_template("join/start.html", **context), 404
    if "q" in request.args:
        text = (search_form.q.data or "").strip()
        if len(text) < SEARCH_MIN_LENGTH:
            context["query_error"] = _("Saisissez au moins %(n)d caractères.", n=SEARCH_MIN_LENGTH)
            return render_template("join/start.html", **context), 400
        context["results"] = _search(text)
    return render_template("join/start.html", **context)


@bp.get("/recherche")
@limiter.limit(_search_limit, key_func=_searcher_key, scope="structure-search")
def search() -> Any:
    """Instant search (typeahead) by name, city or code: JSON, searchable structures only, at most 10."""
    if not current_user.is_authenticated:
        return jsonify(error=_("Connectez-vous pour rechercher une structure.")), 401
    text = (request.args.get("q") or "").strip()
    if len(text) < SEARCH_MIN_LENGTH:
        return jsonify([])
    return jsonify([_structure_json(s) for s in _search(text)])


@bp.route("/rattacher/<siret>", methods=["GET", "POST"])
@web.login_required
def structure(siret: str) -> Any:
    """Se rattacher, step 2: the structure found, a profile and a message → the request."""
    user = _me()
    try:
        found = _structure_by_siret(siret)
    except NotFound:
        return redirect(url_for("join.start", siret=siret[:64]))
    if found.siret != siret:
        return redirect(url_for("join.structure", siret=found.siret))
    profiles = list(db.session.scalars(select(Profile).where(Profile.kind == found.kind).order_by(Profile.id)))
    # The registered account admin's e-mail (SPEC §4.2): no profile to pick, they get every right.
    designated = bool(found.admin_email) and found.admin_email == normalize_email(user.email)
    form = JoinForm(profiles=[] if designated else profiles)
    membership = membership_of(db.session, user.id, found.id)
    pending = db.session.scalar(select(JoinRequest).where(
        JoinRequest.user_id == user.id, JoinRequest.structure_id == found.id, JoinRequest.is_open))
    context = {"structure": found, "form": form, "profiles": profiles, "membership": membership,
               "pending": pending, "designated": designated}
    if request.method == "GET":
        return render_template("join/structure.html", **context)
    if membership is not None or pending is not None:
        return render_template("join/structure.html", **context), 409
    if not form.validate_on_submit():
        return render_template("join/structure.html", **context), 400
    profile = next((p for p in profiles if str(p.id) == form.profile.data), None)
    try:
        result = request_join(db.session, user, found, web.origin(), profile=profile,
                              message=form.message.data or "")
    except InvalidInput as exc:
        db.session.rollback()
        messages = {
            "already_member": _("Vous êtes déjà rattaché(e) à cette structure."),
            "already_pending": _("Vous avez déjà une demande en attente pour cette structure."),
            "profile_mismatch": _("Ce profil n'est pas proposé pour cette structure."),
        }
        form.form_errors.append(messages.get(exc.message, _("Votre demande n'a pas pu être enregistrée.")))
        return render_template("join/structure.html", **context), 409
    if isinstance(result, Membership):
        return _became_admin(result)
    notify_new_request(db.session, result)
    db.session.commit()
    return redirect(url_for("join.sent", request_id=result.id), 303)


def _became_admin(membership: Membership) -> Response:
    """SPEC §4.2: the registered account admin's e-mail → admin at once, no request."""
    structure = membership.structure
    login = current_user.login_session
    if login is not None and web.current_membership() is None:
        # Acting for no structure yet: this one becomes current; otherwise the user switches when they wish.
        choose_structure(db.session, login, structure.id, web.origin())
    web.send_mail("join_admin_match", address(membership.user), user=membership.user, structure=structure,
                  link=url_for("manage.index", structure_id=structure.id, _external=True))
    db.session.commit()
    flash(_("Votre adresse e-mail de connexion est celle de l'administrateur désigné de %(name)s : vous êtes "
            "rattaché(e) à cette structure et vous en êtes administrateur.", name=structure.name), "success")
    return redirect(url_for("join.index"), 303)


@bp.get("/demandes/<int:request_id>")
@web.login_required
def sent(request_id: int) -> str:
    """The confirmation of a request I sent (and where it stands)."""
    join = db.session.get(JoinRequest, request_id)
    if join is None or join.user_id != _me().id:
        abort(404)
    has_admin = bool(structure_admins(db.session, join.structure_id))
    return render_template("join/sent.html", join=join, has_admin=has_admin, cancel_form=CancelForm())


@bp.get("/courante")
@web.login_required
def current() -> str:
    """Informations de ma structure: the current structure, its admins' contact e-mails, my roles."""
    membership = web.current_membership()
    if membership is None:
        return render_template("join/current.html", membership=None, structure=None)
    found = membership.structure
    establishments = list(db.session.scalars(
        select(Structure).where(Structure.parent_id == found.id).order_by(Structure.name).limit(50)))
    admins = sorted(structure_admins(db.session, found.id), key=lambda u: (u.family_name, u.given_name, u.email))
    return render_template("join/current.html", membership=membership, structure=found, admins=admins,
                           establishments=establishments, roles=_roles_by_app(membership),
                           kind_label=KIND_LABELS.get(found.kind, found.kind.value), mail_of=address)
