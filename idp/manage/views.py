"""Views of "Gérer ma structure": requests, members, grants, invitations, audit (SPEC §4.3, §4.4).

Every URL carrying a structure id is for the active admins of that structure and the platform
admins (`_structure_admins_only`); every object named in a path or a form (membership, request,
role) is then looked up *within* that structure by the core, so an admin of A never reaches B.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from idp import web
from idp.auth.forms import password_messages
from idp.auth.views import _reset_link, limit_link_guesses
from idp.core import memberships as core
from idp.core.accounts import find_user
from idp.core.audit import events_csv, events_query
from idp.core.errors import Conflict, InvalidInput, NotAllowed, NotFound
from idp.core.member_list import SORTS, members_page
from idp.core.memberships import Authority
from idp.core.security import LinkInvalid
from idp.extensions import db
from idp.guard import column_int
from idp.manage.forms import (
    AttachForm,
    ConfirmForm,
    DeclineForm,
    FlagForm,
    GrantsForm,
    InvitationPasswordForm,
    VersionForm,
)
from idp.models import AccountState, AppRole, JoinRequest, Membership, Structure, User
from shared.bounds import FIRST_DAY, LAST_DAY, DayOutOfRange, parse_day
from shared.paging import page_number, paginate

bp = Blueprint("manage", __name__, url_prefix="/gestion")

JOIN_LINK_MAX_AGE = 16 * 24 * 3600  # the request lives 15 days; its e-mail link a day more
CSV_MAX_ROWS = 50_000


# ------------------------------------------------------------------ access

@bp.before_request
def _structure_admins_only() -> Any:
    """Anonymous → login page; unknown structure, or one where the user is not an active admin (nor
    a platform admin) → 404, the same answer, so that ids cannot be probed (issue 15 finding 12).
    Runs for every URL of the blueprint that names a structure."""
    args = request.view_args or {}
    if "structure_id" not in args:
        return None
    user = current_user._get_current_object()
    if not user.is_authenticated:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    structure = db.session.get(Structure, args["structure_id"])
    if structure is None:
        abort(404)
    try:
        g.manage_auth = core.authority(db.session, user, structure)
    except NotAllowed:
        abort(404)
    return None


def _auth() -> Authority:
    return g.manage_auth


def _membership(membership_id: int) -> Membership:
    try:
        return core.get_membership(db.session, _auth(), membership_id)
    except NotFound:
        abort(404)


def _join(request_id: int) -> JoinRequest:
    try:
        return core.get_request(db.session, _auth(), request_id)
    except NotFound:
        abort(404)


# ------------------------------------------------------------------ roles on screen

@dataclass(frozen=True)
class RoleChoice:
    """One entitled role on a form: ticked or not, its end date, and why it can't be changed."""

    role: AppRole
    checked: bool
    end: str  # the last day (YYYY-MM-DD) or ""
    refusal: str | None


def _refusal_text(reason: str | None) -> str | None:
    if reason == "not_entitled":
        return _("La structure n'a pas accès à ce rôle.")
    if reason == "not_held":
        return _("Vous ne détenez pas ce rôle dans cette structure : seul un administrateur qui le détient "
                 "peut l'accorder ou le retirer.")
    return None


def _entitled_roles(auth: Authority) -> list[AppRole]:
    return sorted(core.role_labels(db.session, auth.entitled).values(), key=lambda r: (r.app, r.id))


def _role_choices(auth: Authority, checked: set[int], ends: dict[int, str] | None = None) -> list[RoleChoice]:
    ends = ends or {}
    return [RoleChoice(r, r.id in checked, ends.get(r.id, ""), _refusal_text(auth.refusal(r.id)))
            for r in _entitled_roles(auth)]


def _refused_message(exc: NotAllowed) -> str:
    """One French sentence per refused role (SPEC §4.3: say why, never hide)."""
    refused: dict[int, str] = exc.details.get("refused", {})  # type: ignore[assignment]
    labels = core.role_labels(db.session, refused)
    parts = [_("« %(role)s » : %(why)s", role=labels[r].label if r in labels else _("rôle inconnu n°%(id)s", id=r),
               why=_refusal_text(reason) or "") for r, reason in sorted(refused.items())]
    return _("Vous ne pouvez pas accorder ou retirer ces droits. ") + " ".join(parts)


