"""The `idp` command (SPEC §10.3), driven as an operator would: a shell, a fresh database."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import PASSWORD, _free_port, unique_email
from sqlalchemy import select

from idp import create_app
from idp.demo import DEMO_ACCOUNTS
from idp.extensions import db
from idp.models import Client, SigningKey, User, utcnow

ROOT = Path(__file__).resolve().parent.parent
CONSOLE_SCRIPT = Path(sys.executable).parent / "idp"


def idp_argv() -> list[str]:
    """The installed console script when there is one (what an operator types), else the module."""
    return [str(CONSOLE_SCRIPT)] if CONSOLE_SCRIPT.exists() else [sys.executable, "-m", "idp"]


def operator_env(database_url: str, **extra: str) -> dict[str, str]:
    """A shell without IDP_SECRET_KEY (the demo mode) whose database is `database_url`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update(IDP_DATABASE_URL=database_url, IDP_ARGON2_TIME_COST="1", IDP_ARGON2_MEMORY_COST="8", **extra)
    # The checkout under test, whatever the editable install points at.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def idp(database_url: str, *args: str, env: dict[str, str] | None = None, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*idp_argv(), *args], env=env or operator_env(database_url), cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert "Traceback" not in result.stderr, result.stderr
    if ok:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def fresh_db(tmp_path: Path) -> tuple[str, Path]:
    path = tmp_path / "var" / "idp.sqlite3"  # var/ does not exist yet: `db upgrade` creates it
    return f"sqlite:///{path}", path


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


# ---------------------------------------------------------------- the shell, end to end

