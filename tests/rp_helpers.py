"""Helpers for the relying-party tests: REPERNET served in-process on a loopback port beside the
live IdP, people and structures made through the IdP's domain core, and a browser that logs in
to REPERNET through the IdP's real login form (no test shortcut in the protocol)."""

from __future__ import annotations

import os
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import pytest
import requests
from sqlalchemy import create_engine, text
from werkzeug.serving import make_server

from tests.conftest import PASSWORD, _free_port, forms, new_siret, unique_email
from tests.oidc_helpers import browse

RP_SECRET = "repernet-test-secret-" + "x" * 16




@dataclass
class RP:
    """A running relying party."""

    url: str
    app: Any
    client_id: str


# What each app needs at the IdP: its application, the scopes of its client, its own settings.
RP_SCOPES = {
    "repernet": "structures:read structures:write members:read",
    "sam": "catalogue:write repernet:read",
    "catalogue": "structures:read",
}


def app_database(folder: Any, name: str) -> Iterator[str]:
    """An app's own database on the suite's kind: a SQLite file, or in the PostgreSQL variant a
    database of its own on that server (dropped at the end)."""
    base = os.environ.get("IDP_TEST_DATABASE_URL")
    if not base:
        yield f"sqlite:///{folder / f'{name}.sqlite3'}"
        return
    database = f"portail_{name}_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{database}"'))
    yield base.rsplit("/", 1)[0] + "/" + database
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    admin.dispose()


