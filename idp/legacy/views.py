"""Se lier à un ancien compte (SPEC §4.6; seed 000 §3.B, seed 001 "Comment se rattacher" 1 and 2).

No page tells whether a legacy id exists: a wrong password and an unknown id get the same message,
and "I forgot the password" answers the same whatever happened. Failed binds count against the
login rate limits (per address, and per legacy id); the password goes to one LDAP bind and nowhere
else. An unreachable directory gives a French 503 page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from idp import web
from idp.core import legacy as core
from idp.core.errors import InvalidInput, NotAllowed
from idp.core.memberships import choose_structure, structure_admins
from idp.core.security import LinkInvalid
from idp.directory import DirectoryUnavailable, directory_for
from idp.extensions import db, limiter
from idp.legacy.forms import ConfirmLinkForm, ForgotForm, LinkForm
from idp.models import User

if TYPE_CHECKING:
    from idp.directory.ldap import Directory

bp = Blueprint("legacy", __name__, url_prefix="/ancien-compte")

JOIN_LINK_PURPOSE = "join-request"  # the "Traiter la demande" link of Gérer ma structure


# ------------------------------------------------------------------ rate limits (read at request time)

def _login_ip_limit() -> str:
    return current_app.config["RATELIMIT_LOGIN_IP"]


def _login_account_limit() -> str:
    return current_app.config["RATELIMIT_LOGIN_ACCOUNT"]


def _reset_ip_limit() -> str:
    return current_app.config["RATELIMIT_RESET_IP"]


def _legacy_key() -> str:
    """Per legacy account, whatever its case: the id typed (whether or not it exists)."""
    return "legacy:" + request.form.get("legacy_id", "").strip().upper()[:64]


def _user_key() -> str:
    return "legacy-user:" + (str(current_user.id) if current_user.is_authenticated else request.remote_addr or "")


def _failed(response: Response) -> bool:
    """Only failed attempts use up the per-account budget (a success is not an attack)."""
    return response.status_code == 400


# ------------------------------------------------------------------ helpers

def _directory() -> Directory:
    return directory_for(current_app.config)


@bp.errorhandler(DirectoryUnavailable)
def directory_unavailable(exc: DirectoryUnavailable) -> Any:
    db.session.rollback()
    current_app.logger.warning("legacy directory unavailable: %s", exc)
    return render_template("legacy/unavailable.html"), 503


def _me() -> User:
    """The signed-in account, as the model instance the core takes (behind login_required)."""
    return current_user._get_current_object()  # type: ignore[no-any-return]


def _clean_id(form: LinkForm | ForgotForm) -> str:
    return (form.legacy_id.data or "").strip()


# ------------------------------------------------------------------ pages

@bp.get("/")
@login_required
def index() -> str:
    """The two ways (I know the password / I forgot it) and the accounts already linked."""
    user = _me()
    return render_template("legacy/index.html", links=core.links_of(db.session, user.id))


@bp.route("/lier", methods=["GET", "POST"])
@login_required
@limiter.limit(_login_ip_limit, methods=["POST"])
@limiter.limit(_login_account_limit, key_func=_legacy_key, methods=["POST"], scope="legacy-account",
               deduct_when=_failed)
@limiter.limit(_login_account_limit, key_func=_user_key, methods=["POST"], scope="legacy-user",
               deduct_when=_failed)
def link() -> Any:
    """Method 1: the legacy id and its password → a member of its structure at once."""
    user = _me()
    form = LinkForm()
    if request.method == "GET":
        return render_template("legacy/link.html", form=form)
    if not form.validate_on_submit():
        return render_template("legacy/link.html", form=form), 400
    legacy_id = _clean_id(form)
    db.session.commit()  # no database transaction (SQLite: the write lock) held across the LDAP round trip
    entry = _directory().verify(legacy_id, form.password.data or "")
    if entry is None:
        web.record("legacy.failure", actor=user.id, subject=user.id,
                   legacy_id=legacy_id if legacy_id.isprintable() else repr(legacy_id)[:80])
        db.session.commit()
        form.form_errors.append(_("Identifiant ou mot de passe de l'ancien compte incorrect."))
        return render_template("legacy/link.html", form=form), 400
    try:
        result = core.link(db.session, user, entry, core.PASSWORD, web.origin())
    except NotAllowed:
        db.session.rollback()
        form.form_errors.append(_("Votre rattachement à cette structure est suspendu : "
                                  "adressez-vous à son administrateur."))
        return render_template("legacy/link.html", form=form), 403
    except InvalidInput:
        db.session.rollback()
        form.form_errors.append(_("Cet ancien compte ne peut pas être lié automatiquement (SIRET invalide "
                                  "dans l'annuaire) : adressez-vous au support."))
        return render_template("legacy/link.html", form=form), 409
    return _linked(result)


def _linked(result: core.LinkResult) -> Response:
    choose_structure(db.session, current_user.login_session, result.structure.id, web.origin())
    db.session.commit()
    message = _("Votre compte est lié à l'ancien compte : vous êtes rattaché(e) à %(name)s.",
                name=result.structure.name)
    if result.admin:
        message += " " + _("Vous en êtes administrateur.")
    flash(message, "success")
    return redirect(url_for("legacy.index"))


@bp.route("/oubli", methods=["GET", "POST"])
@login_required
@limiter.limit(_reset_ip_limit, methods=["POST"])
@limiter.limit(_reset_ip_limit, key_func=_legacy_key, methods=["POST"], scope="legacy-forgot")
def forgot() -> Any:
    """Method 2: only the id → a join request to the structure's admins, or when it has none a
    signed link to the legacy account's mail. The answer is the same whatever happened."""
    user = _me()
    form = ForgotForm()
    if request.method == "GET":
        return render_template("legacy/forgot.html", form=form)
    if not form.validate_on_submit():
        return render_template("legacy/forgot.html", form=form), 400
    legacy_id = _clean_id(form)
    db.session.commit()  # no database transaction held across the LDAP round trip
    entry = _directory().find(legacy_id)
    already_pending = False
    if entry is not None:
        try:
            result = core.forgot(db.session, user, entry, web.origin())
        except InvalidInput as exc:
            db.session.rollback()
            # Their own request, listed in "Mes structures": saying so tells them nothing new (issue 16).
            already_pending = exc.message == "already_pending"
            web.record("legacy.forgot_refused", actor=user.id, subject=user.id, legacy_id=entry.id,
                       reason=exc.message)
        else:
            if result.request is not None:
                token = web.sign(JOIN_LINK_PURPOSE, {"rid": result.request.id})
                link = url_for("manage.open_request", token=token, _external=True)
                for admin in structure_admins(db.session, result.structure.id):
                    web.send_mail("legacy_join_request", admin.contact_email or admin.email, admin=admin,
                                  requester=user, structure=result.structure, legacy_id=entry.id, link=link)
            elif result.mail_to:
                token = web.sign("legacy-link", {"uid": str(user.id), "lid": entry.id})
                web.send_mail("legacy_link", result.mail_to, requester=user, structure=result.structure,
                              legacy_id=entry.id, link=url_for("legacy.confirm", token=token, _external=True),
                              days=current_app.config["LEGACY_LINK_MAX_AGE"] // 86400)
    else:
        web.record("legacy.forgot_unknown", actor=user.id, subject=user.id,
                   legacy_id=legacy_id if legacy_id.isprintable() else repr(legacy_id)[:80])
    db.session.commit()
    return render_template("legacy/forgot_sent.html", legacy_id=legacy_id, already_pending=already_pending)


@bp.route("/confirmer/<token>", methods=["GET", "POST"])
@login_required
def confirm(token: str) -> Any:
    """The signed link mailed to the legacy account's address, followed by the usager who asked."""
    user = _me()
    try:
        payload = web.unsign("legacy-link", token, current_app.config["LEGACY_LINK_MAX_AGE"])
        uid, legacy_id = str(payload["uid"]), str(payload["lid"])
    except LinkInvalid as exc:
        return render_template("legacy/link_invalid.html", expired=exc.expired), 400
    except (KeyError, TypeError):
        return render_template("legacy/link_invalid.html", expired=False), 400
    if uid != str(user.id):
        return render_template("legacy/link_invalid.html", other_account=True), 403
    db.session.commit()  # no database transaction held across the LDAP round trip
    entry = _directory().find(legacy_id)
    if entry is None:
        return render_template("legacy/link_invalid.html", expired=False), 404
    form = ConfirmLinkForm()
    if request.method == "GET" or not form.validate_on_submit():
        return render_template("legacy/confirm.html", form=form, entry=entry), 200 if request.method == "GET" else 400
    try:
        result = core.link(db.session, user, entry, core.MAIL, web.origin())
    except (NotAllowed, InvalidInput):
        db.session.rollback()
        return render_template("legacy/link_invalid.html", refused=True), 403
    return _linked(result)
