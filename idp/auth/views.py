"""Sign-up, e-mail verification, login (+TOTP), logout, forgotten password (SPEC §4.1).

No page tells whether an e-mail has an account: sign-up, resend, forgotten password and a
failed login answer the same whatever the address. That includes the *right* password on an
account that cannot log in (pending, blocked, deactivated): saying why would confirm to whoever
typed it that the password is right and the account exists (issue 15, finding 8). The owner is
told by e-mail instead, with the way out.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from idp import web
from idp.auth.forms import (
    ConfirmForm,
    EmailForm,
    LoginForm,
    NewPasswordForm,
    SignupForm,
    TotpForm,
    password_messages,
)
from idp.core import accounts, memberships, totp
from idp.core.accounts import LoginFailed
from idp.core.errors import InvalidInput, NotFound
from idp.core.security import LinkInvalid
from idp.core.structures import claim_designated_structures
from idp.extensions import db, limiter
from idp.models import Civility, User
from idp.oidc.logout import sessions_ended

bp = Blueprint("auth", __name__)

MFA_STEP_SECONDS = 300  # time allowed between the password and the TOTP step


# ------------------------------------------------------------------ rate limits (read at request time)

def _login_ip_limit() -> str:
    return current_app.config["RATELIMIT_LOGIN_IP"]


def _login_account_limit() -> str:
    return current_app.config["RATELIMIT_LOGIN_ACCOUNT"]


def _signup_ip_limit() -> str:
    return current_app.config["RATELIMIT_SIGNUP_IP"]


def _reset_ip_limit() -> str:
    return current_app.config["RATELIMIT_RESET_IP"]


def _link_guess_ip_limit() -> str:
    return current_app.config["RATELIMIT_LINK_GUESS_IP"]


def _link_guess_account_limit() -> str:
    return current_app.config["RATELIMIT_LINK_GUESS_ACCOUNT"]


def _claimed_account_key() -> str:
    """Per-account limit on signed-link guesses: the account the link *claims* (its payload, read
    unverified: itsdangerous puts it in clear before the signature), else the payload itself."""
    head = str((request.view_args or {}).get("token", "")).split(".", 1)[0][:512]
    try:
        data = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, binascii.Error):
        data = None
    claimed = data.get("uid") if isinstance(data, dict) else None
    return "link-account:" + (str(claimed)[:64] if claimed else head[:64])


def link_refused(_response: Response) -> bool:
    """Only refused links count towards the guess limits (a person following a good one never waits)."""
    return bool(g.get("link_refused"))


def limit_link_guesses(view: Any) -> Any:
    """Signed-link pages (reset, verification, invitation): failed guesses limited per client address
    (the proxy's, unless IDP_PROXY_FIX) and per claimed account (issue 15 finding 11)."""
    return _LINK_GUESSES_PER_ADDRESS(_LINK_GUESSES_PER_ACCOUNT(view))


# Shared by every signed-link page: guesses spread over several of them count together.
_LINK_GUESSES_PER_ACCOUNT = limiter.shared_limit(_link_guess_account_limit, scope="link-guess-account",
                                                 key_func=_claimed_account_key, deduct_when=link_refused)
_LINK_GUESSES_PER_ADDRESS = limiter.shared_limit(_link_guess_ip_limit, scope="link-guess-ip", deduct_when=link_refused)


def _account_key() -> str:
    """Per-account limit: the normalised e-mail typed (whether or not it exists)."""
    return "account:" + accounts.normalize_email(request.form.get("email", ""))[:254]


def _mfa_key() -> str:
    return "mfa:" + str((session.get("mfa") or {}).get("uid", ""))


# ------------------------------------------------------------------ helpers

def _flow_args() -> dict[str, str]:
    """`next` and `force` carried through the whole login flow."""
    args = {}
    nxt = request.values.get("next")
    if nxt:
        args["next"] = nxt
    if request.values.get("force") == "1":
        args["force"] = "1"
    return args


def _link(endpoint: str, purpose: str, payload: Any) -> str:
    return url_for(endpoint, token=web.sign(purpose, payload), _external=True)


def _verify_link(user: User) -> str:
    return _link("auth.verify", "verify", {"uid": str(user.id), "email": user.email})


def _reset_link(user: User) -> str:
    return _link("auth.reset", "reset", {"uid": str(user.id), "fp": accounts.new_reset_fingerprint(user)})


def _portal() -> str:
    return current_app.config["PORTAL_NAME"]


def _finish_login(user: User, amr: str) -> Response:
    previous = current_user.login_session
    if previous is not None and previous.user_id != user.id:
        # Another person logs in on this browser: the previous account's session ends for real.
        web.end_login_session()
        sessions_ended(db.session, [previous])
    first_login = user.last_login_at is None
    mine = memberships.active_structure_ids(db.session, user.id)
    web.start_login_session(user, amr, mine)
    web.record("login.success", actor=user.id, subject=user.id, amr=amr)
    db.session.commit()
    if len(mine) > 1:
        # Several structures: the person says which one they act for (the last one pre-selected).
        return redirect(url_for("account.switch_structure", next=web.safe_next()))
    if first_login and not mine and not request.values.get("next"):
        # A first visit to the portal itself with no structure yet: join one, or link the old shared
        # account (seeds 000, 001). On the way to an application or a page, don't stand in the way.
        return redirect(url_for("auth.welcome"))
    return redirect(web.safe_next())


@bp.get("/bienvenue")
@login_required
def welcome() -> str:
    """First login without a structure: how to get one, then on to where the person was going."""
    return render_template("auth/welcome.html", next_url=web.safe_next())


# ------------------------------------------------------------------ login

@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_ip_limit, methods=["POST"])
@limiter.limit(_login_account_limit, key_func=_account_key, methods=["POST"], scope="login-account")
def login() -> Any:
    """Log in with the login e-mail and password; on to /login/totp when enrolled."""
    force = request.values.get("force") == "1"
    if current_user.is_authenticated and not force:
        return redirect(web.safe_next())
    # OIDC login_hint (forwarded by /authorize) pre-fills the e-mail on the first display.
    form = LoginForm(next=request.args.get("next", ""), force="1" if force else "",
                     email=request.args.get("login_hint", "")[:254])
    if form.validate_on_submit():
        try:
            user = accounts.authenticate(
                db.session, web.hasher(), web.origin(), email=form.email.data or "",
                password=form.password.data or "", max_failed=current_app.config["MAX_FAILED_LOGINS"],
            )
        except LoginFailed as failure:
            _tell_owner(failure)
            db.session.commit()
            form.form_errors.append(_("Identifiant ou mot de passe incorrect."))
            return render_template("auth/login.html", form=form, flow=_flow_args()), 200
        if user.totp_enabled:
            session["mfa"] = {"uid": str(user.id), "at": int(time.time())}
            db.session.commit()
            return redirect(url_for("auth.login_totp", **_flow_args()))
        return _finish_login(user, "pwd")
    return render_template("auth/login.html", form=form, flow=_flow_args())


