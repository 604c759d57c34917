"""Join-request mail (SPEC §4.2): who decides a request, the notice of a new one, and the periodic job
that expires requests after 15 days and reminds the deciders 3 days before (`idp requests expire`).

The job is safe to run as often as one likes: a request expires once (only pending ones do) and its
deciders get one reminder (``reminded_at`` is set in the same transaction as the mail is queued).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import Flask, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp import web
from idp.core.memberships import due_join_requests, structure_admins
from idp.core.platform import apply_admin_email
from idp.core.security import Origin
from idp.extensions import db
from idp.models import AccountState, JoinRequest, Membership, Structure, User, utcnow

JOIN_LINK_PURPOSE = "join-request"  # read by manage.open_request ("Traiter la demande")


def address(user: User) -> str:
    """Where a person reads their mail: the contact e-mail when they chose one."""
    return user.contact_email or user.email


def platform_admins(session: Session) -> list[User]:
    return list(session.scalars(select(User).where(User.is_admin.is_(True), User.state == AccountState.ACTIVE)
                                .order_by(User.email)))


@dataclass(frozen=True)
class Deciders:
    """Who decides a request: the structure's active admins, or the platform's moderation queue."""

    users: list[User]
    moderation: bool


def deciders(session: Session, join: JoinRequest) -> Deciders:
    admins = structure_admins(session, join.structure_id)
    if admins:
        return Deciders(admins, moderation=False)
    # SPEC §4.2: a structure without an active admin: its requests go to the platform admins.
    return Deciders(platform_admins(session), moderation=True)


def decide_link(join: JoinRequest, moderation: bool) -> str:
    """The "Traiter la demande" button: the signed request for admins, the queue for the platform."""
    if moderation:
        return url_for("admin.moderation", _external=True)
    return url_for("manage.open_request", token=web.sign(JOIN_LINK_PURPOSE, {"rid": join.id}), _external=True)


def notify_new_request(session: Session, join: JoinRequest) -> Deciders:
    """Mail the deciders of a new request and acknowledge it to the requester (in a request or a
    test_request_context: the links are absolute)."""
    who = deciders(session, join)
    # The requester's acknowledgment first: a long list of platform admins must not delay it.
    web.send_mail("join_request_sent", address(join.user), user=join.user, join=join, structure=join.structure,
                  moderation=who.moderation, link=url_for("join.index", _external=True))
    link = decide_link(join, who.moderation)
    for user in who.users:
        web.send_mail("join_request_moderation" if who.moderation else "join_request_new", address(user),
                      admin=user, join=join, requester=join.user, structure=join.structure, link=link)
    return who


@dataclass(frozen=True)
class ExpiryReport:
    expired: int
    reminded: int
    mails: int


def expire_and_remind(session: Session, now: datetime | None = None) -> ExpiryReport:
    """Expire the requests past their 15 days (the requester is told, and may ask again) and remind
    the deciders of those expiring within 3 days, once. Flushes; the caller commits.

    Needs an application and request context (a test_request_context is enough) for the links.
    """
    now = now or utcnow()
    expired, remind = due_join_requests(session, now)
    mails = 0
    for join in expired:
        again = url_for("join.start", siret=join.structure.siret, _external=True)
        web.send_mail("join_request_expired", address(join.user), user=join.user, join=join,
                      structure=join.structure, link=again)
        mails += 1
    for join in remind:
        who = deciders(session, join)
        link = decide_link(join, who.moderation)
        for user in who.users:
            web.send_mail("join_request_reminder", address(user), admin=user, join=join, requester=join.user,
                          structure=join.structure, link=link, moderation=who.moderation)
            mails += 1
    session.flush()
    return ExpiryReport(expired=len(expired), reminded=len(remind), mails=mails)


def run(app: Flask, now: datetime | None = None) -> ExpiryReport:
    """The `idp requests expire` command: one pass, committed, then the mail delivered in embedded
    mode (production runs `idp mail worker`)."""
    with web.offline_request(app):
        try:
            report = expire_and_remind(db.session, now)
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise
    return report


def designate_admin(session: Session, structure: Structure, origin: Origin) -> Membership | None:
    """SPEC §4.2: the structure's named account admin becomes admin at once when the account exists
    (and is told so); otherwise they are invited by e-mail to create it (verifying its e-mail then
    makes them admin). For the service API and `idp structure create`; needs a request context
    (a test_request_context is enough) for the absolute links."""
    if not structure.admin_email:
        return None
    membership = apply_admin_email(session, structure, origin)
    if membership is not None:
        web.send_mail("structure_admin_designated", structure.admin_email, structure=structure,
                      user=membership.user, link=url_for("manage.index", structure_id=structure.id, _external=True))
    else:
        web.send_mail("structure_admin_invited", structure.admin_email, structure=structure,
                      link=url_for("auth.signup", _external=True))
    return membership
