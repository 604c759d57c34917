"""Views of the platform console: structures, entitlements, profiles, applications, users, keys, audit."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from wtforms.fields.choices import SelectChoice

from idp import web
from idp.admin.forms import (
    AcceptForm,
    ApplicationForm,
    ClientForm,
    ClientUrisForm,
    ConfirmForm,
    DeclineForm,
    EntitlementsForm,
    ProfileForm,
    RoleForm,
    StructureForm,
    lines,
)
from idp.core import platform
from idp.core.audit import events_csv, events_query
from idp.core.errors import Conflict, InvalidInput, NotAllowed, NotFound
from idp.core.memberships import accept_request, authority, decline_request, moderation_queue
from idp.core.structures import StructureData, create_structure, get_structure
from idp.extensions import db
from idp.models import AccountState, JoinRequest, StructureKind, User
from idp.oidc.keys import rotate_signing_keys
from shared.bounds import FIRST_DAY, LAST_DAY, DayOutOfRange, parse_day
from shared.paging import page_number, paginate

bp = Blueprint("admin", __name__, url_prefix="/admin")

T = TypeVar("T")
CSV_MAX_ROWS = 50_000


@bp.before_request
def _admins_only() -> None:
    """Every console URL is for platform admins only, whatever the view (defence in depth)."""
    if current_user.is_authenticated and not current_user.is_admin:
        abort(403)


def _me() -> User:
    """The signed-in platform admin, as the model instance the core takes (platform_admin_required)."""
    return current_user._get_current_object()  # type: ignore[no-any-return]


def _or_404(load: Callable[[], T]) -> T:
    try:
        return load()
    except NotFound:
        abort(404)


def _kind(value: str | None) -> StructureKind | None:
    try:
        return StructureKind(value) if value else None
    except ValueError:
        return None


# ------------------------------------------------------------------ dashboard

@bp.get("/")
@web.platform_admin_required
def index() -> str:
    """The console's home: counts and links."""
    return render_template("admin/index.html", counts=platform.dashboard_counts(db.session), states=AccountState)


# ------------------------------------------------------------------ structures

@bp.get("/structures")
@web.platform_admin_required
def structures() -> str:
    """Every structure, searched by name, SIRET or city."""
    q = request.args.get("q", "")[:200]
    page = paginate(db.session, platform.structures_query(q), page_number(request.args.get("page")))
    return render_template("admin/structures.html", page=page, q=q)


@bp.route("/structures/new", methods=["GET", "POST"])
@web.platform_admin_required
def structure_new() -> Any:
    """Create a structure (SIRET checked); it gets the default entitlements of its kind."""
    form = StructureForm()
    if form.validate_on_submit():
        data = StructureData(
            siret=form.siret.data or "", name=form.name.data or "", kind=StructureKind(form.kind.data),
            city=form.city.data or "", postal_code=form.postal_code.data or "", code=(form.code.data or "").strip() or None,
            admin_email=form.admin_email.data or None, searchable=bool(form.searchable.data))
        try:
            structure = create_structure(db.session, data, web.origin(), actor=_me().id)
            platform.apply_admin_email(db.session, structure, web.origin())
        except InvalidInput as exc:
            db.session.rollback()
            form.siret.errors = [exc.message]
            return render_template("admin/structure_form.html", form=form, structure=None), 422
        db.session.commit()
        flash(_("La structure %(name)s a été créée.", name=structure.name), "success")
        return redirect(url_for("admin.structure_edit", structure_id=structure.id))
    return render_template("admin/structure_form.html", form=form, structure=None), 422 if form.errors else 200


