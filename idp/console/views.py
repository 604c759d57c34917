"""The console an operator expects (issue 16; Keycloak's and Zitadel's are the reference): a small
dashboard with charts, the settings and their source, the mail outbox, and for clients and
accounts the actions the console lacked. Platform admins only; every action is a POST with its
CSRF token, audited."""

from __future__ import annotations

import os
import uuid
from typing import Any

from flask import (
    Blueprint,
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
from werkzeug.wrappers import Response

from idp import web
from idp.admin.forms import ConfirmForm
from idp.console.forms import AccountForm, EditAccountForm, LifetimeForm, ScopeForm
from idp.core import console as core
from idp.core.accounts import get_user
from idp.core.errors import Conflict, InvalidInput
from idp.extensions import db
from idp.models import AccountState, Civility, Client, OutboxMail, User
from idp.oidc.keys import extend_retired_keys

bp = Blueprint("console", __name__, url_prefix="/admin")

CHART_DAYS = 14


def _me() -> User:
    return current_user._get_current_object()  # type: ignore[no-any-return]  # behind login_required


def _client(client_pk: int) -> Client:
    client = db.session.get(Client, client_pk)
    if client is None:
        abort(404)
    return client


def _account(user_id: uuid.UUID) -> User:
    user = get_user(db.session, user_id)
    if user is None or user.state == AccountState.DELETED:
        abort(404)
    return user


def _expired() -> Response:
    flash(_("La page a expiré : veuillez recommencer."), "error")
    return redirect(request.referrer or url_for("admin.index"), 303)


# ------------------------------------------------------------------ dashboard and settings

@bp.get("/tableau-de-bord")
@web.platform_admin_required
def dashboard() -> str:
    """Logins and failed logins per day, pending join requests by age, mail failures: as SVG."""
    charts = [
        core.Series(_("Connexions réussies par jour"), *core.per_day(db.session, "login.success", CHART_DAYS)),
        core.Series(_("Échecs de connexion par jour"), *core.per_day(db.session, "login.failure", CHART_DAYS)),
        core.Series(_("Demandes de rattachement en attente, par ancienneté"), *core.pending_requests_by_age(db.session)),
        core.Series(_("Courriels en échec par jour"), *core.mail_failures_per_day(db.session, CHART_DAYS)),
    ]
    return render_template("console/dashboard.html", charts=charts, mail=core.outbox_counts(db.session))


@bp.get("/reglages")
@web.platform_admin_required
def settings() -> str:
    """The platform's settings in one page, each with its source (default or environment)."""
    from idp import config as default_config

    return render_template("console/settings.html", rows=core.settings(current_app.config, os.environ, default_config),
                           own_lifetimes=core.clients_with_own_lifetimes(db.session), defaults=_platform_lifetimes())


# ------------------------------------------------------------------ mail outbox

@bp.get("/courriels")
@web.platform_admin_required
def outbox() -> str:
    """What the outbox holds: queued, being sent, sent, failed; with attempts and the last error."""
    status = request.args.get("etat", "")
    return render_template("console/outbox.html", mails=core.outbox(db.session, status or None), status=status,
                           counts=core.outbox_counts(db.session), form=ConfirmForm())


@bp.post("/courriels/<int:mail_id>/renvoyer")
@web.platform_admin_required
def resend(mail_id: int) -> Response:
    """Send a mail again (a failed one is queued anew; a sent one, as a copy)."""
    if not ConfirmForm().validate_on_submit():
        return _expired()
    mail = db.session.get(OutboxMail, mail_id)
    if mail is None:
        abort(404)
    try:
        core.resend(db.session, mail, web.origin(), actor=_me().id)
    except InvalidInput:
        db.session.rollback()
        flash(_("Ce courriel est en cours d'envoi : réessayez dans un instant."), "error")
        return redirect(url_for("console.outbox"), 303)
    db.session.commit()
    g.mail_enqueued = True  # embedded mode: delivered after this request, as any queued mail
    flash(_("Le courriel à %(to)s est de nouveau en file d'envoi.", to=mail.recipient), "success")
    return redirect(url_for("console.outbox"), 303)


# ------------------------------------------------------------------ clients

def _client_page(found: Client, form: ScopeForm | None = None, lifetimes: LifetimeForm | None = None,
                 status: int = 200) -> tuple[str, int]:
    return render_template(
        "console/client.html", client=found, form=form or ScopeForm(scope=found.scope),
        lifetimes=lifetimes or LifetimeForm(**{name: getattr(found, name) for name in core.LIFETIME_BOUNDS}),
        defaults=_platform_lifetimes(), confirm=ConfirmForm(), consents=core.consents_of(db.session, found)), status


def _platform_lifetimes() -> dict[str, int]:
    config = current_app.config
    return {"access_token_lifetime": config["ACCESS_TOKEN_LIFETIME"], "id_token_lifetime": config["ID_TOKEN_LIFETIME"],
            "refresh_token_lifetime": config["REFRESH_TOKEN_LIFETIME"]}


@bp.route("/clients/<int:client_pk>/console", methods=["GET", "POST"])
@web.platform_admin_required
def client(client_pk: int) -> Any:
    """A client's state, allowed scopes, token lifetimes and the consents given to it."""
    found = _client(client_pk)
    if request.method == "GET":
        return _client_page(found)
    form = ScopeForm()
    if not form.validate_on_submit():
        return _client_page(found, form=form, status=422)
    try:
        core.set_client_scope(db.session, found, form.scope.data or "", web.origin(), actor=_me().id)
    except InvalidInput as exc:
        db.session.rollback()
        form.scope.errors = [_("Portée invalide : « %(value)s » (lettres, chiffres, « : », « _ », « . », « - »).",
                               value=exc.details.get("value", ""))]
        return _client_page(found, form=form, status=422)
    db.session.commit()
    flash(_("Les portées du client ont été enregistrées."), "success")
    return redirect(url_for("console.client", client_pk=found.id), 303)


@bp.post("/clients/<int:client_pk>/durees")
@web.platform_admin_required
def client_lifetimes(client_pk: int) -> Any:
    """A client's own token lifetimes (empty: the platform's), for the tokens issued from now on."""
    found = _client(client_pk)
    form = LifetimeForm()
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            return _expired()
        return _client_page(found, lifetimes=form, status=422)
    values = {name: getattr(form, name).data for name in core.LIFETIME_BOUNDS}
    try:
        changed = core.set_client_lifetimes(db.session, found, values, web.origin(), actor=_me().id)
        if changed:  # a longer lifetime keeps the keys due to retire published for as long
            extend_retired_keys(db.session, current_app.config)
    except InvalidInput as exc:
        db.session.rollback()
        low, high = exc.details["low"], exc.details["high"]
        getattr(form, exc.details["field"]).errors = [
            _("Entre %(low)d et %(high)d secondes (de %(low_words)s à %(high_words)s), ou vide.",
              low=low, high=high, low_words=duration(low), high_words=duration(high))]
        return _client_page(found, lifetimes=form, status=422)
    db.session.commit()
    if changed:
        flash(_("Les durées de vie des jetons du client ont été enregistrées : elles valent pour les jetons "
                "émis désormais."), "success")
    return redirect(url_for("console.client", client_pk=found.id), 303)


@bp.app_template_filter("duration")
def duration(seconds: int | None) -> str:
    """A number of seconds as a person reads it: « 5 min », « 1 h 30 min », « 30 j »."""
    if seconds is None:
        return "—"
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, _("j")), (hours, _("h")), (minutes, _("min")), (secs, _("s"))]
    return " ".join(f"{value}\u00a0{unit}" for value, unit in parts if value) or f"0\u00a0{_('s')}"


