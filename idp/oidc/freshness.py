"""Freshness (SPEC §5.3, §4.7): when someone loses application roles — a grant removed or ended,
a membership suspended or detached — their refresh tokens for that application's clients stop at
once and those clients get a back-channel logout, whatever code path made the change.

The domain core stays unaware of OAuth: this module watches the ORM session for the changes that
take roles away, and acts in the same transaction, just before it commits. Bulk statements
(`delete(AccessGrant)...`) bypass the ORM: call `note_access_lost()` for them.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from flask import Flask, has_app_context
from sqlalchemy import event, inspect, select, update
from sqlalchemy.orm import Session, sessionmaker

from idp.models import (
    AccessGrant,
    Client,
    ClientSession,
    Membership,
    MembershipStatus,
    RefreshToken,
    utcnow,
)

_KEY = "portail.access_lost"


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
    factory: sessionmaker[Session] = app.extensions["db"].session.session_factory
    event.listen(factory, "before_flush", _collect)
    event.listen(factory, "before_commit", _apply)
