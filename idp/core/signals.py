"""What the core announces when someone's access ends (blinker signals, as Flask's own: STYLE, "signals
between features"; SPEC §4.7, §5.3).

The core sends them inside the transaction that makes the change, after flushing it; the sender is
the SQLAlchemy session. Whoever must act on them subscribes: `idp.oidc.logout` revokes the refresh
tokens and tells the relying parties over the back channel, in the same transaction. The core never
imports `idp.oidc`, and a path that ends access says so in its own code.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from blinker import Namespace
from sqlalchemy.orm import Session

from idp.models import AccessGrant, LoginSession

_signals = Namespace()

#: Someone lost roles of applications (a grant removed or given an end, a membership suspended or
#: detached, an entitlement withdrawn). Keyword arguments: ``user_id``, ``apps`` (application names).
access_lost = _signals.signal("access-lost")

#: An account stopped being usable (blocked, deactivated, deleted, password reset): its IdP sessions
#: are revoked already. Keyword argument: ``user_id``.
account_closed = _signals.signal("account-closed")

#: IdP login sessions ended (revoked by their owner or an operator). Keyword argument: ``sids``.
sessions_ended = _signals.signal("sessions-ended")


def announce_access_lost(session: Session, grants: Iterable[AccessGrant], user_id: uuid.UUID | None = None) -> None:
    """Send `access_lost` once per person for these grants' applications (flushes first).

    :param user_id: whose grants these are, when known (else read from each grant's membership).
    """
    apps: dict[uuid.UUID, set[str]] = {}
    for grant in grants:
        holder = user_id if user_id is not None else grant.membership.user_id
        apps.setdefault(holder, set()).add(grant.role.app)
    if not apps:
        return
    session.flush()
    for holder, names in apps.items():
        access_lost.send(session, user_id=holder, apps=frozenset(names))


def announce_sessions_ended(session: Session, logins: Iterable[LoginSession]) -> None:
    """Send `sessions_ended` for these (already revoked) login sessions (flushes first)."""
    sids = [login.id for login in logins]
    if sids:
        session.flush()
        sessions_ended.send(session, sids=sids)


def announce_account_closed(session: Session, user_id: uuid.UUID) -> None:
    """Send `account_closed` (flushes first)."""
    session.flush()
    account_closed.send(session, user_id=user_id)