def _posted_roles() -> set[int] | None:
    """The ticked role ids; None when one is not an id (a forged form)."""
    ids = {column_int(v) for v in request.form.getlist("roles")}
    return None if None in ids else ids  # type: ignore[return-value]


def _last_day(ends_at: datetime | None) -> str:
    return (ends_at - timedelta(days=1)).date().isoformat() if ends_at else ""


def _ends_from_form(role_ids: set[int]) -> tuple[dict[int, datetime | None], dict[int, str], list[str]]:
    """End dates typed per role (`ends_<id>`, the last day included); only fields present count."""
    ends: dict[int, datetime | None] = {}
    typed: dict[int, str] = {}
    errors: list[str] = []
    for role_id in role_ids:
        key = f"ends_{role_id}"
        if key not in request.form:
            continue
        value = request.form[key].strip()[:10]
        typed[role_id] = value
        if not value:
            ends[role_id] = None
            continue
        try:
            day = parse_day(value)
        except DayOutOfRange:  # 9999-12-31 would overflow once a day is added to it (issue 15)
            errors.append(_("Date hors limites : %(value)s (entre le %(first)s et le %(last)s).", value=value,
                            first=FIRST_DAY.strftime("%d/%m/%Y"), last=LAST_DAY.strftime("%d/%m/%Y")))
            continue
        except ValueError:
            errors.append(_("Date de fin invalide : %(value)s (format attendu : AAAA-MM-JJ).", value=value))
            continue
        ends[role_id] = datetime.combine(day + timedelta(days=1), time.min, UTC)
    return ends, typed, errors


# ------------------------------------------------------------------ dashboard

@bp.get("/<uuid:structure_id>/")
@web.login_required
def index(structure_id: uuid.UUID) -> str:
    """The structure's dashboard: pending requests and the ways to manage members."""
    auth = _auth()
    return render_template("manage/index.html", structure=auth.structure,
                           pending=core.pending_requests(db.session, auth.structure.id))


# ------------------------------------------------------------------ join requests

@bp.get("/demande/<token>")
@web.login_required
def open_request(token: str) -> Any:
    """The "Traiter la demande" link of the e-mail sent to admins: a signed join-request id."""
    try:
        payload = web.unsign("join-request", token, JOIN_LINK_MAX_AGE)
        join = db.session.get(JoinRequest, int(payload["rid"]))
    except LinkInvalid as exc:
        return render_template("manage/link_invalid.html", expired=exc.expired), 400
    except (KeyError, TypeError, ValueError):
        join = None
    if join is None:
        return render_template("manage/link_invalid.html", expired=False), 404
    return redirect(url_for("manage.request_detail", structure_id=join.structure_id, request_id=join.id))


@bp.get("/<uuid:structure_id>/demandes")
@web.login_required
def requests(structure_id: uuid.UUID) -> str:
    """Pending requests, and the latest decided ones."""
    auth = _auth()
    decided = core.decided_requests(db.session, auth.structure.id)
    return render_template("manage/requests.html", structure=auth.structure,
                           pending=core.pending_requests(db.session, auth.structure.id),
                           decided=decided, deciders=_deciders(decided))


def _deciders(joins: list[JoinRequest]) -> dict[uuid.UUID, User]:
    ids = {j.decided_by for j in joins if j.decided_by}
    return {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(ids)))} if ids else {}


def _request_page(join: JoinRequest, *, checked: set[int] | None = None, decline: DeclineForm | None = None,
                  errors: list[str] | None = None, status: int = 200) -> Any:
    auth = _auth()
    if checked is None:
        suggested = {r.id for r in join.profile.roles} if join.profile else set()
        checked = {r for r in suggested if auth.refusal(r) is None}
    return render_template("manage/request.html", structure=auth.structure, join=join,
                           roles=_role_choices(auth, checked), accept=ConfirmForm(formdata=None),
                           decline=decline or DeclineForm(formdata=None), errors=errors or [],
                           deciders=_deciders([join])), status