def _tell_owner(failure: LoginFailed) -> None:
    """Mail the account's owner what the login page does not say: blocked (with a reset link),
    e-mail not verified yet (a new link), or deactivated."""
    user = failure.user
    if user is None:
        return
    if failure.just_blocked or (failure.password_ok and failure.reason == "blocked"):
        web.send_mail("account_blocked", user.email, user=user, reset_link=_reset_link(user))
    elif failure.password_ok and failure.reason == "pending":
        web.send_mail("verify_email", user.email, user=user, link=_verify_link(user),
                      hours=current_app.config["VERIFY_LINK_MAX_AGE"] // 3600)
    elif failure.password_ok and failure.reason == "deactivated":
        web.send_mail("login_deactivated", user.email, user=user)


@bp.route("/login/totp", methods=["GET", "POST"])
@limiter.limit(_login_ip_limit, methods=["POST"])
@limiter.limit(_login_account_limit, key_func=_mfa_key, methods=["POST"], scope="login-mfa")
def login_totp() -> Any:
    """Second step: a code from the authenticator app, or a recovery code."""
    pending = session.get("mfa") or {}
    user = accounts.get_user(db.session, pending.get("uid", "")) if pending else None
    if user is None or time.time() - pending.get("at", 0) > MFA_STEP_SECONDS or not user.totp_enabled:
        session.pop("mfa", None)
        flash(_("Votre session de connexion a expiré : identifiez-vous à nouveau."), "error")
        return redirect(url_for("auth.login", **_flow_args()))
    form = TotpForm(next=request.args.get("next", ""), force=request.args.get("force", ""))
    if form.validate_on_submit():
        try:
            totp.verify_second_factor(db.session, web.origin(), user, form.code.data or "")
        except InvalidInput:
            web.record("login.failure", subject=user.id, reason="totp_invalid")
            db.session.commit()
            form.code.errors = [_("Code incorrect ou déjà utilisé.")]
            return render_template("auth/login_totp.html", form=form)
        if user.state != "active":  # blocked meanwhile
            session.pop("mfa", None)
            return redirect(url_for("auth.login", **_flow_args()))
        return _finish_login(user, "pwd otp")
    return render_template("auth/login_totp.html", form=form)


# ------------------------------------------------------------------ logout

@bp.route("/logout", methods=["GET", "POST"])
def logout() -> Any:
    """GET asks for confirmation; POST (with its CSRF token) ends this browser's session."""
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        login = web.end_login_session()
        if login is not None:
            web.record("logout", actor=login.user_id, subject=login.user_id)
            sessions_ended(db.session, [login])
        db.session.commit()
        return render_template("auth/logged_out.html")
    if not current_user.is_authenticated:
        return render_template("auth/logged_out.html")
    return render_template("auth/logout.html", form=form)


# ------------------------------------------------------------------ sign-up and verification

@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit(_signup_ip_limit, methods=["POST"])
def signup() -> Any:
    """Create an account ("Créer un compte"); the same answer whether the e-mail is taken or not."""
    form = SignupForm()
    if form.validate_on_submit():
        try:
            result = accounts.signup(
                db.session, web.hasher(), web.origin(), email=form.email.data or "",
                password=form.password.data or "", given_name=form.given_name.data or "",
                family_name=form.family_name.data or "", civility=Civility(form.civility.data),
                portal_name=_portal(),
            )
        except InvalidInput as exc:
            form.password.errors = password_messages(exc.details.get("problems", []), _portal())  # type: ignore[arg-type]
            return render_template("auth/signup.html", form=form)
        user = result.user
        if result.created:
            web.send_mail("verify_email", user.email, user=user, link=_verify_link(user),
                          hours=current_app.config["VERIFY_LINK_MAX_AGE"] // 3600)
        elif not result.duplicate:  # a double submission: the first one's mail is on its way
            reset = _reset_link(user) if user.state in ("active", "blocked", "pending") else None
            web.send_mail("account_exists", user.email, user=user, reset_link=reset,
                          login_link=url_for("auth.login", _external=True))
        db.session.commit()
        return redirect(url_for("auth.signup_sent"))
    return render_template("auth/signup.html", form=form)


@bp.get("/signup/sent")
def signup_sent() -> str:
    """Tell the person to check their mailbox."""
    return render_template("auth/signup_sent.html")


@bp.get("/signup/verify/<token>")
@limit_link_guesses
def verify(token: str) -> Any:
    """Follow the e-mail verification link (valid 2 hours): the account becomes active."""
    try:
        payload = web.unsign("verify", token, current_app.config["VERIFY_LINK_MAX_AGE"])
        user = accounts.verify_email(db.session, web.origin(), str(payload["uid"]), str(payload["email"]))
        claim_designated_structures(db.session, user, web.origin())
    except LinkInvalid as exc:
        g.link_refused = True
        return render_template("auth/link_invalid.html", expired=exc.expired, kind="verify")
    except (NotFound, KeyError, TypeError):
        g.link_refused = True
        return render_template("auth/link_invalid.html", expired=False, kind="verify")
    db.session.commit()
    return render_template("auth/verified.html", user=user)


@bp.route("/signup/resend", methods=["GET", "POST"])
@limiter.limit(_signup_ip_limit, methods=["POST"])
def resend() -> Any:
    """Send the verification link again (same answer for any address)."""
    form = EmailForm()
    if form.validate_on_submit():
        user = accounts.pending_user(db.session, form.email.data or "")
        if user is not None:
            web.send_mail("verify_email", user.email, user=user, link=_verify_link(user),
                          hours=current_app.config["VERIFY_LINK_MAX_AGE"] // 3600)
        db.session.commit()
        return redirect(url_for("auth.signup_sent"))
    return render_template("auth/resend.html", form=form)


# ------------------------------------------------------------------ forgotten password

@bp.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit(_reset_ip_limit, methods=["POST"])
def forgot() -> Any:
    """Ask for a reset link (same answer whether the address has an account or not)."""
    form = EmailForm()
    if form.validate_on_submit():
        user = accounts.request_password_reset(db.session, web.origin(), form.email.data or "")
        if user is not None:
            web.send_mail("password_reset", user.email, user=user, link=_reset_link(user),
                          minutes=current_app.config["RESET_LINK_MAX_AGE"] // 60)
        db.session.commit()
        return render_template("auth/forgot_sent.html")
    return render_template("auth/forgot.html", form=form)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
@limit_link_guesses
def reset(token: str) -> Any:
    """Choose a new password from a single-use link valid one hour; unblocks the account."""
    try:
        payload = web.unsign("reset", token, current_app.config["RESET_LINK_MAX_AGE"])
        user = accounts.user_for_reset(db.session, str(payload["uid"]), str(payload["fp"]))
    except LinkInvalid as exc:
        g.link_refused = True
        return render_template("auth/link_invalid.html", expired=exc.expired, kind="reset")
    except (NotFound, KeyError, TypeError):
        g.link_refused = True
        return render_template("auth/link_invalid.html", expired=False, kind="reset")
    form = NewPasswordForm()
    if form.validate_on_submit():
        try:
            accounts.reset_password(db.session, web.hasher(), web.origin(), user,
                                    form.password.data or "", portal_name=_portal())
        except InvalidInput as exc:
            form.password.errors = password_messages(exc.details.get("problems", []), _portal())  # type: ignore[arg-type]
            return render_template("auth/reset.html", form=form, user=user)
        web.send_mail("password_changed", user.email, user=user,
                      forgot_link=url_for("auth.forgot", _external=True))
        web.end_login_session()
        db.session.commit()
        flash(_("Votre mot de passe a été modifié. Vous pouvez vous connecter."), "success")
        return redirect(url_for("auth.login"))
    return render_template("auth/reset.html", form=form, user=user)