@bp.post("/clients/<int:client_pk>/etat")
@web.platform_admin_required
def client_state(client_pk: int) -> Response:
    """Disable a client (it can no longer obtain tokens) or enable it again."""
    found = _client(client_pk)
    if not ConfirmForm().validate_on_submit():
        return _expired()
    active = request.form.get("active") == "1"
    core.set_client_active(db.session, found, active, web.origin(), actor=_me().id)
    db.session.commit()
    flash(_("Le client %(name)s est réactivé.", name=found.name) if active
          else _("Le client %(name)s est désactivé : il ne peut plus obtenir de jetons.", name=found.name), "success")
    return redirect(url_for("console.client", client_pk=found.id), 303)


@bp.route("/clients/<int:client_pk>/supprimer", methods=["GET", "POST"])
@web.platform_admin_required
def client_delete(client_pk: int) -> Any:
    """Delete a client after confirmation (its tokens and consents go with it)."""
    found = _client(client_pk)
    form = ConfirmForm()
    if form.validate_on_submit():
        name = found.name
        core.delete_client(db.session, found, web.origin(), actor=_me().id)
        db.session.commit()
        flash(_("Le client %(name)s a été supprimé.", name=name), "success")
        return redirect(url_for("admin.clients"), 303)
    return render_template("admin/confirm.html", form=form, title=_("Supprimer le client"), subject=found.name,
                           message=_("Le client ne pourra plus se connecter au portail ; ses jetons et les consentements "
                                     "donnés sont supprimés. Le journal d'audit est conservé."),
                           action=url_for("console.client_delete", client_pk=found.id), button=_("Supprimer"),
                           danger=True, cancel=url_for("console.client", client_pk=found.id))