@bp.route("/structures/<uuid:structure_id>", methods=["GET", "POST"])
@web.platform_admin_required
def structure_edit(structure_id: uuid.UUID) -> Any:
    """Edit a structure's identity; a stale form (someone saved meanwhile) gets 409 and keeps the input."""
    structure = _or_404(lambda: get_structure(db.session, structure_id))
    if request.method == "GET":
        form = StructureForm(obj=structure, kind=structure.kind.value,
                             siege_siret=structure.parent.siret if structure.parent else "")
    else:
        form = StructureForm()
        form.siret.data = structure.siret  # the SIRET identifies the structure: not editable here
    if form.validate_on_submit():
        data = platform.StructureEdit(
            name=form.name.data or "", kind=StructureKind(form.kind.data), city=form.city.data or "",
            postal_code=form.postal_code.data or "", code=form.code.data, admin_email=form.admin_email.data,
            searchable=bool(form.searchable.data), siege_siret=(form.siege_siret.data or "").strip() or None)
        try:
            platform.edit_structure(db.session, structure, data, web.origin(), actor=_me().id,
                                    expected_version=form.version.data or 0)
        except InvalidInput as exc:
            db.session.rollback()
            form.siege_siret.errors = [exc.message]
            return render_template("admin/structure_form.html", form=form, structure=structure), 422
        except Conflict:
            db.session.rollback()
            form.form_errors.append(_("Cette structure a été modifiée entre-temps par quelqu'un d'autre. Vos "
                                      "saisies sont conservées ci-dessous : rechargez la page pour voir la "
                                      "version actuelle, puis recommencez."))
            return render_template("admin/structure_form.html", form=form, structure=structure), 409
        db.session.commit()
        flash(_("La structure a été enregistrée."), "success")
        return redirect(url_for("admin.structure_edit", structure_id=structure.id))
    status = 422 if form.errors else 200
    return render_template("admin/structure_form.html", form=form, structure=structure), status


@bp.get("/structures/<uuid:structure_id>/members")
@web.platform_admin_required
def structure_members(structure_id: uuid.UUID) -> str:
    """A structure's members (read only: the structure's own console manages them)."""
    structure = _or_404(lambda: get_structure(db.session, structure_id))
    page = paginate(db.session, platform.members_query(structure.id), page_number(request.args.get("page")))
    return render_template("admin/structure_members.html", structure=structure, page=page)


@bp.route("/structures/<uuid:structure_id>/entitlements", methods=["GET", "POST"])
@web.platform_admin_required
def structure_entitlements(structure_id: uuid.UUID) -> Any:
    """The roles a structure may hold; removing one also takes it from the members (after confirmation)."""
    structure = _or_404(lambda: get_structure(db.session, structure_id))
    roles = platform.all_roles(db.session)
    current = platform.entitled_ids(db.session, structure.id)
    form = EntitlementsForm(data={"roles": sorted(current)} if request.method == "GET" else None)
    form.roles.choices = [SelectChoice(r.id, r.label) for r in roles]
    if form.validate_on_submit():
        wanted = set(form.roles.data or [])
        if wanted - {r.id for r in roles}:
            form.form_errors.append(_("Rôle inconnu."))
            return render_template("admin/entitlements.html", form=form, structure=structure, roles=roles,
                                   current=current), 422
        removed = current - wanted
        if removed and form.confirmed.data != "1":
            grants = platform.grants_of_roles(db.session, structure.id, removed)
            return render_template("admin/entitlements_confirm.html", form=form, structure=structure,
                                   removed=[r for r in roles if r.id in removed], wanted=sorted(wanted),
                                   grants=grants)
        try:
            added, removed, taken = platform.set_entitlements(db.session, structure, wanted, web.origin(),
                                                              actor=_me().id)
        except InvalidInput as exc:
            db.session.rollback()
            form.form_errors.append(exc.message)
            return render_template("admin/entitlements.html", form=form, structure=structure, roles=roles,
                                   current=current), 422
        db.session.commit()
        flash(_("Accès aux applications enregistrés : %(added)d ajouté(s), %(removed)d retiré(s), "
                "%(taken)d droit(s) de membres retiré(s).", added=len(added), removed=len(removed), taken=taken),
              "success")
        return redirect(url_for("admin.structure_entitlements", structure_id=structure.id))
    return render_template("admin/entitlements.html", form=form, structure=structure, roles=roles, current=current)


# ------------------------------------------------------------------ applications, roles, profiles

@bp.get("/applications")
@web.platform_admin_required
def applications() -> str:
    """The applications and their roles."""
    return render_template("admin/applications.html", applications=platform.applications(db.session))