@bp.route("/<uuid:structure_id>/demandes/<int:request_id>", methods=["GET", "POST"])
@web.login_required
def request_detail(structure_id: uuid.UUID, request_id: int) -> Any:
    """One request: who, which profile, message, expiry; accept with the grants ticked."""
    join = _join(request_id)
    if request.method == "GET":
        return _request_page(join)
    form = ConfirmForm()
    roles = _posted_roles()
    if not form.validate_on_submit() or roles is None:
        return _request_page(join, checked=roles or set(), errors=[_("Le formulaire a expiré ou est invalide : "
                                                                         "rechargez la page et recommencez.")],
                             status=400)
    try:
        core.accept_request(db.session, _auth(), join, roles, web.origin())
    except NotAllowed as exc:
        db.session.rollback()
        return _request_page(join, checked=roles, errors=[_refused_message(exc)], status=403)
    except InvalidInput as exc:
        db.session.rollback()
        return _already_decided(join, exc)
    web.send_mail("join_request_accepted", join.user.contact_email or join.user.email, user=join.user,
                  structure=join.structure, link=url_for("account.index", _external=True))
    db.session.commit()
    flash(_("La demande de %(name)s a été acceptée : %(email)s est rattaché(e) à la structure.",
            name=join.user.name or join.user.email, email=join.user.email), "success")
    return redirect(url_for("manage.requests", structure_id=structure_id))


def _already_decided(join: JoinRequest, exc: InvalidInput) -> Any:
    db.session.refresh(join)
    if exc.message == "already_member":
        message = _("Cette personne est déjà rattachée à la structure.")
    else:
        message = _("Cette demande n'est plus en attente : elle a déjà été traitée ou a expiré.")
    return _request_page(join, checked=set(), errors=[message], status=409)


@bp.post("/<uuid:structure_id>/demandes/<int:request_id>/refuser")
@web.login_required
def request_decline(structure_id: uuid.UUID, request_id: int) -> Any:
    """Decline, with an optional reason sent to the requester."""
    join = _join(request_id)
    form = DeclineForm()
    if not form.validate_on_submit():
        return _request_page(join, decline=form, status=422)
    try:
        core.decline_request(db.session, _auth(), join, web.origin(), form.reason.data or "")
    except InvalidInput as exc:
        db.session.rollback()
        return _already_decided(join, exc)
    web.send_mail("join_request_declined", join.user.contact_email or join.user.email, user=join.user,
                  structure=join.structure, reason=join.reason, link=url_for("join.index", _external=True))
    db.session.commit()
    flash(_("La demande de %(email)s a été refusée ; le demandeur en est informé.", email=join.user.email), "success")
    return redirect(url_for("manage.requests", structure_id=structure_id))


# ------------------------------------------------------------------ members

@bp.get("/<uuid:structure_id>/membres")
@web.login_required
def members(structure_id: uuid.UUID) -> str:
    """Members, searchable by name or e-mail, sorted, paginated."""
    auth = _auth()
    text = request.args.get("q", "").strip()[:100]
    sort = request.args.get("sort", "name")
    sort = sort if sort in SORTS else "name"
    page = members_page(db.session, auth.structure.id, text=text, sort=sort,
                        number=page_number(request.args.get("page")))
    return render_template("manage/members.html", structure=auth.structure, page=page, q=text, sort=sort,
                           now=datetime.now(UTC))


def _member_page(membership: Membership, *, checked: set[int] | None = None, typed: dict[int, str] | None = None,
                 version: int | None = None, errors: list[str] | None = None, conflict: bool = False,
                 status: int = 200) -> Any:
    auth = _auth()
    now = datetime.now(UTC)
    live = core.live_role_ids(membership, now)
    ends = {g.role_id: _last_day(g.ends_at) for g in membership.grants}
    form = GrantsForm(formdata=None, data={"version": version if version is not None else membership.version})
    return render_template(
        "manage/member.html", structure=auth.structure, membership=membership, user=membership.user,
        roles=_role_choices(auth, checked if checked is not None else {g.role_id for g in membership.grants},
                            typed if typed is not None else ends),
        saved=[g for g in membership.grants], live=live, form=form, errors=errors or [], conflict=conflict,
        action=VersionForm(formdata=None, data={"version": membership.version}), now=now), status


