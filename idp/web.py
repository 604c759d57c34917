"""Glue between Flask requests and the core: who is logged in, the request's origin, mail, headers."""

from __future__ import annotations

import functools
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
from shared.web import apply_security_headers

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


def current_login() -> LoginSession | None:
    """The valid login session of this browser, loaded once per request."""
    if "login_session" not in g:
        g.login_session = _load_login_session()
    return g.login_session


def current_user() -> User | None:
    login = current_login()
    return login.user if login else None


def current_membership() -> Membership | None:
    """The session's current structure ("casquette") as an active membership, once per request."""
    if "current_membership" not in g:
        login = current_login()
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
    """Platform administrators only (the `idp` admin flag); others get 403, anonymous the login page."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        user = current_user()
        if user is None:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        if not user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def _load_login_session() -> LoginSession | None:
    sid = session.get("sid")
    if not sid:
        return None
    login = db.session.get(LoginSession, sid)
    now = utcnow()
    if (
        login is None
        or login.revoked_at is not None
        or login.expires_at <= now
        or login.last_seen_at + current_app.config["LOGIN_SESSION_IDLE"] <= now
        or login.user.state != AccountState.ACTIVE
    ):
        session.pop("sid", None)
        return None
    if now - login.last_seen_at > LAST_SEEN_RESOLUTION:
        login.last_seen_at = now
        db.session.commit()
    return login


def start_login_session(user: User, amr: str) -> LoginSession:
    """Open a new IdP session: a fresh id in a cleared cookie (no session fixation)."""
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
    from idp.core.memberships import default_structure

    login.current_structure_id = default_structure(db.session, user)
    db.session.add(login)
    user.last_login_at = now
    session["sid"] = login.id
    session.permanent = True
    g.login_session = login
    g.pop("current_membership", None)
    return login


def end_login_session() -> LoginSession | None:
    """Revoke this browser's IdP session and forget it; returns it for back-channel logout."""
    login = current_login()
    if login is not None:
        login.revoked_at = utcnow()
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    g.login_session = None
    g.pop("current_membership", None)
    return login


def login_required(view: F) -> F:
    """Send anonymous visitors to the login page, then back here."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


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

    @app.after_request
    def deliver_enqueued_mail(response: Response) -> Response:
        deliver_enqueued(app)
        return response

    @app.context_processor
    def template_globals() -> dict[str, Any]:
        from idp.core.memberships import pending_request_count

        user = current_user()
        return {
            "current_user": user,
            "current_membership": current_membership(),
            # The alert badge of "Gérer ma structure": pending requests where I am admin.
            "pending_requests": pending_request_count(db.session, user.id) if user else 0,
            "portal_name": app.config["PORTAL_NAME"],
        }