@bp.route("/applications/<name>", methods=["GET", "POST"])
@web.platform_admin_required
def application_edit(name: str) -> Any:
    """Edit an application's labels and its roles' labels."""
    app = _or_404(lambda: platform.get_application(db.session, name))
    form = ApplicationForm(obj=app)
    role_form = RoleForm(prefix="role")
    labels = {role.id: request.form.get(f"role_label_{role.id}", role.label)[:120] for role in app.roles}
    if form.validate_on_submit():
        try:
            platform.update_application(db.session, app, web.origin(), actor=_me().id, label=form.label.data or "",
                                        url=form.url.data, description=form.description.data or "",
                                        role_labels=labels)
        except InvalidInput as exc:
            db.session.rollback()
            form.form_errors.append(exc.message)
            return render_template("admin/application.html", app=app, form=form, role_form=role_form,
                                   labels=labels), 422
        db.session.commit()
        flash(_("L'application %(name)s a été enregistrée.", name=app.name), "success")
        return redirect(url_for("admin.applications"))
    status = 422 if form.errors else 200
    return render_template("admin/application.html", app=app, form=form, role_form=role_form, labels=labels), status


@bp.post("/applications/<name>/roles")
@web.platform_admin_required
def role_add(name: str) -> Any:
    """Add a role to an application's catalogue."""
    app = _or_404(lambda: platform.get_application(db.session, name))
    form = ApplicationForm(obj=app, formdata=None)
    role_form = RoleForm(prefix="role")
    labels = {role.id: role.label for role in app.roles}
    if role_form.validate_on_submit():
        try:
            role = platform.add_role(db.session, app, web.origin(), actor=_me().id, name=role_form.name.data or "",
                                     label=role_form.label.data or "", region_only=bool(role_form.region_only.data))
        except InvalidInput as exc:
            db.session.rollback()
            role_form.name.errors = [exc.message]
        else:
            db.session.commit()
            flash(_("Le rôle %(key)s a été ajouté. Aucune structure n'y a accès pour l'instant : "
                    "cochez-le dans l'accès aux applications des structures concernées.", key=role.key), "success")
            return redirect(url_for("admin.application_edit", name=app.name))
    return render_template("admin/application.html", app=app, form=form, role_form=role_form, labels=labels), 422


@bp.get("/profiles")
@web.platform_admin_required
def profiles() -> str:
    """Profiles (bundles of roles), by kind of structure."""
    kind = _kind(request.args.get("kind"))
    page = paginate(db.session, platform.profiles_query(kind), page_number(request.args.get("page")), per_page=50)
    return render_template("admin/profiles.html", page=page, kind=kind, kinds=StructureKind)


@bp.route("/profiles/new", methods=["GET", "POST"])
@bp.route("/profiles/<int:profile_id>", methods=["GET", "POST"])
@web.platform_admin_required
def profile_edit(profile_id: int | None = None) -> Any:
    """Create or edit a profile: name, kind, description, roles."""
    profile = _or_404(lambda: platform.get_profile(db.session, profile_id)) if profile_id is not None else None
    roles = platform.all_roles(db.session)
    if profile is not None and request.method == "GET":
        form = ProfileForm(obj=profile, kind=profile.kind.value, data={"roles": [r.id for r in profile.roles]})
    else:
        form = ProfileForm(kind=request.args.get("kind") if _kind(request.args.get("kind")) else None)
    form.roles.choices = [SelectChoice(r.id, r.label) for r in roles]
    if form.validate_on_submit():
        try:
            saved = platform.save_profile(db.session, profile, web.origin(), actor=_me().id, name=form.name.data or "",
                                          kind=StructureKind(form.kind.data), description=form.description.data or "",
                                          role_ids=form.roles.data or [])
        except InvalidInput as exc:
            db.session.rollback()
            form.form_errors.append(exc.message)
            return render_template("admin/profile_form.html", form=form, profile=profile, roles=roles), 422
        db.session.commit()
        flash(_("Le profil %(name)s a été enregistré.", name=saved.name), "success")
        return redirect(url_for("admin.profiles", kind=saved.kind.value))
    status = 422 if form.errors else 200
    return render_template("admin/profile_form.html", form=form, profile=profile, roles=roles), status


# ------------------------------------------------------------------ OIDC clients

@bp.get("/clients")
@web.platform_admin_required
def clients() -> str:
    """The OpenID Connect clients (relying parties and service accounts), searched by name, id or application."""
    q = request.args.get("q", "")[:200]
    page = paginate(db.session, platform.clients_query(q), page_number(request.args.get("page")))
    return render_template("admin/clients.html", page=page, q=q)


def _app_choices() -> list[SelectChoice]:
    return [SelectChoice("", _("Aucune"))] + [SelectChoice(a.name, f"{a.name} — {a.label}")
                                              for a in platform.applications(db.session)]


