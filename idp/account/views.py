"""My account ("Mon compte"): information, password, contact e-mail, two-factor, sessions (SPEC §4.1)."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.wrappers import Response

from idp import web
from idp.account.forms import (
    ContactEmailForm,
    PasswordForm,
    ProfileForm,
    SessionForm,
    SwitchStructureForm,
    TotpConfirmForm,
    TotpDisableForm,
)
from idp.auth import second_factor
from idp.auth.forms import ConfirmForm, password_messages
from idp.core import accounts, memberships, totp
from idp.core.errors import Conflict, InvalidInput, NotFound
from idp.core.security import LinkInvalid
from idp.extensions import db
from idp.models import Civility, Client, User, utcnow

bp = Blueprint("account", __name__, url_prefix="/account")


def _me() -> User:
    """The signed-in account, as the model instance the core takes (behind login_required)."""
    return current_user._get_current_object()  # type: ignore[no-any-return]


@bp.get("/")
@login_required
def index() -> str:
    """Account home: my information and the account menu."""
    return render_template("account/index.html", user=_me())


@bp.route("/profile", methods=["GET", "POST"])
@login_required
def profile() -> Any:
    """Edit my civility, given name and family name."""
    user = _me()
    form = ProfileForm(obj=user, civility=user.civility.value if user.civility else None)
    if form.validate_on_submit():
        try:
            accounts.update_profile(
                db.session, web.origin(), user, version=form.version.data or 0,
                civility=Civility(form.civility.data), given_name=form.given_name.data or "",
                family_name=form.family_name.data or "",
            )
        except Conflict:
            db.session.rollback()
            form.form_errors.append(_("Vos informations ont été modifiées entre-temps (dans un autre "
                                      "onglet ?). Rechargez la page puis recommencez."))
            return render_template("account/profile.html", form=form), 409
        db.session.commit()
        flash(_("Vos informations ont été enregistrées."), "success")
        return redirect(url_for("account.index"))
    return render_template("account/profile.html", form=form)


@bp.route("/password", methods=["GET", "POST"])
@login_required
def password() -> Any:
    """Change my password; my other sessions end."""
    user = _me()
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            accounts.change_password(
                db.session, web.hasher(), web.origin(), user, current=form.current.data or "",
                new=form.password.data or "", portal_name=current_app.config["PORTAL_NAME"],
                keep_session=current_user.login_session.id,
            )
        except InvalidInput as exc:
            if exc.message == "bad_password":
                form.current.errors = [_("Le mot de passe actuel est incorrect.")]
            else:
                form.password.errors = password_messages(
                    exc.details.get("problems", []), current_app.config["PORTAL_NAME"])  # type: ignore[arg-type]
            return render_template("account/password.html", form=form)
        web.send_mail("password_changed", user.email, user=user,
                      forgot_link=url_for("auth.forgot", _external=True))
        db.session.commit()
        flash(_("Votre mot de passe a été modifié. Vos autres sessions ont été fermées."), "success")
        return redirect(url_for("account.index"))
    return render_template("account/password.html", form=form)


@bp.route("/email", methods=["GET", "POST"])
@login_required
def contact_email() -> Any:
    """Change my contact e-mail (the login e-mail stays): a link proves the new address."""
    user = _me()
    form = ContactEmailForm()
    if form.validate_on_submit():
        email = accounts.normalize_email(form.email.data or "")
        link = url_for("account.confirm_email", _external=True,
                       token=web.sign("contact", {"uid": str(user.id), "email": email}))
        web.send_mail("contact_email", email, user=user, link=link,
                      hours=current_app.config["VERIFY_LINK_MAX_AGE"] // 3600)
        db.session.commit()
        flash(_("Un lien de confirmation a été envoyé à %(email)s.", email=email), "success")
        return redirect(url_for("account.index"))
    return render_template("account/email.html", form=form, user=user)


@bp.get("/email/confirm/<token>")
@login_required
def confirm_email(token: str) -> Any:
    """Follow the link sent to the new contact address."""
    user = _me()
    try:
        payload = web.unsign("contact", token, current_app.config["VERIFY_LINK_MAX_AGE"])
        if payload.get("uid") != str(user.id):
            raise LinkInvalid(expired=False)
    except (LinkInvalid, AttributeError) as exc:
        expired = isinstance(exc, LinkInvalid) and exc.expired
        return render_template("auth/link_invalid.html", expired=expired, kind="contact")
    accounts.change_contact_email(db.session, web.origin(), user, str(payload["email"]))
    db.session.commit()
    flash(_("Votre adresse e-mail de contact a été modifiée."), "success")
    return redirect(url_for("account.index"))


# ------------------------------------------------------------------ two-factor

@bp.get("/totp")
@login_required
def two_factor() -> str:
    """Two-factor status: enrol, regenerate recovery codes, or disable."""
    user = _me()
    return render_template("account/totp.html", user=user, remaining=totp.remaining_recovery_codes(user),
                           confirm=ConfirmForm(), disable_form=TotpDisableForm())


@bp.route("/totp/enroll", methods=["GET", "POST"])
@login_required
def totp_enroll() -> Any:
    """Show the QR code, then confirm with a code; shows the recovery codes once."""
    user = _me()
    if user.totp_enabled:
        return redirect(url_for("account.two_factor"))
    secret = totp.begin_enrolment(db.session, user)
    db.session.commit()
    form = TotpConfirmForm()
    if form.validate_on_submit():
        try:
            codes = totp.confirm_enrolment(db.session, web.origin(), user, form.code.data or "")
        except InvalidInput:
            form.code.errors = [_("Code incorrect : vérifiez l'heure de votre téléphone et réessayez.")]
        except Conflict:
            return redirect(url_for("account.two_factor"))
        else:
            db.session.commit()
            return render_template("account/recovery_codes.html", codes=codes,
                                   continue_url=second_factor.continue_url())
    uri = totp.provisioning_uri(secret, user.email, current_app.config["PORTAL_NAME"])
    return render_template("account/totp_enroll.html", form=form, secret=secret, qr=totp.qr_data_uri(uri))


@bp.post("/totp/recovery-codes")
@login_required
def totp_regenerate() -> Any:
    """Replace my recovery codes."""
    form = ConfirmForm()
    if not form.validate_on_submit():
        return redirect(url_for("account.two_factor"))
    try:
        codes = totp.regenerate_recovery_codes(db.session, web.origin(), _me())
    except Conflict:
        return redirect(url_for("account.two_factor"))
    db.session.commit()
    return render_template("account/recovery_codes.html", codes=codes)


@bp.post("/totp/disable")
@login_required
def totp_disable() -> Any:
    """Turn two-factor off (password required)."""
    user = _me()
    form = TotpDisableForm()
    if form.validate_on_submit():
        try:
            totp.disable(db.session, web.hasher(), web.origin(), user, form.password.data or "")
        except InvalidInput:
            form.password.errors = [_("Mot de passe incorrect.")]
        else:
            db.session.commit()
            flash(_("La double authentification est désactivée."), "success")
            return redirect(url_for("account.two_factor"))
    return render_template("account/totp.html", user=user, remaining=totp.remaining_recovery_codes(user),
                           confirm=ConfirmForm(), disable_form=form), 200


# ------------------------------------------------------------------ sessions

@bp.get("/sessions")
@login_required
def sessions() -> str:
    """My active sessions, this one first."""
    user = _me()
    now = utcnow()
    logins = accounts.active_sessions(db.session, user, now, now - current_app.config["LOGIN_SESSION_IDLE"])
    current = current_user.login_session
    logins.sort(key=lambda login: login.id != current.id)
    return render_template("account/sessions.html", logins=logins, current=current, form=SessionForm())


@bp.post("/sessions/revoke")
@login_required
def revoke_session() -> Response:
    """End one of my sessions (this one too, if chosen)."""
    form = SessionForm()
    user = _me()
    if form.validate_on_submit():
        try:
            accounts.revoke_session(db.session, web.origin(), user, form.session_id.data or "")
        except NotFound:
            flash(_("Cette session n'existe plus."), "error")
        else:
            db.session.commit()
            flash(_("La session a été fermée."), "success")
    return redirect(url_for("account.sessions"))


@bp.post("/sessions/revoke-others")
@login_required
def revoke_others() -> Response:
    """End all my sessions except this one."""
    form = ConfirmForm()
    if form.validate_on_submit():
        count = accounts.revoke_other_sessions(db.session, web.origin(), _me(), current_user.login_session.id)
        db.session.commit()
        flash(_("%(count)d session(s) fermée(s).", count=count), "success")
    return redirect(url_for("account.sessions"))


@bp.app_template_filter("device")
def device(user_agent: str | None) -> str:
    """A short human name for a user agent ("Firefox · Linux")."""
    from werkzeug.user_agent import UserAgent

    if not user_agent:
        return _("Appareil inconnu")
    ua = user_agent.lower()
    browser = next((name for key, name in (("edg", "Edge"), ("firefox", "Firefox"), ("chrome", "Chrome"),
                                           ("safari", "Safari"), ("python-requests", "requests"))
                    if key in ua), None)
    system = next((name for key, name in (("windows", "Windows"), ("android", "Android"),
                                          ("iphone", "iOS"), ("mac os", "macOS"), ("linux", "Linux"))
                   if key in ua), None)
    parts = [p for p in (browser, system) if p]
    return " · ".join(parts) if parts else UserAgent(user_agent).string[:60]



# ------------------------------------------------------------------ current structure

@bp.route("/structure", methods=["GET", "POST"])
@login_required
def switch_structure() -> Any:
    """Choose the session's current structure ("casquette"): at login when there are several, from
    the menu, or on the way back to an application (SPEC §4.2, §5.3). `siret_hint` pre-selects."""
    login = current_user.login_session
    choices = memberships.active_memberships(db.session, login.user_id)
    form = SwitchStructureForm(next=request.args.get("next", ""))
    form.structure.choices = [(str(m.structure_id), m.structure.name) for m in choices]
    if not choices:
        return render_template("account/switch_structure.html", form=form, memberships=choices)
    if request.method == "GET":
        hinted = next((m for m in choices if m.structure.siret == request.args.get("siret_hint")), None)
        chosen = hinted.structure_id if hinted else login.current_structure_id
        form.structure.data = str(chosen) if chosen else None
    back_to_app = _client_return(request.values.get("client_id"), request.values.get("return_to"))
    if form.validate_on_submit():
        try:
            memberships.choose_structure(db.session, login, uuid.UUID(form.structure.data), web.origin())
        except (ValueError, NotFound):
            form.structure.errors = [_("Choisissez l'une de vos structures.")]
        else:
            db.session.commit()
            flash(_("Vous agissez maintenant pour %(name)s.", name=web.current_structure().name), "success")
            return redirect(back_to_app or web.safe_next())
    return render_template("account/switch_structure.html", form=form, memberships=choices,
                           client_id=request.values.get("client_id", ""), return_to=request.values.get("return_to", ""))


def _client_return(client_id: str | None, return_to: str | None) -> str | None:
    """An application's own page to go back to after switching (SPEC §5.3): only on the origin of
    one of that client's registered redirect URIs, never an open redirect."""
    if not client_id or not return_to:
        return None
    client = db.session.scalar(select(Client).where(Client.client_id == client_id[:64]))
    target = urlsplit(return_to)
    if client is None or target.scheme not in ("http", "https") or not target.netloc:
        return None
    origins = {(urlsplit(uri).scheme, urlsplit(uri).netloc) for uri in client.redirect_uris}
    return return_to if (target.scheme, target.netloc) in origins else None
