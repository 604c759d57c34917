"""Glue between Flask requests and the core: who is logged in, the request's origin, mail, headers."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, TypeVar

from flask import (
    Flask,
    abort,
    current_app,
    g,
    redirect,
    request,
    session,
    url_for,
)
from flask_babel import force_locale
from flask_login import AnonymousUserMixin, current_user, login_required, login_user, logout_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from idp.core import mail as mail_core
from idp.core.audit import audit
from idp.core.passwords import Hasher
from idp.core.security import Origin, is_safe_redirect, random_token, read_link, sign_link
from idp.extensions import db
from idp.models import (
    AccountState,
    LoginSession,
    Membership,
    MembershipStatus,
    Structure,
    User,
    utcnow,
)
from shared.keys import signing_keys
from shared.mail import render_mail
from shared.web import apply_security_headers, init_login

F = TypeVar("F", bound=Callable[..., Any])

# Don't write last_seen_at on every request: once per window is enough for "my sessions".
LAST_SEEN_RESOLUTION = timedelta(minutes=5)


def hasher() -> Hasher:
    return current_app.extensions["hasher"]


def origin() -> Origin:
    return Origin(ip=request.remote_addr, user_agent=request.user_agent.string or None)


def record(event: str, **kwargs: Any) -> None:
    """audit() with this request's origin."""
    audit(db.session, event, origin(), **kwargs)


def current_membership() -> Membership | None:
    """The session's current structure ("casquette") as an active membership, once per request."""
    if "current_membership" not in g:
        login = current_user.login_session
        g.current_membership = None
        if login is not None and login.current_structure_id is not None:
            membership = db.session.scalar(select(Membership).where(
                Membership.user_id == login.user_id, Membership.structure_id == login.current_structure_id,
                Membership.status == MembershipStatus.ACTIVE))
            g.current_membership = membership
    return g.current_membership


def current_structure() -> Structure | None:
    membership = current_membership()
    return membership.structure if membership else None


def platform_admin_required(view: F) -> F:
    """Platform administrators only (the `idp` admin flag); others get 403, visitors the login page."""

    @functools.wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


# ------------------------------------------------------------------ who is signed in (Flask-Login)

class Visitor(AnonymousUserMixin):
    """Flask-Login's anonymous user, with the attributes views and templates read on an account."""

    is_admin = False
    login_session: LoginSession | None = None


def load_user(sid: str) -> User | None:
    """Flask-Login's loader, on each request that asks who is signed in: the login-session row is
    the source of truth, so a logout, a revocation ("end my other sessions"), an expiry, a blocked
    or deactivated account takes effect at once, in every worker."""
    login = db.session.get(LoginSession, sid)  # with its account (joined)
    now = utcnow()
    if (
        login is None
        or login.revoked_at is not None
        or login.expires_at <= now
        or login.last_seen_at + current_app.config["LOGIN_SESSION_IDLE"] <= now
        or login.user.state != AccountState.ACTIVE
    ):
        session.pop("_user_id", None)  # Flask-Login's key: an ended session is not looked up again
        return None
    if now - login.last_seen_at > LAST_SEEN_RESOLUTION:
        login.last_seen_at = now
        db.session.commit()
    login.user.login_session = login
    return login.user


def start_login_session(user: User, amr: str, structure_ids: list[uuid.UUID] | None = None) -> LoginSession:
    """Open a new IdP session and sign `user` in with it: a fresh id in a cleared cookie (no
    session fixation). `structure_ids`: the account's active structures, when the caller read them."""
    lang = session.get("lang")
    session.clear()
    if lang or user.locale:  # the language chosen on this browser, else the one saved on the account
        session["lang"] = lang or user.locale
    now = utcnow()
    login = LoginSession(
        id=random_token(24),
        user=user,
        auth_time=now,
        amr=amr,
        last_seen_at=now,
        expires_at=now + current_app.config["PERMANENT_SESSION_LIFETIME"],
        ip=request.remote_addr,
        user_agent=(request.user_agent.string or "")[:300] or None,
    )
    from idp.core.memberships import active_structure_ids, default_structure

    if structure_ids is None:
        structure_ids = active_structure_ids(db.session, user.id)
    login.current_structure_id = default_structure(user, structure_ids)
    db.session.add(login)
    user.last_login_at = now
    user.login_session = login
    login_user(user)  # the cookie keeps login.id (User.get_id); never a remember-me cookie
    session.permanent = True
    g.pop("current_membership", None)
    return login