@bp.route("/clients/new", methods=["GET", "POST"])
@web.platform_admin_required
def client_new() -> Any:
    """Register a client; its secret is shown once, on the answer page."""
    from idp.oidc.clients import ClientSpec, create_client

    form = ClientForm()
    form.app.choices = _app_choices()
    if form.validate_on_submit():
        try:
            if form.app.data and form.app.data not in {c.value for c in form.app.choices}:
                raise InvalidInput(_("Application inconnue."))
            spec = ClientSpec(
                name=(form.name.data or "").strip(), app=form.app.data or None,
                redirect_uris=platform.check_uris(lines(form.redirect_uris.data)),
                post_logout_redirect_uris=platform.check_uris(lines(form.post_logout_redirect_uris.data)),
                backchannel_logout_uri=(platform.check_uris([form.backchannel_logout_uri.data or ""]) or [None])[0],
                public=bool(form.public.data), trusted=bool(form.trusted.data),
                grant_types=list(form.grant_types.data or []), scope=platform.check_scope(form.scope.data or ""))
            client, secret = create_client(db.session, spec, web.origin())
        except (InvalidInput, ValueError) as exc:
            db.session.rollback()
            form.form_errors.append(exc.message if isinstance(exc, InvalidInput) else str(exc))
            return render_template("admin/client_form.html", form=form), 422
        web.record("client.registered", actor=_me().id, client_id=client.client_id)
        db.session.commit()
        return render_template("admin/client_secret.html", client=client, secret=secret, created=True)
    return render_template("admin/client_form.html", form=form), 422 if form.errors else 200


@bp.route("/clients/<int:client_pk>", methods=["GET", "POST"])
@web.platform_admin_required
def client_edit(client_pk: int) -> Any:
    """A client's details; edit its redirect, post-logout and back-channel URIs."""
    client = _or_404(lambda: platform.get_client(db.session, client_pk))
    if request.method == "GET":
        form = ClientUrisForm(redirect_uris="\n".join(client.redirect_uris),
                              post_logout_redirect_uris="\n".join(client.post_logout_redirect_uris),
                              backchannel_logout_uri=client.backchannel_logout_uri or "")
    else:
        form = ClientUrisForm()
    if form.validate_on_submit():
        try:
            platform.update_client_uris(db.session, client, web.origin(), actor=_me().id,
                                        redirect_uris=lines(form.redirect_uris.data),
                                        post_logout_redirect_uris=lines(form.post_logout_redirect_uris.data),
                                        backchannel_logout_uri=form.backchannel_logout_uri.data)
        except InvalidInput as exc:
            db.session.rollback()
            form.form_errors.append(exc.message)
            return render_template("admin/client.html", client=client, form=form, confirm=ConfirmForm()), 422
        db.session.commit()
        flash(_("Les adresses du client ont été enregistrées."), "success")
        return redirect(url_for("admin.client_edit", client_pk=client.id))
    status = 422 if form.errors else 200
    return render_template("admin/client.html", client=client, form=form, confirm=ConfirmForm()), status


@bp.route("/clients/<int:client_pk>/secret", methods=["GET", "POST"])
@web.platform_admin_required
def client_secret(client_pk: int) -> Any:
    """Regenerate a client's secret after confirmation; the old one stops working at once."""
    client = _or_404(lambda: platform.get_client(db.session, client_pk))
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            secret = platform.regenerate_secret(db.session, client, web.origin(), actor=_me().id)
        except InvalidInput as exc:
            db.session.rollback()
            flash(exc.message, "error")
            return render_template("admin/client.html", client=client, form=_uris_form(client), confirm=form), 409
        db.session.commit()
        return render_template("admin/client_secret.html", client=client, secret=secret, created=False)
    return render_template(
        "admin/confirm.html", form=form, title=_("Régénérer le secret de %(name)s", name=client.name),
        message=_("Le secret actuel cessera de fonctionner immédiatement : l'application devra être "
                  "reconfigurée avec le nouveau secret, qui ne sera affiché qu'une fois."),
        action=url_for("admin.client_secret", client_pk=client.id), button=_("Régénérer le secret"),
        subject=client.client_id, danger=True, cancel=url_for("admin.client_edit", client_pk=client.id)), 422 if form.errors else 200


def _uris_form(client: Any) -> ClientUrisForm:
    return ClientUrisForm(formdata=None, redirect_uris="\n".join(client.redirect_uris),
                          post_logout_redirect_uris="\n".join(client.post_logout_redirect_uris),
                          backchannel_logout_uri=client.backchannel_logout_uri or "")


