"""`/`: what the portal is (signed out) or my applications, structures and requests (signed in);
`/langue`: the language switcher, kept in a cookie and on the account."""

from __future__ import annotations

from collections import defaultdict

from flask import Blueprint, current_app, redirect, render_template, request, session
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from idp import web
from idp.core.memberships import active_memberships, live_role_ids, pending_request_count
from idp.extensions import db
from idp.models import Application, JoinRequest

bp = Blueprint("home", __name__)

LANG_COOKIE_MAX_AGE = 365 * 24 * 3600


@bp.get("/")
def index() -> str:
    """The portal's home: an introduction signed out, my applications and structures signed in."""
    if not current_user.is_authenticated:
        return render_template("home/welcome.html")
    user = current_user
    memberships = active_memberships(db.session, user.id)
    current = web.current_membership()
    apps: dict[str, set[str]] = defaultdict(set)
    roles: dict[int, list[str]] = {}
    for membership in memberships:
        live = live_role_ids(membership)
        roles[membership.id] = sorted(f"{g.role.app}:{g.role.name}" for g in membership.grants if g.role_id in live)
        if current is None or membership.id == current.id:
            for grant in membership.grants:
                if grant.role_id in live:
                    apps[grant.role.app].add(grant.role.name)
    known = {a.name: a for a in db.session.scalars(select(Application).where(Application.name.in_(apps)))} if apps else {}
    applications = [(name, known[name].url if name in known else None, sorted(apps[name])) for name in sorted(apps)]
    pending = list(db.session.scalars(
        select(JoinRequest).where(JoinRequest.user_id == user.id, JoinRequest.is_open)
        .order_by(JoinRequest.created_at.desc())))
    return render_template("home/index.html", user=user, memberships=memberships, current=current,
                           applications=applications, roles=roles, pending=pending,
                           to_decide=pending_request_count(db.session, user.id))


@bp.post("/langue")
def language() -> Response:
    """Remember the language chosen: a cookie for this browser, and the account when signed in."""
    lang = request.form.get("lang", "")
    target = web.safe_next("home.index")
    response = redirect(target)
    if lang not in current_app.config["LANGUAGES"]:
        return response
    session["lang"] = lang
    response.set_cookie(current_app.config["LANG_COOKIE"], lang, max_age=LANG_COOKIE_MAX_AGE, samesite="Lax", httponly=True,
                        secure=current_app.config.get("SESSION_COOKIE_SECURE", False))
    if current_user.is_authenticated and current_user.locale != lang:
        current_user.locale = lang
        db.session.commit()
    return response

