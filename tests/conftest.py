"""Fixtures in layers (STYLE §8): database → app → live server / testclient → factories.

The suite runs on SQLite by default. IDP_TEST_DATABASE_URL (PostgreSQL) and IDP_TEST_REDIS_URL
switch to the real servers; when they are set and the server is unreachable the run fails — CI
never skips a variant silently.
"""

from __future__ import annotations

import itertools
import os
import random
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, text
from werkzeug.serving import make_server

from idp import create_app
from idp.migrations import upgrade

pytest_plugins = ["ldap_server"]

PASSWORD = "Correct-Horse-Battery-9"  # satisfies the policy; shared by factory accounts


# ---------------------------------------------------------------- database and redis

@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = os.environ.get("IDP_TEST_DATABASE_URL")
    if not base:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'idp.sqlite3'}"
        return
    name = f"portail_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        pytest.exit(f"IDP_TEST_DATABASE_URL is set but unusable: {exc}", returncode=3)
    url = base.rsplit("/", 1)[0] + "/" + name
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("IDP_TEST_REDIS_URL", "")
    if url:
        import redis

        try:
            redis.Redis.from_url(url).flushdb()
        except Exception as exc:  # noqa: BLE001
            pytest.exit(f"IDP_TEST_REDIS_URL is set but unusable: {exc}", returncode=3)
    return url


# ---------------------------------------------------------------- a real SMTP server

@dataclass
class Mailbox:
    """Messages received by the test SMTP server (aiosmtpd)."""

    messages: list[EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append(message)  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if m["To"] == address]

    def wait_for(self, address: str, subject: str = "", timeout: float = 10.0) -> EmailMessage:
        """The last message to `address` whose subject contains `subject`, waiting for it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in self.to(address) if subject.lower() in m["Subject"].lower()]
            if found:
                return found[-1]
            time.sleep(0.02)
        raise AssertionError(f"no mail to {address} with subject containing {subject!r}: "
                             f"{[m['Subject'] for m in self.to(address)]}")


def without_csrf(page: str) -> str:
    """A page less its CSRF tokens, which carry their second of issue: two answers that must be the
    same (no enumeration, no probing) are compared on the rest."""
    return re.sub(r'name="csrf_token"[^>]*>', "", page)


def mail_text(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]


def mail_links(message: EmailMessage) -> list[str]:
    return re.findall(r"https?://[^\s<>\"']+", mail_text(message))


def mail_link(message: EmailMessage, contains: str = "") -> str:
    """The first link in the text part containing `contains`, as a path for the testclient."""
    for link in mail_links(message):
        if contains in link:
            parts = urlsplit(link)
            return parts.path + (f"?{parts.query}" if parts.query else "")
    raise AssertionError(f"no link containing {contains!r} in {mail_text(message)!r}")


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[tuple[str, Mailbox]]:
    box = Mailbox()
    port = _free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield f"smtp://127.0.0.1:{port}", box
    controller.stop()


@pytest.fixture
def mailbox(smtp_server: tuple[str, Mailbox]) -> Mailbox:
    return smtp_server[1]


# ---------------------------------------------------------------- the app and its servers

def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def live_port() -> int:
    return _free_port()


@pytest.fixture(scope="session")
def app(database_url: str, redis_url: str, smtp_server: tuple[str, Mailbox], live_port: int) -> Iterator[Any]:
    upgrade(database_url)
    app = create_app({
        "TESTING": True,
        "TOTP_REQUIRED_FOR_ADMINS": False,  # tests/test_second_factor.py turns it on
        "SECRET_KEY": "test-secret-key-0123456789",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SMTP_URL": smtp_server[0],
        "DEV_INBOX": True,
        "ISSUER": f"http://127.0.0.1:{live_port}",
        # Cheap argon2 in tests only (the OWASP parameters are the default).
        "ARGON2_TIME_COST": 1,
        "ARGON2_MEMORY_COST": 8,
        "ARGON2_PARALLELISM": 1,
        "KEY_PUBLISH_BEFORE_USE": 3600,
    })
    with app.app_context():
        from idp.extensions import db
        from idp.oidc.keys import ensure_keys

        ensure_keys(db.session, app.config)
        db.session.commit()
    yield app
    app.extensions["backchannel"].pool.shutdown(wait=True)
    app.extensions["db"].session.remove()
    app.extensions["db"].engine.dispose()


@pytest.fixture(scope="session")
def live_server(app: Any, live_port: int) -> Iterator[str]:
    """The same app served over real HTTP, once per test session."""
    server = make_server("127.0.0.1", live_port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app.config["ISSUER"]
    server.shutdown()


@pytest.fixture(autouse=True)
def _reset_rate_limits(app: Any) -> None:
    from idp.extensions import limiter

    with app.app_context():
        limiter.reset()


@pytest.fixture
def testclient(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def browser(live_server: str) -> requests.Session:
    """A cookie-keeping HTTP client against the live server (follows no redirects by default)."""
    session = requests.Session()
    session.headers["Accept-Language"] = "fr"
    return session


# ---------------------------------------------------------------- HTML forms

class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self._current: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self._current = {"action": a.get("action") or "", "method": (a.get("method") or "get").lower(),
                             "fields": {}, "id": a.get("id")}
            self.forms.append(self._current)
        elif tag in ("input", "button", "textarea", "select") and self._current is not None and a.get("name"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            if tag == "button" or a.get("type") == "submit":
                self._current.setdefault("buttons", {})[a["name"]] = a.get("value") or ""
                return
            self._current["fields"].setdefault(a["name"], a.get("value") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def forms(html: str) -> list[dict[str, Any]]:
    parser = _FormParser()
    parser.feed(html)
    return parser.forms


def form_fields(html: str, index: int = -1, **overrides: Any) -> dict[str, Any]:
    """The fields of a page's form (the last one by default: the header holds the logout form)."""
    fields = dict(forms(html)[index]["fields"])
    fields.update(overrides)
    return fields


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, "no CSRF token in page"
    return match.group(1)