@bp.route("/<uuid:structure_id>/membres/<int:membership_id>", methods=["GET", "POST"])
@web.login_required
def member(structure_id: uuid.UUID, membership_id: int) -> Any:
    """One member: grants (with end dates), admin, suspension, detach, unblock."""
    membership = _membership(membership_id)
    if request.method == "GET":
        return _member_page(membership)
    form = GrantsForm()
    roles = _posted_roles()
    ends, typed, errors = _ends_from_form(_auth().entitled)
    if not form.validate_on_submit() or roles is None:
        errors.append(_("Le formulaire est invalide : rechargez la page et recommencez."))
    if errors:
        return _member_page(membership, checked=roles or set(), typed=typed, errors=errors, status=422)
    try:
        core.set_grants(db.session, _auth(), membership, roles, web.origin(),
                        expected_version=form.version.data, ends_at=ends)
    except NotAllowed as exc:
        db.session.rollback()
        return _member_page(membership, checked=roles, typed=typed, version=form.version.data,
                            errors=[_refused_message(exc)], status=403)
    except InvalidInput:
        db.session.rollback()
        return _member_page(membership, checked=roles, typed=typed, version=form.version.data,
                            errors=[_("Une date de fin doit être postérieure à aujourd'hui.")], status=422)
    except Conflict:
        db.session.rollback()
        db.session.refresh(membership)
        return _conflict(membership, checked=roles, typed=typed)
    db.session.commit()
    flash(_("Les droits de %(email)s sont enregistrés.", email=membership.user.email), "success")
    return redirect(url_for("manage.member", structure_id=structure_id, membership_id=membership_id))


def _conflict(membership: Membership, **kept: Any) -> Any:
    """409: someone saved this member since the page was loaded; the input is kept, the version is the
    new one, so that saving again is a deliberate choice."""
    message = _("Un autre administrateur a modifié ce membre pendant que vous le consultiez : vos changements "
                "n'ont pas été enregistrés. Les droits enregistrés sont affichés ci-dessous avec votre saisie ; "
                "vérifiez-la puis enregistrez à nouveau si elle est toujours valable.")
    return _member_page(membership, errors=[message], conflict=True, status=409, **kept)


def _last_admin() -> str:
    return _("La structure doit toujours garder au moins un administrateur actif : désignez-en un autre d'abord.")


def _flag_action(structure_id: uuid.UUID, membership_id: int, change: Any, done: str) -> Any:
    membership = _membership(membership_id)
    form = FlagForm()
    if not form.validate_on_submit() or form.value.data not in ("0", "1"):
        return _member_page(membership, errors=[_("Le formulaire est invalide : rechargez la page et recommencez.")],
                            status=422)
    try:
        change(membership, form.value.data == "1", form.version.data)
    except NotAllowed:
        db.session.rollback()
        return _member_page(membership, errors=[_last_admin()], status=409)
    except Conflict:
        db.session.rollback()
        db.session.refresh(membership)
        return _conflict(membership)
    db.session.commit()
    flash(done.format(email=membership.user.email), "success")
    return _after_change(membership, url_for("manage.member", structure_id=structure_id, membership_id=membership_id))


def _after_change(membership: Membership, target: str) -> Response:
    """Back to the page, unless the admins just changed their own access and can no longer see it."""
    auth = _auth()
    if membership.user_id == auth.actor.id and not auth.actor.is_admin and not (membership.is_admin
                                                                                and membership.is_active):
        return redirect(url_for("account.index"))
    return redirect(target)


@bp.post("/<uuid:structure_id>/membres/<int:membership_id>/administrateur")
@web.login_required
def member_admin(structure_id: uuid.UUID, membership_id: int) -> Any:
    """Promote to admin (value=1) or demote (value=0)."""
    value = request.form.get("value")

    def change(membership: Membership, admin: bool, version: int) -> None:
        core.set_admin(db.session, _auth(), membership, admin, web.origin(), expected_version=version)

    done = (_("{email} est désormais administrateur de la structure.") if value == "1"
            else _("{email} n'est plus administrateur de la structure."))
    return _flag_action(structure_id, membership_id, change, done)


