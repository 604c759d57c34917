"""Ending access: IdP sessions ended, refresh tokens revoked, relying parties told over the
back channel (OIDC Back-Channel Logout 1.0; SPEC §4.7, §5.3)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests
from flask import Flask, current_app
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from idp.core.security import random_token
from idp.models import Client, ClientSession, LoginSession, RefreshToken, utcnow

log = logging.getLogger(__name__)
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


@dataclass(frozen=True)
class LogoutNotice:
    uri: str
    logout_token: str
    client_id: str


def sessions_ended(session: Session, logins: Iterable[LoginSession]) -> None:
    """Call after revoking IdP sessions (logout, "my sessions" revoke): their refresh tokens go,
    and every client they signed in to is told."""
    sids = [login.id for login in logins]
    if not sids:
        return
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.sid.in_(sids), RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    notify_client_sessions(session, select(ClientSession).where(ClientSession.sid.in_(sids)))


def user_access_ended(session: Session, user_id: uuid.UUID) -> None:
    """Call when an account stops being usable (blocked, deactivated, deleted, password reset):
    revokes every IdP session and refresh token of the user and tells the clients."""
    now = utcnow()
    session.execute(
        update(LoginSession)
        .where(LoginSession.user_id == user_id, LoginSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    notify_client_sessions(session, select(ClientSession).where(ClientSession.user_id == user_id))


def notify_client_sessions(session: Session, client_sessions_query: object) -> None:
    """Sign one logout token per (client, sid) and hand them to the sender; forget the pairs."""
    from idp.oidc.provider import issuer

    rows = list(session.scalars(client_sessions_query))  # type: ignore[call-overload]
    if not rows:
        return
    clients = {
        c.client_id: c
        for c in session.scalars(select(Client).where(Client.client_id.in_({r.client_id for r in rows})))
    }
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
        token = issuer().sign(session, claims, client.id_token_signed_response_alg, typ="logout+jwt")
        notices.append(LogoutNotice(client.backchannel_logout_uri, token, client.client_id))
        session.delete(row)
    if notices:
        current_app.extensions["backchannel"].send(notices)


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