def test_help_lists_the_commands() -> None:
    result = subprocess.run([*idp_argv(), "--help"], env=operator_env("sqlite://"), capture_output=True,
                            text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    for command in ("db", "demo", "serve", "client", "user", "keys", "mail"):
        assert f"\n  {command} " in result.stdout
    assert "--app" not in result.stdout  # Flask's own options would only confuse an operator


def test_fresh_machine_upgrade_seed_and_register_a_client(fresh_db: tuple[str, Path]) -> None:
    url, path = fresh_db
    assert "à jour" in idp(url, "db", "upgrade").stdout
    idp(url, "db", "upgrade")  # idempotent

    first = idp(url, "demo", "seed").stdout
    assert "admin@portail.test" in first and "Admin-Portail-2026!" in first
    assert "marie.durand@formation.test" in first and "demo-client" in first
    second = idp(url, "demo", "seed").stdout
    assert second == first
    emails = [email for (email,) in rows(path, "SELECT email FROM users ORDER BY email")]
    assert emails == sorted(account[0] for account in DEMO_ACCOUNTS)
    assert rows(path, "SELECT count(*) FROM structures") == [(5,)]
    assert rows(path, "SELECT count(*) FROM join_requests WHERE status = 'pending'") == [(2,)]
    assert rows(path, "SELECT count(*) FROM oauth_clients WHERE client_id = 'demo-client'") == [(1,)]
    assert rows(path, "SELECT count(*) FROM signing_keys") == [(2,)]

    result = idp(url, "client", "create", "--name", "SAM", "--app", "sam",
                 "--redirect-uri", "http://127.0.0.1:8001/callback", "--json")
    data = json.loads(result.stdout)
    assert data["client_secret"] and len(data["client_secret"]) >= 32
    assert rows(path, f"SELECT name, app FROM oauth_clients WHERE client_id = '{data['client_id']}'") == [("SAM", "sam")]


def test_a_command_before_the_upgrade_says_what_to_do(fresh_db: tuple[str, Path]) -> None:
    url, _ = fresh_db
    Path(url.removeprefix("sqlite:///")).parent.mkdir()
    result = idp(url, "demo", "seed", ok=False)
    assert result.returncode == 1
    assert "idp db upgrade" in result.stderr


def test_demo_seed_is_refused_outside_the_demo(fresh_db: tuple[str, Path]) -> None:
    url, path = fresh_db
    idp(url, "db", "upgrade")
    production = operator_env(url, IDP_SECRET_KEY="a-real-secret-0123456789")
    result = idp(url, "demo", "seed", env=production, ok=False)
    assert result.returncode == 2 and "--force" in result.stderr
    assert rows(path, "SELECT count(*) FROM users") == [(0,)]
    idp(url, "demo", "seed", "--force", env=production)
    assert rows(path, "SELECT count(*) FROM users") == [(len(DEMO_ACCOUNTS),)]


def _wait_discovery(server: subprocess.Popen, port: int, what: str) -> requests.Response:
    deadline = time.monotonic() + 30
    while True:
        try:
            return requests.get(f"http://127.0.0.1:{port}/.well-known/openid-configuration", timeout=10)
        except (requests.ConnectionError, requests.Timeout):
            assert server.poll() is None, server.communicate()
            assert time.monotonic() < deadline, f"{what} did not answer"
            time.sleep(0.2)


def _workers(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.add(int(entry.name))
            except (OSError, ValueError, IndexError):
                pass
    return found


@pytest.mark.parametrize("server_name", ["granian", "gunicorn"])
def test_serve_runs_the_wsgi_app_and_reloads_on_sighup(fresh_db: tuple[str, Path], server_name: str) -> None:
    """`idp serve` (granian by default, the measured fastest; gunicorn on demand): it answers,
    SIGHUP replaces the workers without dropping the listener, SIGTERM stops it."""
    url, _ = fresh_db
    idp(url, "db", "upgrade")
    idp(url, "demo", "seed")
    port = _free_port()
    env = operator_env(url, IDP_ISSUER=f"http://127.0.0.1:{port}")
    argv = [*idp_argv(), "serve", "--port", str(port), "--workers", "2"]
    if server_name != "granian":
        argv += ["--server", server_name]
    server = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        response = _wait_discovery(server, port, server_name)
        assert response.status_code == 200
        assert response.json()["issuer"] == f"http://127.0.0.1:{port}"
        assert requests.get(f"http://127.0.0.1:{port}/oauth/jwks", timeout=5).json()["keys"]
        environ = Path(f"/proc/{server.pid}/environ").read_bytes().split(b"\0")
        assert b"MALLOC_ARENA_MAX=1" in environ  # execv: this pid is the server's main process now
        deadline = time.monotonic() + 20
        while len(_workers(server.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        before = _workers(server.pid)
        server.send_signal(signal.SIGHUP)  # graceful reload: new workers, the same listening socket
        deadline = time.monotonic() + 30
        while True:
            after = _workers(server.pid)
            if len(after) >= 2 and not after & before:
                break
            assert time.monotonic() < deadline, f"the workers were not replaced: {before} -> {after}"
            time.sleep(0.2)
        assert _wait_discovery(server, port, server_name).status_code == 200
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=40)
    assert f"127.0.0.1:{port}" in out and server_name in out


# ---------------------------------------------------------------- clients (in-process runner)

@pytest.fixture
def runner(app: Any) -> Any:
    return app.test_cli_runner()


def invoke(runner: Any, *args: str) -> Any:
    result = runner.invoke(args=list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_client_create_with_every_option(runner: Any, app: Any) -> None:
    result = invoke(
        runner, "client", "create", "--name", "Marchés", "--redirect-uri", "https://sam.test/callback",
        "--app", "sam", "--post-logout-redirect-uri", "https://sam.test/", "--backchannel-logout-uri",
        "https://sam.test/backchannel-logout", "--trusted", "--grant-type", "authorization_code",
        "--grant-type", "refresh_token", "--scope", "openid profile", "--scope", "structures", "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) >= {"client_id", "client_secret"}
    with app.app_context():
        from idp.extensions import db
        from idp.oidc.clients import secret_digest

        client = db.session.scalar(select(Client).where(Client.client_id == data["client_id"]))
        assert client.secret_digest == secret_digest(data["client_secret"])
        assert (client.name, client.app, client.trusted) == ("Marchés", "sam", True)
        assert client.redirect_uris == ["https://sam.test/callback"]
        assert client.post_logout_redirect_uris == ["https://sam.test/"]
        assert client.backchannel_logout_uri == "https://sam.test/backchannel-logout"
        assert client.grant_types == ["authorization_code", "refresh_token"]
        assert client.scope == "openid profile structures"


def test_client_create_public_prints_no_secret(runner: Any, app: Any) -> None:
    result = invoke(runner, "client", "create", "--name", "SPA", "--public",
                    "--redirect-uri", "https://spa.test/cb", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["client_secret"] is None and data["token_endpoint_auth_method"] == "none"
    text = invoke(runner, "client", "create", "--name", "SPA", "--public", "--redirect-uri", "https://spa.test/cb")
    assert "client_id:" in text.stdout and "secret" not in text.output
    with app.app_context():
        from idp.extensions import db

        client = db.session.scalar(select(Client).where(Client.client_id == data["client_id"]))
        assert client.secret_digest is None and client.require_pkce


def test_client_create_service_account(runner: Any) -> None:
    """No redirect URI: a client_credentials client (REPERNET's service API access, SPEC §4.8)."""
    result = invoke(runner, "client", "create", "--name", "REPERNET API", "--grant-type", "client_credentials",
                    "--scope", "structures:read structures:write", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["grant_types"] == ["client_credentials"] and data["client_secret"]


@pytest.mark.parametrize(("args", "message"), [
    (["--redirect-uri", "not a url"], "URI invalide"),
    (["--redirect-uri", "ftp://files.test/cb"], "URI invalide"),
    (["--redirect-uri", "https://a.test/cb#fragment"], "URI invalide"),
    (["--redirect-uri", "https://a.test/cb", "--post-logout-redirect-uri", "/relative"], "URI invalide"),
    (["--redirect-uri", "https://a.test/cb", "--backchannel-logout-uri", "javascript:alert(1)"], "URI invalide"),
    (["--grant-type", "authorization_code"], "--redirect-uri"),
    (["--grant-type", "password"], "password"),
    (["--public", "--grant-type", "client_credentials"], "public"),
    (["--redirect-uri", "https://a.test/cb", "--client-id", "demo-taken"], "déjà utilisé"),
], ids=["not-url", "ftp", "fragment", "relative-logout", "javascript-backchannel", "code-without-uri",
        "unknown-grant", "public-credentials", "taken-id"])
def test_client_create_refuses_bad_input(runner: Any, args: list[str], message: str) -> None:
    invoke(runner, "client", "create", "--name", "Premier", "--redirect-uri", "https://a.test/cb",
           "--client-id", "demo-taken")
    result = invoke(runner, "client", "create", "--name", "Mauvais", *args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


# ---------------------------------------------------------------- users

def test_user_create_with_every_option(runner: Any, app: Any) -> None:
    email = unique_email("admin")
    result = invoke(runner, "user", "create", "--email", email.upper(), "--password", PASSWORD,
                    "--given-name", "Alice", "--family-name", "Admin", "--verified", "--admin", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data == {"id": data["id"], "email": email, "state": "active", "admin": True}
    with app.app_context():
        from idp.extensions import db

        user = db.session.scalar(select(User).where(User.email == email))
        assert user.is_admin and user.email_verified_at is not None
        assert (user.given_name, user.family_name) == ("Alice", "Admin")
        assert app.extensions["hasher"].verify(user.password_hash, PASSWORD)


def test_user_create_unverified_is_pending(runner: Any) -> None:
    result = invoke(runner, "user", "create", "--email", unique_email(), "--password", PASSWORD,
                    "--given-name", "Paul", "--family-name", "Martin", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["state"] == "pending"
    assert json.loads(result.stdout)["admin"] is False


@pytest.mark.parametrize(("password", "message"), [
    ("Court-1!", "12 caractères"),
    ("1234567890qwertyuiop", "plus courants"),
    ("Dupontel-Secret-2026!", "nom"),
    ("Mon-Portail-Secret-42", "portail"),
])
def test_user_create_refuses_a_weak_password(runner: Any, app: Any, password: str, message: str) -> None:
    email = unique_email()
    result = invoke(runner, "user", "create", "--email", email, "--password", password,
                    "--given-name", "Jean", "--family-name", "Dupontel")
    assert result.exit_code == 2
    assert "mot de passe refusé" in result.output and message in result.output
    with app.app_context():
        from idp.extensions import db

        assert db.session.scalar(select(User).where(User.email == email)) is None


def test_user_create_refuses_a_taken_email(runner: Any, create_account: Any) -> None:
    user = create_account()
    result = invoke(runner, "user", "create", "--email", f"  {user.email.upper()} ", "--password", PASSWORD,
                    "--given-name", "Autre", "--family-name", "Personne")
    assert result.exit_code == 2 and "déjà un compte" in result.output


def test_user_create_refuses_a_malformed_email(runner: Any) -> None:
    result = invoke(runner, "user", "create", "--email", "pas-une-adresse", "--password", PASSWORD,
                    "--given-name", "Jean", "--family-name", "Test")
    assert result.exit_code == 2 and "adresse e-mail invalide" in result.output


# ---------------------------------------------------------------- signing keys

@pytest.fixture
def keys_app(tmp_path: Path) -> Iterator[Any]:
    """An IdP on its own database: rotating keys must not disturb the shared test app."""
    from idp.migrations import upgrade

    url = f"sqlite:///{tmp_path / 'keys.sqlite3'}"
    upgrade(url)
    app = create_app({"TESTING": True, "SECRET_KEY": "keys-test-secret", "DATABASE_URL": url,
                      "SMTP_URL": "", "KEY_PUBLISH_BEFORE_USE": 3600, "KEY_CACHE_SECONDS": 0})
    yield app
    app.extensions["backchannel"].pool.shutdown(wait=True)
    with app.app_context():
        db.engine.dispose()


def _keys(app: Any) -> tuple[list[SigningKey], str, str, list[str]]:
    """(every key, the RS256 and ES256 kids signing now, the kids published in the JWKS)."""
    from idp.extensions import db
    from idp.oidc.keys import KeyRing

    with app.app_context():
        keyring = KeyRing(ttl=0)
        published = [k["kid"] for k in app.test_client().get("/oauth/jwks").get_json()["keys"]]
        return (list(db.session.scalars(select(SigningKey))), keyring.signing_key(db.session, "RS256")[0],
                keyring.signing_key(db.session, "ES256")[0], published)


def test_keys_rotate_publishes_before_signing(keys_app: Any) -> None:
    runner = keys_app.test_cli_runner()
    first = json.loads(invoke(runner, "keys", "rotate", "--now", "--json").stdout)["keys"]
    assert sorted(k["alg"] for k in first) == ["ES256", "RS256"]
    _, rs_kid, es_kid, _ = _keys(keys_app)
    assert {rs_kid, es_kid} == {k["kid"] for k in first}

    before = utcnow()
    second = json.loads(invoke(runner, "keys", "rotate", "--json").stdout)["keys"]
    assert sorted(k["alg"] for k in second) == ["ES256", "RS256"]
    for key in second:
        starts = key["active_at"]
        assert starts > (before + timedelta(seconds=3500)).isoformat()
        assert starts < (before + timedelta(seconds=3700)).isoformat()
    every, rs_now, es_now, published = _keys(keys_app)
    assert {rs_now, es_now} == {k["kid"] for k in first}  # the old keys still sign...
    assert {k["kid"] for k in [*first, *second]} <= set(published)  # ...and the new ones are published
    assert len(every) == 4

    third = json.loads(invoke(runner, "keys", "rotate", "--now", "--json").stdout)["keys"]
    _, rs_now, es_now, published = _keys(keys_app)
    assert {rs_now, es_now} == {k["kid"] for k in third}
    assert {k["kid"] for k in first} <= set(published)  # retired keys still verify their tokens


def test_keys_rotate_text_output(keys_app: Any) -> None:
    result = invoke(keys_app.test_cli_runner(), "keys", "rotate")
    assert result.exit_code == 0
    assert "RS256" in result.stdout and "ES256" in result.stdout and "signe à partir du" in result.stdout


def test_keys_ensure_creates_keys_once(keys_app: Any) -> None:
    """What a deployment runs after `db upgrade` (compose/): keys that sign at once, then nothing."""
    runner = keys_app.test_cli_runner()
    assert "créées" in invoke(runner, "keys", "ensure").stdout
    every, rs_kid, es_kid, published = _keys(keys_app)
    assert len(every) == 2 and {rs_kid, es_kid} <= set(published)
    assert "déjà présentes" in invoke(runner, "keys", "ensure").stdout
    assert len(_keys(keys_app)[0]) == 2


def test_a_client_with_longer_lived_tokens_keeps_retiring_keys_published(keys_app: Any) -> None:
    """A client's own ID token lifetime (the console, issue 16 point 9) longer than the platform's: a
    key due to retire stays published past it, and so do the keys rotated afterwards."""
    import uuid

    from idp.core import console
    from idp.core.security import SYSTEM
    from idp.extensions import db
    from idp.oidc.clients import ClientSpec, create_client
    from idp.oidc.keys import extend_retired_keys

    runner = keys_app.test_cli_runner()
    invoke(runner, "keys", "rotate", "--now", "--json")
    invoke(runner, "keys", "rotate", "--json")  # the first keys retire in an hour
    with keys_app.app_context():
        due = list(db.session.scalars(select(SigningKey).where(SigningKey.retired_at.is_not(None))))
        assert len(due) == 2 and all(k.expires_at - k.retired_at == timedelta(seconds=3660) for k in due)
        client, _secret = create_client(db.session, ClientSpec(name="Longue durée"), SYSTEM)
        console.set_client_lifetimes(db.session, client, {"id_token_lifetime": 6 * 3600}, SYSTEM,
                                     actor=uuid.uuid4())
        extend_retired_keys(db.session, keys_app.config)  # as the console's view does
        db.session.commit()
        due = list(db.session.scalars(select(SigningKey).where(SigningKey.retired_at.is_not(None))))
        assert all(k.expires_at - k.retired_at == timedelta(seconds=6 * 3600 + 60) for k in due)
    invoke(runner, "keys", "rotate", "--json")
    with keys_app.app_context():
        due = list(db.session.scalars(select(SigningKey).where(SigningKey.retired_at.is_not(None))))
        assert len(due) == 4 and all(k.expires_at - k.retired_at >= timedelta(seconds=6 * 3600 + 60) for k in due)


# ---------------------------------------------------------------- mail worker

def test_mail_worker_once_delivers_the_outbox(runner: Any, app: Any, mailbox: Any) -> None:
    from idp.core.mail import enqueue
    from idp.extensions import db
    from idp.models import OutboxMail

    recipient = unique_email("worker")
    with app.app_context():
        mail = enqueue(db.session, recipient, "Test du worker", "Bonjour", "<p>Bonjour</p>")
        db.session.commit()
        mail_id = mail.id
    result = invoke(runner, "mail", "worker", "--once")
    assert result.exit_code == 0, result.output
    assert "message(s) envoyé(s)" in result.stdout
    assert mailbox.wait_for(recipient, "Test du worker")["Subject"] == "Test du worker"
    with app.app_context():
        assert db.session.get(OutboxMail, mail_id).status == "sent"
    # Nothing due: a quiet pass.
    assert invoke(runner, "mail", "worker", "--once").stdout == ""


def test_mail_worker_stops_cleanly_on_sigterm(fresh_db: tuple[str, Path]) -> None:
    url, _ = fresh_db
    idp(url, "db", "upgrade")
    worker = subprocess.Popen([*idp_argv(), "mail", "worker", "--interval", "0.2"], env=operator_env(url),
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = _first_line(worker, timeout=60)  # started (however loaded the machine is), then stopped
        assert worker.poll() is None
    finally:
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    assert "Traceback" not in err and "/dev/inbox" in first + out


def _first_line(process: subprocess.Popen, timeout: float) -> str:
    """The process's first line of output, waiting at most `timeout` seconds."""
    import selectors

    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
        assert selector.select(timeout), "no output from the worker"
    return process.stdout.readline()  # type: ignore[union-attr]