def end_login_session() -> LoginSession | None:
    """Revoke this browser's IdP session and sign it out; returns it for back-channel logout."""
    login = current_user.login_session
    if login is not None:
        login.revoked_at = utcnow()
    logout_user()
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    g.pop("current_membership", None)
    return login


def as_visitor() -> None:
    """The rest of this request sees a visitor, and reads nothing more from the database (it is
    down); the cookie is left alone: the person is still signed in once the database is back."""
    current_app.login_manager._update_request_context_with_user()  # type: ignore[attr-defined]  # Flask-Login: g only
    g.current_membership = None


def _to_login() -> Response:
    """Where login_required sends visitors: the login page, then back here."""
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def safe_next(default: str = "account.index") -> str:
    """The `next` parameter when it stays on this site, else the default page."""
    target = request.values.get("next")
    if target and is_safe_redirect(target, request.host_url):
        return target
    return url_for(default)


def sign(purpose: str, payload: Any) -> str:
    return sign_link(signing_keys(current_app), purpose, payload)


def unsign(purpose: str, token: str, max_age: int) -> Any:
    # The fallback keys too: a link mailed before a key rotation still works until it expires.
    return read_link(signing_keys(current_app), purpose, token, max_age)


def send_mail(template: str, recipient: str, locale: str | None = None, **context: Any) -> None:
    """Render mails/<template>.{txt,html} (the subject is the first line of the .txt) and enqueue."""
    with force_locale(locale or "fr"):
        subject, text, html = render_mail(template, **context)
    mail_core.enqueue(db.session, recipient, subject, text, html)
    g.mail_enqueued = True


def deliver_enqueued(app: Flask) -> None:
    """Embedded mode: deliver what this request queued, after its commit (production leaves it to
    `idp mail worker`)."""
    if g.pop("mail_enqueued", False) and app.config["MAIL_DELIVER_IN_REQUEST"]:
        deliver_mail(app)


@contextmanager
def offline_request(app: Flask) -> Iterator[None]:
    """A request context for work outside HTTP (CLI commands, cron jobs): absolute links in mail use
    the issuer as their base, and mail queued inside is delivered at the end, as after a request
    (not when the block raises)."""
    with app.test_request_context("/", base_url=app.config["ISSUER"]):
        yield
        if g.pop("mail_enqueued", False) and app.config["MAIL_DELIVER_IN_REQUEST"]:
            # A job is no request in a hurry: deliver every due batch, not only the first (its own
            # mail comes after any backlog, oldest first).
            for _batch in range(100):  # failures are put off (backoff): a pass that sends nothing ends it
                if not deliver_mail(app):
                    break


def deliver_mail(app: Flask) -> int:
    """Deliver what is due: SMTP when configured, the dev inbox otherwise."""
    smtp_url = app.config["SMTP_URL"]
    sender = mail_core.smtp_sender(smtp_url, app.config["MAIL_FROM"]) if smtp_url else None
    return mail_core.deliver_due(db.session, sender, max_attempts=app.config["MAIL_MAX_ATTEMPTS"])


def init_app(app: Flask) -> None:
    app.after_request(apply_security_headers)  # the shell's list: the same for the four services
    init_login(app, anonymous=Visitor, unauthorized=_to_login).user_loader(load_user)

    @app.after_request
    def deliver_enqueued_mail(response: Response) -> Response:
        deliver_enqueued(app)
        return response

    @app.context_processor
    def template_globals() -> dict[str, Any]:
        from idp.core.memberships import pending_request_count

        return {
            "current_membership": current_membership(),
            # The alert badge of "Gérer ma structure": pending requests where I am admin.
            "pending_requests": pending_request_count(db.session, current_user.id) if current_user.is_authenticated else 0,
            "portal_name": app.config["PORTAL_NAME"],
        }