def serve_rp(app: Any, live_server: str, folder: Any, name: str, **settings: Any) -> Iterator[RP]:
    """App `name` on a free loopback port, on the suite's kind of database, migrated, registered at
    the IdP as a trusted client."""
    import importlib

    from idp.core.security import SYSTEM
    from idp.extensions import db
    from idp.oidc.clients import ClientSpec, create_client
    from shared.migrations import upgrade

    module = importlib.import_module(f"apps.{name}")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    client_id = f"{name}-test-{uuid.uuid4().hex[:6]}"
    with app.app_context():
        create_client(db.session, ClientSpec(
            name=f"{name} (tests)", client_id=client_id, client_secret=RP_SECRET, app=name,
            redirect_uris=[f"{url}/auth/callback"], post_logout_redirect_uris=[f"{url}/"],
            backchannel_logout_uri=f"{url}/auth/backchannel-logout", trusted=True,
            grant_types=["authorization_code", "refresh_token", "client_credentials"],
            scope=f"openid profile email structures {RP_SCOPES[name]}"), SYSTEM)
        db.session.commit()
    databases = iter(()) if "DATABASE_URL" in settings else app_database(folder, name)
    rp_app = module.create_app({
        "TESTING": True,
        "SECRET_KEY": f"{name}-test-secret-key",
        "DATABASE_URL": settings.pop("DATABASE_URL", None) or next(databases),
        "OIDC_ISSUER": live_server,
        "OIDC_CLIENT_ID": client_id,
        "OIDC_CLIENT_SECRET": RP_SECRET,
        **settings,
    })
    upgrade(rp_app, module.db)
    server = make_server("127.0.0.1", port, rp_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield RP(url, rp_app, client_id)
    server.shutdown()
    with rp_app.app_context():
        module.db.engine.dispose()
    next(databases, None)


@pytest.fixture(scope="session")
def repernet(app: Any, live_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RP]:
    """REPERNET on a free loopback port beside the live IdP."""
    folder = tmp_path_factory.mktemp("repernet")
    yield from serve_rp(app, live_server, folder, "repernet", FILES_DIR=str(folder / "files"),
                        CHALLENGE_MIN_SECONDS=0, MAX_DOCUMENT_BYTES=64 * 1024, MAX_CONTENT_LENGTH=256 * 1024)


@pytest.fixture(scope="session")
def catalogue(app: Any, live_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RP]:
    """The Catalogue on a free loopback port beside the live IdP."""
    yield from serve_rp(app, live_server, tmp_path_factory.mktemp("catalogue"), "catalogue")


@pytest.fixture(scope="session")
def sam(app: Any, live_server: str, tmp_path_factory: pytest.TempPathFactory, catalogue: RP,
        repernet: RP) -> Iterator[RP]:
    """SAM on a free loopback port beside the live IdP, calling the Catalogue's and REPERNET's APIs."""
    folder = tmp_path_factory.mktemp("sam")
    yield from serve_rp(app, live_server, folder, "sam", FILES_DIR=str(folder / "files"),
                        CATALOGUE_API_URL=f"{catalogue.url}/api/v1", REPERNET_API_URL=f"{repernet.url}/api/v1")


# ---------------------------------------------------------------- people and structures at the IdP

@dataclass
class Person:
    email: str
    user_id: uuid.UUID


@dataclass
class Org:
    siret: str
    name: str
    id: uuid.UUID
    members: dict[str, Person] = field(default_factory=dict)


def make_person(app: Any, email: str | None = None, given_name: str = "Camille", family_name: str = "Test") -> Person:
    from idp.core.accounts import create_user
    from idp.core.security import SYSTEM
    from idp.extensions import db

    with app.app_context():
        user = create_user(db.session, app.extensions["hasher"], SYSTEM, email=email or unique_email("rp"),
                           password=PASSWORD, given_name=given_name, family_name=family_name, verified=True)
        db.session.commit()
        return Person(user.email, user.id)


def platform_admin(app: Any) -> Any:
    from idp.core.accounts import create_user, find_user
    from idp.core.security import SYSTEM
    from idp.extensions import db

    email = "rp-platform@example.test"
    user = find_user(db.session, email)
    if user is None:
        user = create_user(db.session, app.extensions["hasher"], SYSTEM, email=email, password=PASSWORD,
                           given_name="Plate", family_name="Forme", verified=True, is_admin=True)
        db.session.flush()
    return user


def make_structure(app: Any, name: str | None = None, kind: str = "organisme", siret: str | None = None) -> Org:
    from idp.core.security import SYSTEM
    from idp.core.structures import StructureData, create_structure
    from idp.extensions import db
    from idp.models import StructureKind

    with app.app_context():
        structure = create_structure(db.session, StructureData(
            siret=siret or new_siret(), name=name or f"Organisme {uuid.uuid4().hex[:6]}", kind=StructureKind(kind),
            city="Lyon", postal_code="69003"), SYSTEM, actor=platform_admin(app).id)
        db.session.commit()
        return Org(structure.siret, structure.name, structure.id)


def add_member(app: Any, org: Org, person: Person, grants: list[str], admin: bool = False) -> None:
    """Attach `person` to `org` with grants like "repernet:gestionnaire" (as a platform admin)."""
    from idp.core import memberships
    from idp.core.security import SYSTEM
    from idp.extensions import db
    from idp.models import Structure, User

    with app.app_context():
        structure, user = db.session.get(Structure, org.id), db.session.get(User, person.user_id)
        auth = memberships.authority(db.session, platform_admin(app), structure)
        memberships.add_member(db.session, auth, user, SYSTEM, role_ids=memberships.grants_by_key(db.session, grants),
                               admin=admin)
        db.session.commit()
    org.members[person.email] = person


def set_grants(app: Any, org: Org, person: Person, grants: list[str]) -> None:
    from idp.core import memberships
    from idp.core.security import SYSTEM
    from idp.extensions import db
    from idp.models import Structure

    with app.app_context():
        structure = db.session.get(Structure, org.id)
        auth = memberships.authority(db.session, platform_admin(app), structure)
        membership = memberships.membership_of(db.session, person.user_id, org.id)
        memberships.set_grants(db.session, auth, membership, memberships.grants_by_key(db.session, grants), SYSTEM,
                               expected_version=membership.version)
        db.session.commit()


def detach(app: Any, org: Org, person: Person) -> None:
    from idp.core import memberships
    from idp.core.security import SYSTEM
    from idp.extensions import db
    from idp.models import Structure

    with app.app_context():
        structure = db.session.get(Structure, org.id)
        auth = memberships.authority(db.session, platform_admin(app), structure)
        membership = memberships.membership_of(db.session, person.user_id, org.id)
        memberships.detach(db.session, auth, membership, SYSTEM, expected_version=membership.version)
        db.session.commit()


def member_of(app: Any, grants: list[str], admin: bool = False, org: Org | None = None) -> tuple[Person, Org]:
    """A new person in a new (or the given) structure with these grants."""
    org = org or make_structure(app)
    person = make_person(app)
    add_member(app, org, person, grants, admin=admin)
    return person, org


# ---------------------------------------------------------------- a browser

def new_browser() -> requests.Session:
    session = requests.Session()
    session.headers["Accept-Language"] = "fr"
    return session


def follow(browser: requests.Session, response: requests.Response, limit: int = 10) -> requests.Response:
    for _ in range(limit):
        if response.status_code not in (301, 302, 303):
            return response
        response = browser.get(urljoin(response.url, response.headers["Location"]), allow_redirects=False)
    raise AssertionError("too many redirects")


def rp_login(browser: requests.Session, rp: RP, email: str, path: str = "/", structure: str | None = None,
             password: str = PASSWORD) -> requests.Response:
    """Open `path` on the RP through its login: the IdP's login form (and structure chooser),
    the callback, and the redirect back to `path`; returns the final page."""
    start = f"{rp.url}/auth/login?next={requests.utils.quote(path)}"
    callback = browse(browser, start, email=email, password=password, stop=f"{rp.url}/auth/callback",
                      structure=structure)
    response = browser.get(callback, allow_redirects=False)
    assert response.status_code in (302, 303), (response.status_code, response.text[:500])
    return follow(browser, response)


def rp_get(browser: requests.Session, rp: RP, path: str) -> requests.Response:
    return browser.get(f"{rp.url}{path}", allow_redirects=False)


def page_form(html: str, action_contains: str = "") -> dict[str, Any]:
    """The first form whose action contains `action_contains` (the header holds the switcher and logout)."""
    for form in forms(html):
        if action_contains in form["action"] and form["method"] == "post":
            return form
    raise AssertionError(f"no POST form with action containing {action_contains!r}")


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, "no CSRF token"
    return match.group(1)


def logged_out(browser: requests.Session, rp: RP) -> bool:
    """True when the RP treats this browser as anonymous (a protected page sends it to log in)."""
    response = rp_get(browser, rp, "/ma-structure")
    return response.status_code == 302 and "/auth/login" in response.headers["Location"]
