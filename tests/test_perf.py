"""Hot paths (issue 2 item 9): how many SQL statements each request costs, never how long it takes.

The client cache must not delay a change: a regenerated secret or a removed client is refused at
once in this process (other processes: within CLIENT_CACHE_SECONDS). Every issued token is still
audited (SPEC §4.5).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import requests
from sqlalchemy import event, select

from idp.extensions import db
from tests.oidc_helpers import authorize_url, browse, code_flow, exchange, pkce_pair, query, refresh

SCOPE = "openid profile email structures"


@contextlib.contextmanager
def statements(app: Any) -> Iterator[list[str]]:
    """The SQL statements the app's engine runs inside the block (COMMIT included)."""
    seen: list[str] = []
    with app.app_context():
        engine = db.engine

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.startswith("BEGIN"):  # SQLite's BEGIN IMMEDIATE; PostgreSQL's is implicit
            seen.append(" ".join(statement.split())[:120])

    def on_commit(_conn: Any) -> None:
        seen.append("COMMIT")

    event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(engine, "commit", on_commit)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
        event.remove(engine, "commit", on_commit)


def _client(create_client: Any) -> tuple[str, str]:
    client_id, secret = create_client(grant_types=["authorization_code", "refresh_token", "client_credentials"],
                                      trusted=True, scope=SCOPE, app="sam")
    assert secret
    return client_id, secret


def _client_credentials(issuer: str, client_id: str, secret: str) -> requests.Response:
    return requests.post(f"{issuer}/oauth/token", data={"grant_type": "client_credentials"},
                         auth=(client_id, secret), timeout=10)


def _audited(app: Any, client_id: str) -> list[str]:
    from idp.extensions import db
    from idp.models import AuditEvent

    with app.app_context():
        rows = db.session.scalars(select(AuditEvent).where(AuditEvent.client_id == client_id,
                                                           AuditEvent.event == "token.issued")).all()
        return [row.details["grant_type"] for row in rows]


def test_token_paths_run_few_statements(app: Any, live_server: str, browser: requests.Session,
                                        create_account: Any, create_client: Any) -> None:
    client_id, secret = _client(create_client)
    account = create_account()
    first = code_flow(live_server, browser, client_id, secret, account.email, scope=SCOPE)
    verifier, challenge = pkce_pair()
    code = query(browse(browser, authorize_url(live_server, client_id, scope=SCOPE, challenge=challenge)))["code"]

    # Code exchange: consume the code (with the active user), claims, refresh token + audit, commit.
    with statements(app) as seen:
        response = exchange(live_server, code, client_id, secret, verifier)
    assert response.status_code == 200, response.text
    assert not [s for s in seen if "oauth_clients" in s], seen  # the client comes from the cache
    assert len(seen) <= 6, seen  # 3 and COMMIT on PostgreSQL (the CTEs), 5 and COMMIT on SQLite
    assert seen[-1] == "COMMIT"

    with statements(app) as seen:
        rotated = refresh(live_server, first["refresh_token"], client_id, secret)
    assert rotated.status_code == 200, rotated.text
    assert not [s for s in seen if "oauth_clients" in s], seen
    assert len(seen) <= 7, seen

    # userinfo: one query for the user (revocation and session included), then the claims (legacy
    # ids included).
    with statements(app) as seen:
        me = requests.get(f"{live_server}/oauth/userinfo",
                          headers={"Authorization": f"Bearer {rotated.json()['access_token']}"}, timeout=10)
    assert me.status_code == 200 and me.json()["email"] == account.email
    assert not [s for s in seen if "oauth_clients" in s or s == "COMMIT"], seen
    assert len(seen) <= 2, seen
    # Asked again: the structure claims come from the worker's cache, checked against the account's
    # stamp read in that one statement (account, token and session revocation, current structure).
    with statements(app) as seen:
        again = requests.get(f"{live_server}/oauth/userinfo",
                             headers={"Authorization": f"Bearer {rotated.json()['access_token']}"}, timeout=10)
    assert again.json() == me.json()
    assert len(seen) == 1 and "users" in seen[0], seen

    # Introspection of a user's access token: the client from the cache, one statement.
    with statements(app) as seen:
        intro = requests.post(f"{live_server}/oauth/introspect", data={"token": rotated.json()["access_token"]},
                              auth=(client_id, secret), timeout=10)
    assert intro.status_code == 200 and intro.json()["active"] is True, intro.text
    assert len(seen) == 1, seen

    # client_credentials: the audit row is the only write.
    with statements(app) as seen:
        assert _client_credentials(live_server, client_id, secret).status_code == 200
    assert len([s for s in seen if s != "COMMIT"]) <= 1, seen

    # Discovery and JWKS: prebuilt bytes, nothing read.
    requests.get(f"{live_server}/oauth/jwks", timeout=10)
    with statements(app) as seen:
        discovery = requests.get(f"{live_server}/.well-known/openid-configuration", timeout=10)
        jwks = requests.get(f"{live_server}/oauth/jwks", timeout=10)
    assert seen == []
    assert discovery.json()["issuer"] == live_server and jwks.json()["keys"]
    for response in (discovery, jwks):
        assert response.headers["Content-Type"] == "application/json"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"].startswith("public, max-age=")

    # Every issuance is still audited, whatever the grant.
    assert sorted(_audited(app, client_id)) == sorted(
        ["authorization_code", "authorization_code", "refresh_token", "client_credentials"])