@bp.post("/clients/<int:client_pk>/consentements/<int:consent_id>/retirer")
@web.platform_admin_required
def consent_revoke(client_pk: int, consent_id: int) -> Response:
    """Withdraw one person's consent to this client."""
    found = _client(client_pk)
    if not ConfirmForm().validate_on_submit():
        return _expired()
    try:
        core.revoke_consent(db.session, found, consent_id, web.origin(), actor=_me().id)
    except InvalidInput:
        db.session.rollback()
        abort(404)
    db.session.commit()
    flash(_("Le consentement a été retiré : l'écran de consentement s'affichera de nouveau."), "success")
    return redirect(url_for("console.client", client_pk=found.id), 303)


# ------------------------------------------------------------------ accounts

@bp.route("/comptes/nouveau", methods=["GET", "POST"])
@web.platform_admin_required
def account_new() -> Any:
    """Create an account; its owner receives a link to choose a password."""
    form = AccountForm()
    if form.validate_on_submit():
        try:
            user = core.create_account(db.session, web.hasher(), web.origin(), actor=_me().id,
                                       email=form.email.data or "", given_name=form.given_name.data or "",
                                       family_name=form.family_name.data or "",
                                       civility=Civility(form.civility.data) if form.civility.data else None)
        except InvalidInput:
            db.session.rollback()
            form.email.errors = [_("Un compte existe déjà avec cette adresse e-mail.")]
            return render_template("console/account_new.html", form=form), 409
        _send_reset(user)
        db.session.commit()
        flash(_("Le compte de %(email)s est créé : un lien pour choisir son mot de passe lui a été envoyé.",
                email=user.email), "success")
        return redirect(url_for("console.account", user_id=user.id), 303)
    return render_template("console/account_new.html", form=form), 422 if form.errors else 200


