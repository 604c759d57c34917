"""Freshness (SPEC §5.3, §4.7): when someone loses application roles — a grant removed or ended,
a membership suspended or detached — their refresh tokens for that application's clients stop at
once and those clients get a back-channel logout, whatever code path made the change.

The domain core stays unaware of OAuth: this module watches the ORM session for the changes that
take roles away, and acts in the same transaction, just before it commits. Bulk statements
(`delete(AccessGrant)...`) bypass the ORM: call `note_access_lost()` for them.

It also stamps the accounts whose structure claims may change (any membership, grant, structure,
role, legacy link or join request written through the ORM): their `updated_at` is set in the same
transaction, so every worker's claims cache (`idp.oidc.claims.ClaimsCache`, keyed on that stamp)
misses from the commit on. Bulk statements: call `note_claims_changed()`.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from flask import Flask, has_app_context
from sqlalchemy import event, inspect, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from idp.models import (
    AccessGrant,
    AppRole,
    Client,
    ClientSession,
    JoinRequest,
    Membership,
    MembershipStatus,
    RefreshToken,
    Structure,
    User,
    utcnow,
)
from idp.models.legacy import LegacyLink

_KEY = "portail.access_lost"
_STAMP_KEY = "portail.claims_changed"


def note_claims_changed(session: Session, *, user_ids: Any = (), membership_ids: Any = (),
                        structure_ids: Any = (), role_ids: Any = ()) -> None:
    """Record that these accounts' structure claims may change in this transaction (directly, or as
    members of these memberships or structures, or holders of these roles)."""
    pending = session.info.setdefault(_STAMP_KEY, {"users": set(), "memberships": set(), "structures": set(),
                                                   "roles": set()})
    pending["users"].update(i for i in user_ids if i is not None)
    pending["memberships"].update(i for i in membership_ids if i is not None)
    pending["structures"].update(i for i in structure_ids if i is not None)
    pending["roles"].update(i for i in role_ids if i is not None)


def _changed(obj: Any, *names: str) -> bool:
    state = inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in names)


def _collect_stamps(session: Session, _flush_context: Any, _instances: Any) -> None:
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, (Membership, LegacyLink, JoinRequest)):
            user = getattr(obj, "user", None)
            note_claims_changed(session, user_ids=[obj.user_id or getattr(user, "id", None)],
                                membership_ids=[obj.id] if isinstance(obj, Membership) else [])
        elif isinstance(obj, AccessGrant):
            membership = obj.membership
            note_claims_changed(session, membership_ids=[obj.membership_id],
                                user_ids=[membership.user_id if membership is not None else None])
        elif isinstance(obj, Structure) and obj not in session.new:
            # Only what the claims show: an edit of the address does not stamp every member.
            if obj in session.deleted or _changed(obj, "name", "siret"):
                note_claims_changed(session, structure_ids=[obj.id])
        elif isinstance(obj, AppRole) and obj not in session.new and (
                obj in session.deleted or _changed(obj, "name", "app")):
            note_claims_changed(session, role_ids=[obj.id])


def _apply_stamps(session: Session) -> None:
    session.flush()  # collect what is still pending
    pending = session.info.pop(_STAMP_KEY, None)
    if not pending or not any(pending.values()):
        return
    m = Membership.__table__
    holders = []
    if pending["users"]:
        holders.append(User.id.in_(pending["users"]))
    if pending["memberships"]:
        holders.append(User.id.in_(select(m.c.user_id).where(m.c.id.in_(pending["memberships"]))))
    if pending["structures"]:
        holders.append(User.id.in_(select(m.c.user_id).where(m.c.structure_id.in_(pending["structures"]))))
    if pending["roles"]:
        g = AccessGrant.__table__
        holders.append(User.id.in_(select(m.c.user_id).join(g, g.c.membership_id == m.c.id)
                                   .where(g.c.role_id.in_(pending["roles"]))))
    # Core, not the ORM: nothing loaded, no version bump (stale-form checks are not disturbed).
    session.execute(update(User).where(or_(*holders)).values(updated_at=utcnow())
                    .execution_options(synchronize_session=False))


def note_access_lost(session: Session, user_id: uuid.UUID, app: str) -> None:
    """Record that `user_id` lost roles of `app` in this transaction."""
    session.info.setdefault(_KEY, set()).add((user_id, app))


def _grant_apps(membership: Membership) -> set[str]:
    return {grant.role.app for grant in membership.grants}


def _collect(session: Session, _flush_context: Any, _instances: Any) -> None:
    for obj in session.deleted:
        if isinstance(obj, AccessGrant):
            note_access_lost(session, obj.membership.user_id, obj.role.app)
        elif isinstance(obj, Membership):
            for app in _grant_apps(obj):
                note_access_lost(session, obj.user_id, app)
    for obj in session.dirty:
        if isinstance(obj, Membership):
            # A grant taken out of the collection is deleted as an orphan later in the flush.
            for grant in inspect(obj).attrs.grants.history.deleted:
                note_access_lost(session, obj.user_id, grant.role.app)
            status = inspect(obj).attrs.status.history
            if status.has_changes() and obj.status == MembershipStatus.SUSPENDED:
                for app in _grant_apps(obj):
                    note_access_lost(session, obj.user_id, app)
        elif isinstance(obj, AccessGrant):
            ends = inspect(obj).attrs.ends_at.history
            if ends.has_changes() and obj.ends_at is not None:
                note_access_lost(session, obj.membership.user_id, obj.role.app)


def _apply(session: Session) -> None:
    if not has_app_context():
        return
    session.flush()  # collect what is still pending
    lost = session.info.pop(_KEY, None)
    if not lost:
        return
    from idp.oidc.logout import notify_client_sessions

    by_app: dict[str, set[uuid.UUID]] = defaultdict(set)
    for user_id, app in lost:
        by_app[app].add(user_id)
    for app, user_ids in by_app.items():
        clients = select(Client.client_id).where(Client.app == app).scalar_subquery()
        session.execute(
            update(RefreshToken)
            .where(RefreshToken.user_id.in_(user_ids), RefreshToken.client_id.in_(clients),
                   RefreshToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        notify_client_sessions(session, select(ClientSession).where(
            ClientSession.user_id.in_(user_ids), ClientSession.client_id.in_(clients)))


def init_app(app: Flask) -> None:
    factory: sessionmaker[Session] = app.extensions["sqlalchemy"].session.session_factory
    event.listen(factory, "before_flush", _collect)
    event.listen(factory, "before_commit", _apply)
    event.listen(factory, "before_flush", _collect_stamps)
    event.listen(factory, "before_commit", _apply_stamps)  # after _apply: it may flush more changes