# ---------------------------------------------------------------- factories

_counter = itertools.count(1)


_sirens = itertools.count(random.SystemRandom().randrange(10_000_000, 90_000_000, 1_000))
_nics = itertools.count(10)  # a siège made by new_siret() never takes the NICs 0002-0009 tests ask for


def new_siret(siren: str | None = None, nic: str | None = None) -> str:
    """A Luhn-valid SIRET of a Luhn-valid SIREN (python-stdnum checks both), never seen before in
    this test session; with `siren`, another établissement of that company."""
    from stdnum import luhn

    if siren is None:
        base = f"{next(_sirens):08d}"
        siren = base + luhn.calc_check_digit(base)
    nic = nic or f"{next(_nics) % 10_000:04d}"
    return siren + nic + luhn.calc_check_digit(siren + nic)


def unique_email(prefix: str = "usager") -> str:
    return f"{prefix}{next(_counter)}-{uuid.uuid4().hex[:6]}@example.test"


@pytest.fixture
def create_account(app: Any) -> Any:
    """Factory: create_account(email=None, password=PASSWORD, verified=True, admin=False, **fields)."""

    def factory(email: str | None = None, password: str = PASSWORD, verified: bool = True,
                admin: bool = False, given_name: str = "Camille", family_name: str = "Test") -> Any:
        from idp.core.accounts import create_user
        from idp.core.security import SYSTEM
        from idp.extensions import db

        with app.app_context():
            user = create_user(db.session, app.extensions["hasher"], SYSTEM, email=email or unique_email(),
                               password=password, given_name=given_name, family_name=family_name,
                               verified=verified, is_admin=admin)
            db.session.commit()
            db.session.expunge(user)
            return user

    return factory


@pytest.fixture
def create_client(app: Any, live_server: str) -> Any:
    """Factory: create_client(**ClientSpec fields) -> (client_id, client_secret)."""

    def factory(**spec: Any) -> tuple[str, str | None]:
        from idp.core.security import SYSTEM
        from idp.extensions import db
        from idp.oidc.clients import ClientSpec, create_client

        spec.setdefault("name", "Client de test")
        spec.setdefault("redirect_uris", ["http://127.0.0.1:9999/callback"])
        with app.app_context():
            client, secret = create_client(db.session, ClientSpec(**spec), SYSTEM)
            db.session.commit()
            return client.client_id, secret

    return factory


@pytest.fixture
def account(create_account: Any) -> Any:
    """A verified account with the default password."""
    return create_account()


@pytest.fixture
def trusted(create_client: Any) -> tuple[str, str]:
    """A trusted client (no consent page) with the code and refresh grants."""
    return create_client(trusted=True, grant_types=["authorization_code", "refresh_token"])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The production topology (tests/test_topology.py) runs first: its two IdP instances, apps and
    workers open PostgreSQL connections of their own, and later the suite's servers hold many
    (the server allows 100)."""
    items.sort(key=lambda item: 0 if item.nodeid.startswith("tests/test_topology.py") else 1)