def _send_reset(user: User) -> None:
    from idp.auth.views import _reset_link

    web.send_mail("password_reset", user.email, user=user, link=_reset_link(user),
                  minutes=current_app.config["RESET_LINK_MAX_AGE"] // 60)


@bp.route("/comptes/<uuid:user_id>", methods=["GET", "POST"])
@web.platform_admin_required
def account(user_id: uuid.UUID) -> Any:
    """Edit an account's names and contact e-mail; its sessions; reset mail and second factor."""
    user = _account(user_id)
    if request.method == "GET":
        form = EditAccountForm(version=user.version, given_name=user.given_name, family_name=user.family_name,
                               civility=user.civility.value if user.civility else None,
                               contact_email=user.contact_email or "")
    else:
        form = EditAccountForm()
    status = 200
    if form.validate_on_submit():
        try:
            core.edit_account(db.session, user, web.origin(), actor=_me().id, expected_version=form.version.data or 0,
                              given_name=form.given_name.data or "", family_name=form.family_name.data or "",
                              civility=Civility(form.civility.data) if form.civility.data else None,
                              contact_email=form.contact_email.data)
        except Conflict:
            db.session.rollback()
            form.form_errors.append(_("Ce compte a été modifié entre-temps : rechargez la page puis recommencez."))
            status = 409
        else:
            db.session.commit()
            flash(_("Le compte a été enregistré."), "success")
            return redirect(url_for("console.account", user_id=user.id), 303)
    elif request.method == "POST":
        status = 422
    return render_template("console/account.html", account=user, form=form, confirm=ConfirmForm(),
                           sessions=[(login, core.session_handle(login)) for login in core.live_sessions(db.session, user)]), status


@bp.post("/comptes/<uuid:user_id>/reinitialisation")
@web.platform_admin_required
def account_reset_mail(user_id: uuid.UUID) -> Response:
    """Mail the person a password-reset link (it also unblocks a blocked account once used)."""
    user = _account(user_id)
    if not ConfirmForm().validate_on_submit():
        return _expired()
    if user.state == AccountState.DEACTIVATED:
        flash(_("Ce compte est en sommeil : réactivez-le d'abord."), "error")
        return redirect(url_for("console.account", user_id=user.id), 303)
    _send_reset(user)
    web.record("account.reset_mail_sent", actor=_me().id, subject=user.id)
    db.session.commit()
    flash(_("Un lien de réinitialisation a été envoyé à %(email)s.", email=user.email), "success")
    return redirect(url_for("console.account", user_id=user.id), 303)


@bp.post("/comptes/<uuid:user_id>/double-authentification")
@web.platform_admin_required
def account_reset_totp(user_id: uuid.UUID) -> Response:
    """Remove a lost authenticator and its recovery codes."""
    user = _account(user_id)
    if not ConfirmForm().validate_on_submit():
        return _expired()
    core.reset_second_factor(db.session, user, web.origin(), actor=_me().id)
    db.session.commit()
    flash(_("La double authentification de %(email)s est réinitialisée.", email=user.email), "success")
    return redirect(url_for("console.account", user_id=user.id), 303)


@bp.post("/comptes/<uuid:user_id>/sessions")
@web.platform_admin_required
def account_end_sessions(user_id: uuid.UUID) -> Response:
    """End every session of the account (the applications are told by back-channel logout)."""
    user = _account(user_id)
    if not ConfirmForm().validate_on_submit():
        return _expired()
    count = core.end_sessions(db.session, user, web.origin(), actor=_me().id)
    db.session.commit()
    flash(_("%(count)d session(s) fermée(s).", count=count), "success")
    return redirect(url_for("console.account", user_id=user.id), 303)


@bp.post("/comptes/<uuid:user_id>/sessions/<handle>/fermer")
@web.platform_admin_required
def account_end_session(user_id: uuid.UUID, handle: str) -> Response:
    """End one session of the account (the applications are told by back-channel logout)."""
    user = _account(user_id)
    if not ConfirmForm().validate_on_submit():
        return _expired()
    try:
        core.end_one_session(db.session, user, handle[:64], web.origin(), actor=_me().id)
    except InvalidInput:
        db.session.rollback()
        flash(_("Cette session est déjà fermée."), "error")
        return redirect(url_for("console.account", user_id=user.id), 303)
    db.session.commit()
    flash(_("La session est fermée."), "success")
    return redirect(url_for("console.account", user_id=user.id), 303)
