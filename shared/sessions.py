"""Server-side sessions in the relying party's own database (SPEC §6).

The browser holds only a random key; the row holds the Flask session data and, apart from it,
the login: subject, IdP session id (`sid`), claims and tokens. Keeping the login in its own
columns lets the back-channel logout end sessions by `sid` or `sub` with one statement, and
lets a token refresh rotate the tokens without racing against a request that saves its flash
messages at the same time.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin, session_json_serializer
from sqlalchemy import (
    Column,
    Engine,
    Float,
    String,
    Table,
    Text,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.datastructures import CallbackDict

from shared.tables import shell_metadata

# Created with the app's schema by `shared.migrations.upgrade()`.
sso_sessions = Table(
    "sso_sessions",
    shell_metadata,
    Column("key_digest", String(64), primary_key=True),
    Column("data", Text, nullable=False, default="{}"),
    Column("sub", String(255), index=True),
    Column("sid", String(255), index=True),
    Column("claims", Text),
    Column("tokens", Text),
    Column("claims_read_at", Float),
    Column("refreshing_until", Float),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False, index=True),
)


def _digest(key: str) -> str:
    # The database never holds a usable cookie value.
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass
class Login:
    """Who is logged in on this browser session, as the IdP last said."""

    sub: str
    sid: str | None
    claims: dict[str, Any]
    tokens: dict[str, Any]
    claims_read_at: float


class SessionStore:
    """Rows of `sso_sessions` through short transactions of their own.

    :param engine: the relying party's database.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def load(self, key: str) -> tuple[dict[str, Any], Login | None] | None:
        """The data and login of a live session, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(sso_sessions).where(sso_sessions.c.key_digest == _digest(key),
                                                          sso_sessions.c.expires_at > time.time())).first()
        if row is None:
            return None
        login = None
        if row.sub and row.claims and row.tokens:
            login = Login(row.sub, row.sid, json.loads(row.claims), json.loads(row.tokens), row.claims_read_at or 0.0)
        return session_json_serializer.loads(row.data), login

    def create(self, data: dict[str, Any], lifetime: float, login: Login | None = None) -> str:
        """A new row; returns the key for the cookie."""
        key = secrets.token_urlsafe(32)
        now = time.time()
        values: dict[str, Any] = {"key_digest": _digest(key), "data": session_json_serializer.dumps(data),
                                  "created_at": now, "expires_at": now + lifetime}
        if login is not None:
            values.update(sub=login.sub, sid=login.sid, claims=json.dumps(login.claims),
                          tokens=json.dumps(login.tokens), claims_read_at=login.claims_read_at)
        with self.engine.begin() as conn:
            conn.execute(insert(sso_sessions).values(**values))
        return key

    def save_data(self, key: str, data: dict[str, Any]) -> bool:
        """Store the Flask session data; False when the row is gone (ended meanwhile)."""
        with self.engine.begin() as conn:
            result = conn.execute(update(sso_sessions).where(sso_sessions.c.key_digest == _digest(key))
                                  .values(data=session_json_serializer.dumps(data)))
        return result.rowcount > 0

    def delete(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(sso_sessions).where(sso_sessions.c.key_digest == _digest(key)))

    def claim_refresh(self, key: str, hold: float = 15.0) -> bool:
        """Take the right to refresh this session's tokens; only one request at a time gets it
        (rotation: a refresh token presented twice would revoke the whole family)."""
        now = time.time()
        with self.engine.begin() as conn:
            result = conn.execute(
                update(sso_sessions)
                .where(sso_sessions.c.key_digest == _digest(key),
                       or_(sso_sessions.c.refreshing_until.is_(None), sso_sessions.c.refreshing_until < now))
                .values(refreshing_until=now + hold)
            )
        return result.rowcount > 0

    def refreshed(self, key: str, claims: dict[str, Any], tokens: dict[str, Any]) -> bool:
        """Store fresh claims and rotated tokens; False when the session ended meanwhile."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(sso_sessions).where(sso_sessions.c.key_digest == _digest(key))
                .values(claims=json.dumps(claims), tokens=json.dumps(tokens), claims_read_at=time.time(),
                        refreshing_until=None)
            )
        return result.rowcount > 0

    def end(self, *, sid: str | None = None, sub: str | None = None) -> int:
        """End the sessions of an IdP session (`sid`), or of a subject when no `sid` is given
        (OIDC Back-Channel Logout 1.0 §2.4); returns how many ended."""
        if sid:
            condition = sso_sessions.c.sid == sid
            if sub:
                condition = condition & (sso_sessions.c.sub == sub)
        elif sub:
            condition = sso_sessions.c.sub == sub
        else:
            return 0
        with self.engine.begin() as conn:
            return conn.execute(delete(sso_sessions).where(condition)).rowcount

    def purge(self) -> int:
        """Forget expired rows."""
        with self.engine.begin() as conn:
            return conn.execute(delete(sso_sessions).where(sso_sessions.c.expires_at <= time.time())).rowcount


class ServerSession(CallbackDict, SessionMixin):  # type: ignore[type-arg]
    """The Flask session object: a dict, its row key, and the login kept beside it."""

    def __init__(self, initial: dict[str, Any] | None = None, key: str | None = None,
                 login: Login | None = None) -> None:
        def on_update(_self: Any) -> None:
            self.modified = True
            self.accessed = True

        super().__init__(initial or {}, on_update)
        self.key = key
        self.login = login
        self.new = key is None
        self.modified = False
        self.pending_login: Login | None = None  # set by the callback: a new row, a new key
        self.ended = False  # set by logout or a failed refresh: forget the row and the cookie
        self.unavailable = False  # the database could not be read: the request answers 503


class ServerSessionInterface(SessionInterface):
    """Flask's session interface over `SessionStore`."""

    def __init__(self, store: SessionStore, lifetime: float) -> None:
        self.store = store
        self.lifetime = lifetime

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        key = request.cookies.get(self.get_cookie_name(app))
        if key and len(key) < 100:
            try:
                found = self.store.load(key)
            except SQLAlchemyError:
                # Outside the request's error handling: flag it, the shell answers 503 at once.
                unavailable = ServerSession(key=key)
                unavailable.unavailable = True
                return unavailable
            if found is not None:
                data, login = found
                return ServerSession(data, key=key, login=login)
        return ServerSession()

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        assert isinstance(session, ServerSession)
        if session.unavailable:
            return
        name, domain, path = self.get_cookie_name(app), self.get_cookie_domain(app), self.get_cookie_path(app)
        if session.pending_login is not None:
            # Login: a fresh key (no session fixation), the old row goes.
            if session.key:
                self.store.delete(session.key)
            session.key = self.store.create(dict(session), self.lifetime, session.pending_login)
            self._set_cookie(app, response, session.key)
            return
        if session.ended:
            if session.key:
                self.store.delete(session.key)
            response.delete_cookie(name, domain=domain, path=path)
            return
        if not session.modified:
            return
        if session.key is None:
            if session:
                session.key = self.store.create(dict(session), self.lifetime)
                self._set_cookie(app, response, session.key)
            return
        if not self.store.save_data(session.key, dict(session)):
            response.delete_cookie(name, domain=domain, path=path)  # ended by a back-channel logout

    def _set_cookie(self, app: Flask, response: Response, key: str) -> None:
        response.set_cookie(
            self.get_cookie_name(app), key, domain=self.get_cookie_domain(app), path=self.get_cookie_path(app),
            httponly=self.get_cookie_httponly(app), secure=self.get_cookie_secure(app),
            samesite=self.get_cookie_samesite(app), max_age=int(self.lifetime),
        )
        response.vary.add("Cookie")