@bp.post("/<uuid:structure_id>/membres/<int:membership_id>/suspension")
@web.login_required
def member_suspension(structure_id: uuid.UUID, membership_id: int) -> Any:
    """Suspend (value=1: every grant here stops at once) or reactivate (value=0) a membership."""
    value = request.form.get("value")

    def change(membership: Membership, suspended: bool, version: int) -> None:
        core.set_suspended(db.session, _auth(), membership, suspended, web.origin(), expected_version=version)

    done = (_("Le rattachement de {email} est suspendu.") if value == "1"
            else _("Le rattachement de {email} est réactivé."))
    return _flag_action(structure_id, membership_id, change, done)


@bp.route("/<uuid:structure_id>/membres/<int:membership_id>/detacher", methods=["GET", "POST"])
@web.login_required
def member_detach(structure_id: uuid.UUID, membership_id: int) -> Any:
    """Detach a member after a confirmation page: every grant here goes with it."""
    membership = _membership(membership_id)
    form = VersionForm(data={"version": membership.version} if request.method == "GET" else None)
    if form.validate_on_submit():
        email, own = membership.user.email, membership.user_id == _auth().actor.id
        try:
            core.detach(db.session, _auth(), membership, web.origin(), expected_version=form.version.data)
        except NotAllowed:
            db.session.rollback()
            return _member_page(membership, errors=[_last_admin()], status=409)
        except Conflict:
            db.session.rollback()
            db.session.refresh(membership)
            return _conflict(membership)
        db.session.commit()
        flash(_("%(email)s est détaché(e) de la structure et perd tous ses droits applicatifs.", email=email),
              "success")
        if own and not _auth().actor.is_admin:
            return redirect(url_for("account.index"))
        return redirect(url_for("manage.members", structure_id=structure_id))
    return render_template("manage/confirm.html", structure=_auth().structure, form=form,
                           title=_("Détacher un membre"),
                           message=_("Êtes-vous sûr de vouloir détacher %(name)s (%(email)s) de la structure ? "
                                     "Tous ses droits applicatifs dans la structure seront retirés immédiatement.",
                                     name=membership.user.name, email=membership.user.email),
                           button=_("Détacher"), danger=True,
                           cancel=url_for("manage.member", structure_id=structure_id, membership_id=membership_id)
                           ), 400 if form.errors else 200