# ------------------------------------------------------------------ users

@bp.get("/users")
@web.platform_admin_required
def users() -> str:
    """Accounts searched by name or e-mail, filtered by state."""
    q = request.args.get("q", "")[:200]
    try:
        state = AccountState(request.args["state"]) if request.args.get("state") else None
    except ValueError:
        state = None
    page = paginate(db.session, platform.users_query(q, state), page_number(request.args.get("page")))
    return render_template("admin/users.html", page=page, q=q, state=state, states=AccountState)


@bp.get("/users/<uuid:user_id>")
@web.platform_admin_required
def user(user_id: uuid.UUID) -> str:
    """One account: state, last login, memberships, and the actions it allows."""
    account = _or_404(lambda: platform.get_user(db.session, user_id))
    return render_template("admin/user.html", account=account, me=_me(),
                           memberships=platform.user_memberships(db.session, account.id))


USER_ACTIONS: dict[str, tuple[str, str, str]] = {
    # action: (title, explanation, button)
    "block": ("Bloquer le compte", "La personne ne pourra plus se connecter et ses sessions sont fermées. "
              "Elle pourra le débloquer en choisissant un nouveau mot de passe.", "Bloquer"),
    "unblock": ("Débloquer le compte", "La personne pourra de nouveau se connecter.", "Débloquer"),
    "deactivate": ("Mettre le compte en sommeil", "La personne ne pourra plus se connecter ; ses données "
                   "sont conservées et le compte pourra être réactivé.", "Mettre en sommeil"),
    "reactivate": ("Réactiver le compte", "Le compte redevient utilisable.", "Réactiver"),
    "delete": ("Supprimer le compte", "Les données personnelles (nom, adresses e-mail, mot de passe, double "
               "authentification) sont effacées définitivement, la personne est retirée de toutes ses "
               "structures et perd tous ses droits. Le journal d'audit est conservé sous forme anonymisée. "
               "Cette action est irréversible.", "Supprimer définitivement"),
    "make_admin": ("Nommer administrateur de la plateforme", "Cette personne pourra gérer toutes les structures, "
                   "les applications, les comptes et les clés de signature.", "Nommer administrateur"),
    "unmake_admin": ("Retirer le rôle d'administrateur de la plateforme",
                     "Cette personne n'aura plus accès à la console d'administration.", "Retirer le rôle"),
}

REFUSALS = {
    "self": "Vous ne pouvez pas appliquer cette action à votre propre compte.",
    "last_admin": "C'est le dernier administrateur actif de la plateforme : nommez-en un autre d'abord.",
    "not_active": "Seul un compte actif peut être bloqué ou nommé administrateur.",
    "not_blocked": "Ce compte n'est pas bloqué.",
    "not_deactivatable": "Ce compte est déjà en sommeil ou supprimé.",
    "not_deactivated": "Ce compte n'est pas en sommeil.",
    "already_deleted": "Ce compte est déjà supprimé.",
}

DONE = {
    "block": "Le compte a été bloqué.", "unblock": "Le compte a été débloqué.",
    "deactivate": "Le compte a été mis en sommeil.", "reactivate": "Le compte a été réactivé.",
    "delete": "Le compte a été supprimé et ses données personnelles effacées.",
    "make_admin": "Le compte est désormais administrateur de la plateforme.",
    "unmake_admin": "Le compte n'est plus administrateur de la plateforme.",
}


