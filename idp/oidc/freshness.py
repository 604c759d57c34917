"""Freshness of the claims (SPEC §5.3, §4.7): the accounts whose structure claims may change (any
membership, grant, structure, role, legacy link or join request written through the ORM) get their
`updated_at` stamped in the same transaction, so every worker's claims cache
(`idp.oidc.claims.ClaimsCache`, keyed on that stamp) misses from the commit on. Bulk statements:
call `note_claims_changed()`.

This stays a session hook on purpose: it is a cache's invalidation, owed to every write whatever its
path, and it changes no one's access. Losing access is announced explicitly by the core
(`idp.core.signals`), and `idp.oidc.logout` acts on it.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import event, inspect, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from idp.models import (
    AccessGrant,
    AppRole,
    JoinRequest,
    Membership,
    Structure,
    User,
    utcnow,
)
from idp.models.legacy import LegacyLink

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


def init_app(app: Flask) -> None:
    factory: sessionmaker[Session] = app.extensions["sqlalchemy"].session.session_factory
    event.listen(factory, "before_flush", _collect_stamps)
    event.listen(factory, "before_commit", _apply_stamps)
