"""Ending access: refresh tokens revoked, relying parties told over the back channel (OIDC
Back-Channel Logout 1.0; SPEC §4.7, §5.3).

The core announces who lost access (`idp.core.signals`); `init_app` subscribes this module to those
signals. Each receiver works in the transaction that sent the signal: the refresh tokens are revoked
and the (client, sid) pairs forgotten with it, and the signed logout tokens wait for its commit
before they are posted (a rolled-back change tells no relying party anything).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests
from flask import Flask, current_app
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from idp.core import signals
from idp.core.security import random_token
from idp.models import Client, ClientSession, LoginSession, RefreshToken, utcnow

log = logging.getLogger(__name__)
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
# Session.info: the logout tokens waiting for the commit, and the sender that will post them.
_NOTICES_KEY = "portail.logout_notices"
_SENDER_KEY = "portail.backchannel"


@dataclass(frozen=True)
class LogoutNotice:
    uri: str
    logout_token: str
    client_id: str


def sessions_ended(session: Session, logins: Iterable[LoginSession]) -> None:
    """IdP sessions were revoked (logout, "my sessions", another person logging in on this browser):
    their refresh tokens go, and every client they signed in to is told."""
    _end_sids(session, [login.id for login in logins])


def _end_sids(session: Session, sids: list[str]) -> None:
    if not sids:
        return
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.sid.in_(sids), RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    notify_client_sessions(session, select(ClientSession).where(ClientSession.sid.in_(sids)))


def user_access_ended(session: Session, user_id: uuid.UUID) -> None:
    """An account stopped being usable (its IdP sessions are revoked by the core): every refresh
    token of the user goes, and every client they signed in to is told."""
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    notify_client_sessions(session, select(ClientSession).where(ClientSession.user_id == user_id))


def apps_access_lost(session: Session, user_id: uuid.UUID, apps: Iterable[str]) -> None:
    """Someone lost roles of these applications: their refresh tokens for these applications'
    clients stop at once, and those clients get a back-channel logout (SPEC §5.3 freshness)."""
    clients = select(Client.client_id).where(Client.app.in_(set(apps))).scalar_subquery()
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.client_id.in_(clients),
               RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    notify_client_sessions(session, select(ClientSession).where(
        ClientSession.user_id == user_id, ClientSession.client_id.in_(clients)))


def notify_client_sessions(session: Session, client_sessions_query: object) -> None:
    """Sign one logout token per (client, sid), forget the pairs, and queue the tokens for the commit."""
    rows = list(session.scalars(client_sessions_query))  # type: ignore[call-overload]
    if not rows:
        return
    clients = {
        c.client_id: c
        for c in session.scalars(select(Client).where(Client.client_id.in_({r.client_id for r in rows})))
    }
    issuer = current_app.extensions["token_issuer"]
    notices = []
    now = int(time.time())
    for row in rows:
        client = clients.get(row.client_id)
        if client is None or not client.backchannel_logout_uri:
            continue
        claims = {
            "iss": current_app.config["ISSUER"], "aud": client.client_id, "iat": now, "exp": now + 120,
            "jti": random_token(16), "sub": str(row.user_id), "sid": row.sid, "events": {BACKCHANNEL_EVENT: {}},
        }
        token = issuer.sign(session, claims, client.id_token_signed_response_alg, typ="logout+jwt")
        notices.append(LogoutNotice(client.backchannel_logout_uri, token, client.client_id))
        session.delete(row)
    session.flush()
    if notices:
        session.info.setdefault(_NOTICES_KEY, []).extend(notices)
        session.info[_SENDER_KEY] = current_app.extensions["backchannel"]


# ------------------------------------------------------------------ the core's signals

def _on_access_lost(session: Session, *, user_id: uuid.UUID, apps: Iterable[str], **_: Any) -> None:
    apps_access_lost(session, user_id, apps)


def _on_account_closed(session: Session, *, user_id: uuid.UUID, **_: Any) -> None:
    user_access_ended(session, user_id)


def _on_sessions_ended(session: Session, *, sids: list[str], **_: Any) -> None:
    _end_sids(session, sids)


def _send_after_commit(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint released: the transaction goes on
        return
    notices = session.info.pop(_NOTICES_KEY, None)
    sender = session.info.pop(_SENDER_KEY, None)
    if notices and sender is not None:
        sender.send(notices)


def _forget_on_rollback(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint rolled back: what came before it stands
        return
    session.info.pop(_NOTICES_KEY, None)
    session.info.pop(_SENDER_KEY, None)


def init_app(app: Flask) -> None:
    """Subscribe to the core's signals (once per process: blinker keeps one connection per receiver)
    and post the logout tokens after each commit."""
    app.extensions["backchannel"] = BackchannelSender(app)
    signals.access_lost.connect(_on_access_lost)
    signals.account_closed.connect(_on_account_closed)
    signals.sessions_ended.connect(_on_sessions_ended)
    if not event.contains(Session, "after_commit", _send_after_commit):
        event.listen(Session, "after_commit", _send_after_commit)
        event.listen(Session, "after_rollback", _forget_on_rollback)


class BackchannelSender:
    """Posts logout tokens from a small thread pool so a logout never waits on a slow RP."""

    def __init__(self, app: Flask) -> None:
        self.timeout = app.config["BACKCHANNEL_LOGOUT_TIMEOUT"]
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="backchannel")
        self.http = requests.Session()

    def send(self, notices: list[LogoutNotice]) -> None:
        for notice in notices:
            self.pool.submit(self._post, notice)

    def _post(self, notice: LogoutNotice) -> None:
        for attempt in range(3):
            try:
                response = self.http.post(notice.uri, data={"logout_token": notice.logout_token},
                                          timeout=self.timeout, allow_redirects=False)
                if response.status_code in (200, 204):
                    return
                log.warning("back-channel logout to %s answered %s", notice.client_id, response.status_code)
            except requests.RequestException as exc:
                log.warning("back-channel logout to %s failed: %s", notice.client_id, exc)
            time.sleep(0.5 * (attempt + 1))