@bp.route("/<uuid:structure_id>/membres/<int:membership_id>/debloquer", methods=["GET", "POST"])
@web.login_required
def member_unblock(structure_id: uuid.UUID, membership_id: int) -> Any:
    """Unblock a member's blocked account and e-mail them a password-reset link."""
    membership = _membership(membership_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            user = core.unblock_member(db.session, _auth(), membership, web.origin())
        except Conflict:
            db.session.rollback()
            flash(_("Le compte de %(email)s n'est pas bloqué.", email=membership.user.email), "error")
            return redirect(url_for("manage.member", structure_id=structure_id, membership_id=membership_id))
        except NotAllowed:
            db.session.rollback()
            return _member_page(membership, errors=[_("Ce compte a été bloqué par l'administration de la "
                                                      "plateforme : seule elle peut le débloquer.")], status=403)
        web.send_mail("account_unblocked", user.email, user=user, structure=_auth().structure,
                      link=_reset_link(user), minutes=current_app.config["RESET_LINK_MAX_AGE"] // 60)
        db.session.commit()
        flash(_("Le compte de %(email)s est débloqué ; un lien pour choisir un nouveau mot de passe lui a été "
                "envoyé.", email=user.email), "success")
        return redirect(url_for("manage.member", structure_id=structure_id, membership_id=membership_id))
    return render_template("manage/confirm.html", structure=_auth().structure, form=form,
                           title=_("Débloquer un compte"),
                           message=_("Êtes-vous sûr de vouloir débloquer le compte de %(name)s (%(email)s) ? "
                                     "Un e-mail lui permettra de choisir un nouveau mot de passe.",
                                     name=membership.user.name, email=membership.user.email),
                           button=_("Débloquer le compte"), danger=False,
                           cancel=url_for("manage.member", structure_id=structure_id, membership_id=membership_id)
                           ), 400 if form.errors else 200


# ------------------------------------------------------------------ attach and invitations

def _invitation_link(token: str) -> str:
    return url_for("manage.invitation", token=token, _external=True)


def _send_invitation(user: User, token: str) -> None:
    web.send_mail("invitation", user.email, user=user, structure=_auth().structure, inviter=_auth().actor,
                  link=_invitation_link(token), days=core.INVITATION_LIFETIME.days)


@bp.route("/<uuid:structure_id>/rattacher", methods=["GET", "POST"])
@web.login_required
def attach(structure_id: uuid.UUID) -> Any:
    """Attach someone by login e-mail with grants; without an account, invite them."""
    auth = _auth()
    form = AttachForm()
    roles = _posted_roles() if request.method == "POST" else set()
    errors: list[str] = []
    status = 200
    if form.validate_on_submit() and roles is not None:
        try:
            membership, token = core.invite(db.session, auth, form.email.data or "", web.origin(),
                                            given_name=form.given_name.data or "",
                                            family_name=form.family_name.data or "", role_ids=roles)
        except NotAllowed as exc:
            db.session.rollback()
            errors, status = [_refused_message(exc)], 403
        except InvalidInput as exc:
            db.session.rollback()
            if exc.message == "already_member":
                errors, status = [_("Cette personne est déjà rattachée à la structure.")], 409
            else:
                form.given_name.errors = [_("Aucun compte n'a cette adresse : saisissez le prénom et le nom de la "
                                            "personne pour l'inviter.")]
                status = 422
        else:
            user = membership.user
            if token:
                _send_invitation(user, token)
                message = _("Aucun compte n'existait pour %(email)s : un compte a été créé et une invitation à "
                            "choisir son mot de passe lui a été envoyée (lien valable %(days)d jours).",
                            email=user.email, days=core.INVITATION_LIFETIME.days)
            else:
                web.send_mail("member_added", user.contact_email or user.email, user=user, structure=auth.structure,
                              link=url_for("account.index", _external=True))
                message = _("%(email)s est rattaché(e) à la structure et en a été informé(e) par e-mail.",
                            email=user.email)
            db.session.commit()
            flash(message, "success")
            return redirect(url_for("manage.member", structure_id=structure_id, membership_id=membership.id))
    elif request.method == "POST":
        status = 422
        if roles is None:
            errors.append(_("Le formulaire est invalide : rechargez la page et recommencez."))
    return render_template("manage/attach.html", structure=auth.structure, form=form, errors=errors,
                           roles=_role_choices(auth, roles or set())), status


@bp.get("/<uuid:structure_id>/invitations")
@web.login_required
def invitations(structure_id: uuid.UUID) -> str:
    """Members who have not set their password yet, with resend and regenerate."""
    auth = _auth()
    return render_template("manage/invitations.html", structure=auth.structure,
                           invitations=core.pending_invitations(db.session, auth.structure.id),
                           form=ConfirmForm(formdata=None))


@bp.post("/<uuid:structure_id>/invitations/<int:membership_id>")
@web.login_required
def invitation_resend(structure_id: uuid.UUID, membership_id: int) -> Any:
    """Resend the invitation (same expiry) or regenerate it (`regenerate=1`: 7 new days)."""
    membership = _membership(membership_id)
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    regenerate = request.form.get("regenerate") == "1"
    try:
        token = core.reissue_invitation(db.session, _auth(), membership, web.origin(), regenerate=regenerate)
    except InvalidInput:
        db.session.rollback()
        flash(_("%(email)s a déjà choisi son mot de passe : il n'y a plus d'invitation à envoyer.",
                email=membership.user.email), "error")
        return redirect(url_for("manage.invitations", structure_id=structure_id))
    _send_invitation(membership.user, token)
    db.session.commit()
    flash(_("Une nouvelle invitation a été envoyée à %(email)s ; le lien précédent ne fonctionne plus.",
            email=membership.user.email), "success")
    return redirect(url_for("manage.invitations", structure_id=structure_id))


@bp.route("/invitation/<token>", methods=["GET", "POST"])
@limit_link_guesses
def invitation(token: str) -> Any:
    """The invited person's link: choose a password, and the account is theirs and active."""
    try:
        found = core.find_invitation(db.session, token)
    except NotFound:
        if current_user.is_authenticated and core.invitation_holder(db.session, token) == current_user.id:
            # The same browser following its link again (a double click, the mail opened twice).
            return redirect(url_for("account.index"))
        g.link_refused = True
        return render_template("manage/invitation_invalid.html"), 404
    user = found.user
    form = InvitationPasswordForm()
    portal = current_app.config["PORTAL_NAME"]
    if form.validate_on_submit():
        try:
            core.accept_invitation(db.session, web.hasher(), found, form.password.data or "", web.origin(),
                                   portal_name=portal)
        except InvalidInput as exc:
            db.session.rollback()
            form.password.errors = password_messages(exc.details.get("problems", []), portal)  # type: ignore[arg-type]
            return render_template("manage/invitation.html", form=form, user=user, invitation=found), 422
        except NotFound:
            db.session.rollback()
            if user.state == AccountState.ACTIVE:
                # The same form sent twice: the first one set the password and signed this browser in.
                return redirect(url_for("account.index"))
            return render_template("manage/invitation_invalid.html"), 404
        if not current_user.is_authenticated or current_user.id == user.id:
            web.start_login_session(user, "pwd")
            web.record("login.success", actor=user.id, subject=user.id, amr="pwd", via="invitation")
            db.session.commit()
            flash(_("Votre mot de passe est enregistré : votre compte est actif et vous êtes connecté(e)."), "success")
            return redirect(url_for("account.index"))
        # Someone else is logged in on this browser: don't swap accounts under their feet.
        db.session.commit()
        flash(_("Votre mot de passe est enregistré : connectez-vous avec %(email)s.", email=user.email), "success")
        return redirect(url_for("auth.login"))
    status = 422 if form.errors else 200
    return render_template("manage/invitation.html", form=form, user=user, invitation=found), status


# ------------------------------------------------------------------ audit trail

def _journal_filters(auth: Authority) -> tuple[dict[str, str], Any]:
    args = {k: request.args.get(k, "").strip()[:254] for k in ("event", "email")}
    person = None
    if args["email"]:
        found = find_user(db.session, args["email"])
        # An unknown address simply matches nothing: this page never tells whether an account exists.
        person = found.id if found is not None else uuid.uuid4()
    return args, events_query(structure_id=auth.structure.id, event=args["event"] or None, person=person)


@bp.get("/<uuid:structure_id>/journal")
@web.login_required
def journal(structure_id: uuid.UUID) -> str:
    """The structure's audit trail, filtered by event prefix and person."""
    auth = _auth()
    args, query = _journal_filters(auth)
    page = paginate(db.session, query, page_number(request.args.get("page")), per_page=50)
    ids = {e.actor_id for e in page.items} | {e.subject_id for e in page.items}
    ids.discard(None)
    emails = dict(db.session.execute(select(User.id, User.email).where(User.id.in_(ids))).all()) if ids else {}
    csv_url = url_for("manage.journal_csv", structure_id=auth.structure.id, **{k: v for k, v in args.items() if v})
    return render_template("manage/journal.html", structure=auth.structure, page=page, args=args, emails=emails,
                           csv_url=csv_url)


@bp.get("/<uuid:structure_id>/journal.csv")
@web.login_required
def journal_csv(structure_id: uuid.UUID) -> Response:
    """The filtered audit trail as CSV (newest first, at most CSV_MAX_ROWS rows)."""
    auth = _auth()
    args, query = _journal_filters(auth)
    body = "\ufeff" + events_csv(db.session, db.session.scalars(query.limit(CSV_MAX_ROWS)))
    web.record("audit.exported", actor=auth.actor.id, structure=auth.structure.id,
               filters={k: v for k, v in args.items() if v})
    db.session.commit()
    return Response(body, mimetype="text/csv", headers={
        "Cache-Control": "no-store",
        "Content-Disposition": f"attachment; filename=journal-{auth.structure.siret}-{date.today():%Y%m%d}.csv"})