def test_regenerated_secret_is_refused_at_once(app: Any, live_server: str, create_client: Any) -> None:
    from idp.core.platform import get_client, regenerate_secret
    from idp.core.security import SYSTEM
    from idp.extensions import db
    from idp.models import Client

    client_id, secret = _client(create_client)
    assert _client_credentials(live_server, client_id, secret).status_code == 200  # now cached
    with app.app_context():
        pk = db.session.scalar(select(Client.id).where(Client.client_id == client_id))
        new_secret = regenerate_secret(db.session, get_client(db.session, pk), SYSTEM, actor=None)  # type: ignore[arg-type]
        db.session.commit()
    old = _client_credentials(live_server, client_id, secret)
    assert old.status_code == 401 and old.json()["error"] == "invalid_client"
    assert _client_credentials(live_server, client_id, new_secret).status_code == 200


def test_removed_or_deactivated_client_is_refused_at_once(app: Any, live_server: str, create_client: Any) -> None:
    from idp.extensions import db
    from idp.models import Client

    kept_id, kept_secret = _client(create_client)
    gone_id, gone_secret = _client(create_client)
    for client_id, secret in ((kept_id, kept_secret), (gone_id, gone_secret)):
        assert _client_credentials(live_server, client_id, secret).status_code == 200
    with app.app_context():
        db.session.scalar(select(Client).where(Client.client_id == kept_id)).active = False  # type: ignore[union-attr]
        db.session.delete(db.session.scalar(select(Client).where(Client.client_id == gone_id)))
        db.session.commit()
    for client_id, secret in ((kept_id, kept_secret), (gone_id, gone_secret)):
        response = _client_credentials(live_server, client_id, secret)
        assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_blocked_user_is_refused_at_once_despite_caches(app: Any, live_server: str, browser: requests.Session,
                                                        create_account: Any, create_client: Any) -> None:
    from idp.extensions import db
    from idp.models import AccountState, User

    client_id, secret = _client(create_client)
    account = create_account()
    token = code_flow(live_server, browser, client_id, secret, account.email, scope=SCOPE)
    with app.app_context():
        db.session.get(User, account.id).state = AccountState.BLOCKED  # type: ignore[union-attr]
        db.session.commit()
    me = requests.get(f"{live_server}/oauth/userinfo",
                      headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=10)
    assert me.status_code == 401
    again = refresh(live_server, token["refresh_token"], client_id, secret)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_published_documents_answer_304_to_a_matching_etag(app: Any, live_server: str) -> None:
    """Discovery and JWKS: the same bytes and ETag every time (built once per key-set change), a
    304 without a body for a relying party that has them, through the WSGI shortcut and through
    the Flask views alike."""
    from idp.oidc.keys import etag_of

    for path in ("/.well-known/openid-configuration", "/oauth/jwks"):
        first = requests.get(f"{live_server}{path}", timeout=10)
        etag = first.headers["ETag"]
        assert etag == etag_of(first.content)
        assert requests.get(f"{live_server}{path}", timeout=10).content == first.content
        for sent in (etag, f"W/{etag}", f'"other", {etag}', "*"):
            cached = requests.get(f"{live_server}{path}", headers={"If-None-Match": sent}, timeout=10)
            assert cached.status_code == 304 and cached.content == b"", (path, sent)
            assert cached.headers["ETag"] == etag
            assert cached.headers["Cache-Control"] == first.headers["Cache-Control"]
        changed = requests.get(f"{live_server}{path}", headers={"If-None-Match": '"other"'}, timeout=10)
        assert changed.status_code == 200 and changed.content == first.content
        # The Flask view (a query string skips the shortcut) answers the same way.
        view = app.test_client().get(f"{path}?via=flask", headers={"If-None-Match": etag})
        assert view.status_code == 304 and view.headers["ETag"] == etag
        # Public documents: nothing varies by cookie, so shared caches may keep them.
        full = app.test_client().get(f"{path}?via=flask")
        assert full.status_code == 200 and "Cookie" not in full.headers.get("Vary", ""), full.headers


def test_jwks_changes_etag_with_the_key_set(app: Any, live_server: str) -> None:
    from idp.extensions import db
    from idp.oidc.keys import rotate_keys

    before = requests.get(f"{live_server}/oauth/jwks", timeout=10)
    keyring = app.extensions["token_issuer"].keyring
    with app.app_context():
        keyring.refresh(db.session, force=True)
        assert keyring.jwks_bytes(db.session) is keyring.jwks_bytes(db.session)
        unchanged = keyring._jwks_bytes
        keyring.refresh(db.session, force=True)
        assert keyring._jwks_bytes is unchanged  # nothing changed: not re-serialised
        rotate_keys(db.session, app.config)
        db.session.commit()
        keyring.refresh(db.session, force=True)
    after = requests.get(f"{live_server}/oauth/jwks", timeout=10)
    assert after.headers["ETag"] != before.headers["ETag"]
    assert len(after.json()["keys"]) > len(before.json()["keys"])
    stale = requests.get(f"{live_server}/oauth/jwks", headers={"If-None-Match": before.headers["ETag"]}, timeout=10)
    assert stale.status_code == 200