@bp.route("/users/<uuid:user_id>/<action>", methods=["GET", "POST"])
@web.platform_admin_required
def user_action(user_id: uuid.UUID, action: str) -> Any:
    """Confirm, then block, unblock, deactivate, reactivate, delete, or (un)make platform admin."""
    if action not in USER_ACTIONS:
        abort(404)
    account = _or_404(lambda: platform.get_user(db.session, user_id))
    me = _me()
    form = ConfirmForm()
    title, message, button = USER_ACTIONS[action]
    if form.validate_on_submit():
        try:
            if action in ("make_admin", "unmake_admin"):
                platform.set_platform_admin(db.session, account, action == "make_admin", me, web.origin())
            else:
                platform.change_account_state(db.session, account, action, me, web.origin())
        except (Conflict, NotAllowed, InvalidInput) as exc:
            db.session.rollback()
            if exc.details.get("structures"):  # the last active admin of structures (SPEC §4.3)
                flash(_("Ce compte est le dernier administrateur actif de : %(names)s. Nommez d'abord un autre "
                        "administrateur dans chacune de ces structures.",
                        names=", ".join(exc.details["structures"])), "error")  # type: ignore[call-overload]
            else:
                flash(_(REFUSALS.get(exc.message, "Action impossible pour ce compte.")), "error")
            status = 403 if isinstance(exc, NotAllowed) else 409
            return render_template("admin/user.html", account=account, me=me,
                                   memberships=platform.user_memberships(db.session, account.id)), status
        db.session.commit()
        flash(_(DONE[action]), "success")
        return redirect(url_for("admin.user", user_id=account.id))
    return render_template(
        "admin/confirm.html", form=form, title=_(title), subject=account.email, message=_(message),
        action=url_for("admin.user_action", user_id=account.id, action=action), button=_(button),
        danger=action in ("block", "deactivate", "delete", "unmake_admin"),
        cancel=url_for("admin.user", user_id=account.id)), 422 if form.errors else 200


# ------------------------------------------------------------------ signing keys

@bp.get("/keys")
@web.platform_admin_required
def keys() -> str:
    """The signing keys: published, signing, retired."""
    keys = platform.signing_keys(db.session)
    return render_template("admin/keys.html", keys=keys, status=platform.key_status, form=ConfirmForm(),
                           delay=current_app.config["KEY_PUBLISH_BEFORE_USE"])


@bp.post("/keys/rotate")
@web.platform_admin_required
def keys_rotate() -> Any:
    """Publish new keys now; they sign after the publication delay, the old ones retire then."""
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    created = rotate_signing_keys(db.session, current_app.config, web.origin(), actor=_me().id)
    db.session.commit()
    # This worker publishes them at once; the others within KEY_CACHE_SECONDS.
    current_app.extensions["token_issuer"].keyring.refresh(db.session, force=True)
    flash(_("Nouvelles clés publiées : %(kids)s.", kids=", ".join(k.kid for k in created)), "success")
    return redirect(url_for("admin.keys"))


# ------------------------------------------------------------------ audit

def _day(value: str, notes: list[str]) -> date | None:
    """A filter's day (AAAA-MM-JJ), or None with a French note saying why it was not taken."""
    if not value:
        return None
    try:
        return parse_day(value)
    except DayOutOfRange:  # 9999-12-31 would overflow once a day is added to it (issue 15)
        notes.append(_("Date hors limites : %(value)s (entre le %(first)s et le %(last)s).", value=value,
                       first=FIRST_DAY.strftime("%d/%m/%Y"), last=LAST_DAY.strftime("%d/%m/%Y")))
    except ValueError:
        notes.append(_("Date invalide : %(value)s (format attendu : AAAA-MM-JJ).", value=value))
    return None


def _audit_filters() -> tuple[dict[str, str], Any, list[str]]:
    """The audit filters from the query string, the query, and French notes on what was ignored."""
    args = {k: request.args.get(k, "").strip()[:254] for k in ("event", "email", "siret", "since", "until")}
    notes: list[str] = []
    person = structure = None
    if args["email"]:
        person = platform.person_id(db.session, args["email"])
        if person is None:
            notes.append(_("Aucun compte n'a l'adresse %(email)s.", email=args["email"]))
    if args["siret"]:
        structure = platform.structure_id_by_siret(db.session, args["siret"])
        if structure is None:
            notes.append(_("Aucune structure n'a le SIRET %(siret)s.", siret=args["siret"]))
    since, until = _day(args["since"], notes), _day(args["until"], notes)
    if notes:
        return args, None, notes
    query = events_query(
        event=args["event"] or None, person=person, structure_id=structure,
        since=datetime.combine(since, time.min, UTC) if since else None,
        until=datetime.combine(until + timedelta(days=1), time.min, UTC) if until else None)
    return args, query, notes


@bp.get("/audit")
@web.platform_admin_required
def audit_log() -> Any:
    """The global audit log, filtered by event prefix, person, structure and dates."""
    args, query, notes = _audit_filters()
    page = paginate(db.session, query, page_number(request.args.get("page")), per_page=50) if query is not None else None
    emails: dict[Any, str] = {}
    if page is not None:
        ids = {e.actor_id for e in page.items} | {e.subject_id for e in page.items}
        ids.discard(None)
        if ids:
            emails = dict(db.session.execute(select(User.id, User.email).where(User.id.in_(ids))).all())
    return render_template("admin/audit.html", page=page, args=args, notes=notes, emails=emails), 400 if notes else 200


