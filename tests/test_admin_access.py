"""Only platform admins reach the console: every URL, GET and POST (SPEC §4.3 last paragraph)."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import csrf_token
from test_accounts_helpers import login
from test_admin_helpers import attach, join_request, make_structure

URLS = [
    "/admin/",
    "/admin/moderation",
    "/admin/moderation/{request}",
    "/admin/moderation/{request}/decline",
    "/admin/structures",
    "/admin/structures/new",
    "/admin/structures/{structure}",
    "/admin/structures/{structure}/members",
    "/admin/structures/{structure}/entitlements",
    "/admin/applications",
    "/admin/applications/sam",
    "/admin/applications/sam/roles",
    "/admin/profiles",
    "/admin/profiles/new",
    "/admin/profiles/{profile}",
    "/admin/clients",
    "/admin/clients/new",
    "/admin/clients/{client}",
    "/admin/clients/{client}/secret",
    "/admin/users",
    "/admin/users/{user}",
    "/admin/users/{user}/block",
    "/admin/users/{user}/delete",
    "/admin/users/{user}/make_admin",
    "/admin/keys",
    "/admin/keys/rotate",
    "/admin/audit",
    "/admin/audit.csv",
]

POST_ONLY = {"/admin/moderation/{request}/decline", "/admin/applications/sam/roles", "/admin/keys/rotate"}


@pytest.fixture(scope="module")
def targets(app: Any) -> dict[str, Any]:
    """Real ids for every URL, so that a refusal can't be a 404 in disguise."""
    from sqlalchemy import select

    from idp.core.accounts import create_user
    from idp.core.security import SYSTEM
    from idp.extensions import db
    from idp.models import Client, Profile

    structure = make_structure(app, name="Structure cible")
    with app.app_context():
        user = create_user(db.session, app.extensions["hasher"], SYSTEM, email="cible-acces@example.test",
                           password=None, given_name="Cible", family_name="Accès", verified=True)
        db.session.commit()
        user_id = user.id
        profile = db.session.scalar(select(Profile.id).limit(1))
        from idp.oidc.clients import ClientSpec, create_client

        client, _ = create_client(db.session, ClientSpec(name="Cible", grant_types=["client_credentials"]), SYSTEM)
        db.session.commit()
        client_pk = db.session.scalar(select(Client.id).where(Client.client_id == client.client_id))
    request = join_request(app, user_id, structure.id)
    return {"structure": structure.id, "user": user_id, "profile": profile, "client": client_pk, "request": request}


def _who(app: Any, create_account: Any, kind: str) -> str:
    account = create_account()
    structure = make_structure(app, name=f"Structure {kind}")
    attach(app, account.id, structure.id, roles=("sam:redacteur",), admin=kind == "structure_admin",
           suspended=kind == "suspended_member")
    return account.email


@pytest.mark.parametrize("kind", ["member", "structure_admin", "suspended_member"])
def test_non_admins_get_403_everywhere(app: Any, testclient: Any, create_account: Any, targets: dict[str, Any],
                                       kind: str) -> None:
    email = _who(app, create_account, kind)
    assert login(testclient, email).status_code == 302
    token = csrf_token(testclient.get("/account/").text)
    for url in URLS:
        path = url.format(**targets)
        expected_get = 405 if url in POST_ONLY else 403
        assert testclient.get(path).status_code == expected_get, ("GET", path)
        response = testclient.post(path, data={"csrf_token": token, "name": "x", "roles": "1", "confirmed": "1"})
        assert response.status_code in (403, 405), ("POST", path, response.status_code)
        if response.status_code == 405:
            assert url not in POST_ONLY
    assert "Administration" not in testclient.get("/account/").text.split("<main>")[0]


def test_anonymous_goes_to_login(testclient: Any, targets: dict[str, Any]) -> None:
    for url in URLS:
        if url in POST_ONLY:
            continue
        path = url.format(**targets)
        response = testclient.get(path)
        assert response.status_code == 302 and "/login?next=" in response.headers["Location"], path
    # A POST without a session is refused before anything happens (CSRF, then login).
    assert testclient.post("/admin/keys/rotate").status_code in (302, 400)


def test_an_admin_blocked_meanwhile_loses_the_console(app: Any, testclient: Any, create_account: Any) -> None:
    from idp.core.accounts import block, find_user
    from idp.core.security import SYSTEM
    from idp.extensions import db

    admin = create_account(admin=True)
    login(testclient, admin.email)
    assert testclient.get("/admin/").status_code == 200
    with app.app_context():
        block(db.session, find_user(db.session, admin.email), None, SYSTEM)
        db.session.commit()
    response = testclient.get("/admin/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_post_without_csrf_is_refused(app: Any, testclient: Any, create_account: Any) -> None:
    admin = create_account(admin=True)
    login(testclient, admin.email)
    response = testclient.post("/admin/keys/rotate")
    assert response.status_code == 400 and "formulaire a expiré" in response.text


def test_a_platform_admin_sees_every_page(app: Any, testclient: Any, create_account: Any,
                                          targets: dict[str, Any]) -> None:
    admin = create_account(admin=True)
    login(testclient, admin.email)
    for url in URLS:
        if url in POST_ONLY:
            continue
        path = url.format(**targets)
        response = testclient.get(path)
        assert response.status_code == 200, (path, response.status_code)
        assert response.headers["Cache-Control"] == "no-store", path  # personal data: never cached
        if response.mimetype == "text/html":
            assert "Administration de la plateforme" in response.text, path