@bp.get("/audit.csv")
@web.platform_admin_required
def audit_csv() -> Any:
    """The filtered audit log as CSV (at most CSV_MAX_ROWS rows, newest first)."""
    args, query, notes = _audit_filters()
    if query is None:
        return render_template("admin/audit.html", page=None, args=args, notes=notes, emails={}), 400
    events = db.session.scalars(query.limit(CSV_MAX_ROWS))
    body = "\ufeff" + events_csv(db.session, events)  # the BOM makes spreadsheets read UTF-8
    web.record("audit.exported", actor=_me().id, filters={k: v for k, v in args.items() if v})
    db.session.commit()
    return Response(body, mimetype="text/csv", headers={
        "Cache-Control": "no-store",
        "Content-Disposition": f"attachment; filename=journal-{date.today():%Y%m%d}.csv"})


# ------------------------------------------------------------------ moderation

@bp.get("/moderation")
@web.platform_admin_required
def moderation() -> str:
    """Join requests of structures without an admin."""
    return render_template("admin/moderation.html", requests=moderation_queue(db.session))


def _queued(request_id: int) -> JoinRequest:
    join = db.session.get(JoinRequest, request_id)
    if join is None or join not in moderation_queue(db.session):
        abort(404)
    return join


def _notify(join: JoinRequest, accepted: bool) -> None:
    """Tell the requester the platform's decision (SPEC §4.2: an e-mail either way)."""
    web.send_mail("admin_join_decided", join.user.contact_email or join.user.email, user=join.user,
                  structure=join.structure, accepted=accepted, reason=join.reason,
                  link=url_for("account.index", _external=True))


@bp.route("/moderation/<int:request_id>", methods=["GET", "POST"])
@web.platform_admin_required
def moderation_accept(request_id: int) -> Any:
    """Accept a request, choosing the grants among the structure's entitled roles."""
    join = _queued(request_id)
    auth = authority(db.session, _me(), join.structure)
    entitled = [r for r in platform.all_roles(db.session) if r.id in auth.entitled]
    suggested = [r.id for r in join.profile.roles if r.id in auth.entitled] if join.profile else []
    form = AcceptForm(data={"roles": suggested} if request.method == "GET" else None)
    form.roles.choices = [SelectChoice(r.id, r.label) for r in entitled]
    if form.validate_on_submit():
        try:
            accept_request(db.session, auth, join, form.roles.data or [], web.origin())
        except (InvalidInput, NotAllowed, NotFound) as exc:
            db.session.rollback()
            form.form_errors.append(_("La demande n'est plus en attente.") if exc.message == "not_pending" else
                                    _("Un des rôles choisis n'est pas ouvert à cette structure."))
            return render_template("admin/moderation_request.html", join=join, form=form,
                                   decline=DeclineForm(formdata=None), entitled=entitled), 409
        _notify(join, accepted=True)
        db.session.commit()
        flash(_("La demande de %(email)s a été acceptée.", email=join.user.email), "success")
        return redirect(url_for("admin.moderation"))
    return render_template("admin/moderation_request.html", join=join, form=form, decline=DeclineForm(formdata=None),
                           entitled=entitled), 422 if form.errors else 200


@bp.post("/moderation/<int:request_id>/decline")
@web.platform_admin_required
def moderation_decline(request_id: int) -> Any:
    """Decline a request, with an optional reason sent to the requester."""
    join = _queued(request_id)
    auth = authority(db.session, _me(), join.structure)
    form = DeclineForm()
    if not form.validate_on_submit():
        entitled = [r for r in platform.all_roles(db.session) if r.id in auth.entitled]
        accept = AcceptForm(formdata=None)
        accept.roles.choices = [SelectChoice(r.id, r.label) for r in entitled]
        return render_template("admin/moderation_request.html", join=join, form=accept, decline=form,
                               entitled=entitled), 422
    try:
        decline_request(db.session, auth, join, web.origin(), form.reason.data or "")
    except (InvalidInput, NotFound):
        db.session.rollback()
        abort(409)
    _notify(join, accepted=False)
    db.session.commit()
    flash(_("La demande de %(email)s a été refusée.", email=join.user.email), "success")
    return redirect(url_for("admin.moderation"))


