"""The production topology, started for real (issue 17, SPEC §10.4): two IdP instances (`idp serve`:
granian, two workers each, as in compose/Procfile) behind nginx, PostgreSQL, Redis, the mail worker, and the three apps, each one a
process of its own as in compose/Procfile. Through the proxy: a single-sign-on journey, one IdP
instance killed mid-journey and the journey completed on the other, a regenerated client secret
honoured by every worker at once; then a backup restored into a fresh database.

Needs the PostgreSQL variant (`make test-postgres`: IDP_TEST_DATABASE_URL and IDP_TEST_REDIS_URL)
and nginx (installed by the Makefile's test set-up). One topology for the module, a few seconds
to start.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import PASSWORD, Mailbox, _free_port, form_fields, mail_link
from rp_helpers import RP, RP_SCOPES, add_member, make_person, make_structure, rp_login
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BASE_URL = os.environ.get("IDP_TEST_DATABASE_URL", "")
REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL", "")
NGINX = os.environ.get("NGINX", "/usr/sbin/nginx")
SECRET = "topology-secret-" + "t" * 24
APP_SECRET = "topology-app-secret-" + "a" * 16
APPS = ("repernet", "sam", "catalogue")

pytestmark = pytest.mark.skipif(
    not BASE_URL.startswith("postgresql") or not REDIS_URL,
    reason="the production topology runs on PostgreSQL and Redis: `make test-postgres`")


def _database(name: str) -> str:
    return BASE_URL.rsplit("/", 1)[0] + "/" + name


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@dataclass
class Topology:
    proxy: str
    idp_ports: dict[str, int]
    apps: dict[str, RP]
    database_url: str
    admin_app: Any  # an IdP app object on the same database, for set-up through the core
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: Path = Path()

    def kill(self, name: str) -> None:
        """SIGKILL a process and its children (a server's main process and its workers): a crash."""
        process = self.processes[name]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        # The workers die with their arbiter; until the last one is gone the kernel still accepts
        # connections on their socket (and then resets them). Wait for the port to refuse.
        port = self.idp_ports.get(name)
        deadline = time.monotonic() + 10
        while port is not None and time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) != 0:
                    return
            time.sleep(0.05)
        assert port is None, f"{name} still accepts connections"

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]


def _start(topology: Topology, name: str, argv: list[str], env: dict[str, str]) -> None:
    with (topology.logs / f"{name}.log").open("wb") as out:  # the child keeps its own copy
        topology.processes[name] = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                                    start_new_session=True)  # its own group: killed whole


def _wait_ready(topology: Topology, name: str, url: str, deadline: float) -> None:
    while True:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        process = topology.processes[name]
        assert process.poll() is None, f"{name} exited: {topology.log(name)}"
        assert time.monotonic() < deadline, f"{name} not ready: {topology.log(name)}"
        time.sleep(0.1)


def _nginx_conf(folder: Path, listen: int, upstreams: list[int]) -> Path:
    servers = "\n".join(f"    server 127.0.0.1:{port} max_fails=1 fail_timeout=30s;" for port in upstreams)
    temp = "\n".join(f"  {kind}_temp_path {folder / kind};" for kind in
                     ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = folder / "nginx.conf"
    conf.write_text(f"""{'user root;' if os.geteuid() == 0 else ''}
worker_processes 1;
pid {folder / 'nginx.pid'};
error_log {folder / 'nginx-error.log'} warn;
events {{ worker_connections 512; }}
http {{
  access_log off;
{temp}
  upstream idp {{
{servers}
  }}
  server {{
    listen 127.0.0.1:{listen};
    location / {{
      include {ROOT / 'compose' / 'nginx' / 'idp-proxy.conf'};
    }}
  }}
}}
""")
    return conf


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory, smtp_server: tuple[str, Mailbox]) -> Iterator[Topology]:
    from idp import create_app
    from idp.core.security import SYSTEM
    from idp.extensions import db
    from idp.migrations import upgrade
    from idp.oidc.clients import ClientSpec, create_client
    from idp.oidc.keys import ensure_keys

    assert Path(NGINX).exists(), f"nginx is missing ({NGINX}): `make test` installs it"
    folder = tmp_path_factory.mktemp("topology")
    tag = uuid.uuid4().hex[:8]
    names = {service: f"portail_topo_{service}_{tag}" for service in ("idp", *APPS)}
    admin = create_engine(BASE_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in names.values():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    urls = {service: _database(name) for service, name in names.items()}
    proxy_port, idp_ports = _free_port(), {"idp-a": _free_port(), "idp-b": _free_port()}
    proxy = f"http://127.0.0.1:{proxy_port}"
    app_ports = {app_name: _free_port() for app_name in APPS}

    # Once, before any worker starts (compose's `migrate` service): schema, keys, the apps' clients.
    upgrade(urls["idp"])
    idp_env = {
        "IDP_SECRET_KEY": SECRET, "IDP_DATABASE_URL": urls["idp"], "IDP_REDIS_URL": REDIS_URL,
        "IDP_ISSUER": proxy, "IDP_PROXY_FIX": "true", "IDP_SMTP_URL": smtp_server[0],
        "IDP_MAIL_DELIVER_IN_REQUEST": "false", "IDP_ARGON2_TIME_COST": "1", "IDP_ARGON2_MEMORY_COST": "8",
        "IDP_TOTP_REQUIRED_FOR_ADMINS": "false",
        # Long enough that only an invalidation, not the cache's expiry, explains a fresh secret.
        "IDP_CLIENT_CACHE_SECONDS": "300",
    }
    admin_app = create_app({"SECRET_KEY": SECRET, "DATABASE_URL": urls["idp"], "ISSUER": proxy,
                            "SMTP_URL": smtp_server[0], "MAIL_DELIVER_IN_REQUEST": False,
                            "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 8})
    with admin_app.app_context():
        ensure_keys(db.session, admin_app.config)
        for app_name, port in app_ports.items():
            url = f"http://127.0.0.1:{port}"
            create_client(db.session, ClientSpec(
                name=app_name, client_id=f"{app_name}-{tag}", client_secret=APP_SECRET, app=app_name,
                redirect_uris=[f"{url}/auth/callback"], post_logout_redirect_uris=[f"{url}/"],
                backchannel_logout_uri=f"{url}/auth/backchannel-logout", trusted=True,
                grant_types=["authorization_code", "refresh_token", "client_credentials"],
                scope=f"openid profile email structures {RP_SCOPES[app_name]}"), SYSTEM)
        db.session.commit()

    base_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("IDP_", "SAM_", "REPERNET_", "CATALOGUE_"))}
    base_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), base_env.get("PYTHONPATH")]))
    base_env["MALLOC_ARENA_MAX"] = "1"
    topo = Topology(proxy, idp_ports, {name: RP(f"http://127.0.0.1:{port}", None, f"{name}-{tag}")
                                       for name, port in app_ports.items()},
                    urls["idp"], admin_app, logs=folder)
    try:
        env = {**base_env, **idp_env}
        for name, port in idp_ports.items():  # compose/Procfile's `idp` line, twice
            _start(topo, name, [str(BIN / "idp"), "serve", "--host", "127.0.0.1", "--port", str(port),
                                "--workers", "2", "--threads", "4"], env)
        _start(topo, "mail", [str(BIN / "idp"), "mail", "worker", "--interval", "0.5"], env)
        app_envs: dict[str, dict[str, str]] = {}
        for app_name, port in app_ports.items():
            prefix = app_name.upper()
            app_env = {**base_env, f"{prefix}_SECRET_KEY": f"{APP_SECRET}-{app_name}",
                       f"{prefix}_DATABASE_URL": urls[app_name], f"{prefix}_OIDC_ISSUER": proxy,
                       f"{prefix}_OIDC_CLIENT_ID": f"{app_name}-{tag}", f"{prefix}_OIDC_CLIENT_SECRET": APP_SECRET,
                       f"{prefix}_FILES_DIR": str(folder / f"{app_name}-files"),
                       f"{prefix}_SMTP_URL": smtp_server[0], f"{prefix}_MAIL_DELIVER_IN_REQUEST": "false",
                       f"{prefix}_PUBLIC_URL": f"http://127.0.0.1:{port}"}
            if app_name == "sam":
                app_env["SAM_CATALOGUE_API_URL"] = f"http://127.0.0.1:{app_ports['catalogue']}/api/v1"
                app_env["SAM_REPERNET_API_URL"] = f"http://127.0.0.1:{app_ports['repernet']}/api/v1"
            app_envs[app_name] = app_env
        # Each app migrates its own database first (compose/README.md), the three at once.
        migrations = {app_name: subprocess.Popen([sys.executable, "-m", f"apps.{app_name}", "db", "upgrade"],
                                                 env=app_env, cwd=ROOT, stdout=subprocess.PIPE,
                                                 stderr=subprocess.PIPE, text=True)
                      for app_name, app_env in app_envs.items()}
        for app_name, migration in migrations.items():
            _out, err = migration.communicate(timeout=60)
            assert migration.returncode == 0, (app_name, err)
            _start(topo, app_name, [str(BIN / "gunicorn"), f"apps.{app_name}.wsgi:app", "--bind",
                                    f"127.0.0.1:{app_ports[app_name]}", "--workers", "1", "--threads", "4"],
                   app_envs[app_name])
        _start(topo, "nginx", [NGINX, "-p", str(folder), "-c", str(_nginx_conf(folder, proxy_port, list(idp_ports.values()))),
                               "-g", "daemon off;"], base_env)
        deadline = time.monotonic() + 60
        for name, port in idp_ports.items():
            _wait_ready(topo, name, f"http://127.0.0.1:{port}/readyz", deadline)
        for app_name in APPS:
            _wait_ready(topo, app_name, f"{topo.apps[app_name].url}/readyz", deadline)
        _wait_ready(topo, "nginx", f"{proxy}/readyz", deadline)
        yield topo
    finally:
        for name, process in topo.processes.items():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM if name != "nginx" else signal.SIGQUIT)
        for process in topo.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        admin_app.extensions["backchannel"].pool.shutdown(wait=True)
        admin_app.extensions["db"].session.remove()
        admin_app.extensions["db"].engine.dispose()
        with admin.connect() as conn:
            for name in names.values():
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _browser() -> requests.Session:
    browser = requests.Session()
    browser.headers["Accept-Language"] = "fr"
    return browser


def _signed_in(page: requests.Response, name: str) -> None:
    assert page.status_code == 200, (page.status_code, page.text[:300])
    assert name in page.text, page.text[:600]


# ---------------------------------------------------------------- the tests, in the module's order

def test_probes_through_the_proxy(topology: Topology) -> None:
    ready = requests.get(f"{topology.proxy}/readyz", timeout=5)
    assert ready.status_code == 200 and ready.json()["checks"] == {
        "database": "ok", "schema": "ok", "signing_keys": "ok", "redis": "ok"}
    discovery = requests.get(f"{topology.proxy}/.well-known/openid-configuration", timeout=5).json()
    assert discovery["issuer"] == topology.proxy and discovery["token_endpoint"].startswith(topology.proxy)


def test_single_sign_on_across_the_three_apps_through_the_proxy(topology: Topology, mailbox: Mailbox) -> None:
    person = make_person(topology.admin_app, given_name="Solène", family_name="Topologie")
    org = make_structure(topology.admin_app)
    add_member(topology.admin_app, org, person, ["repernet:lecteur", "sam:redacteur", "catalogue:editeur"])
    browser = _browser()
    first = rp_login(browser, topology.apps["repernet"], person.email)  # the IdP's login form, once
    _signed_in(first, "Solène")
    for app_name in ("catalogue", "sam"):  # then single sign-on: no password asked again
        start = browser.get(f"{topology.apps[app_name].url}/auth/login", allow_redirects=True, timeout=30)
        assert 'name="password"' not in start.text, app_name
        _signed_in(start, "Solène")

    # The mail worker delivers what the IdP instances only enqueue.
    page = browser.get(f"{topology.proxy}/password/forgot", timeout=10)
    browser.post(f"{topology.proxy}/password/forgot", data=form_fields(page.text, email=person.email), timeout=10)
    assert mail_link(mailbox.wait_for(person.email, "Réinitialisation"), "/password/reset/")


def test_a_regenerated_client_secret_holds_in_every_worker_at_once(topology: Topology) -> None:
    from idp.core import platform
    from idp.core.security import SYSTEM
    from idp.extensions import db
    from idp.models import Client
    from idp.oidc.clients import ClientSpec, create_client

    app = topology.admin_app
    with app.app_context():
        client, old = create_client(db.session, ClientSpec(name="Service (rotation)", redirect_uris=[],
                                                           grant_types=["client_credentials"], scope=""), SYSTEM)
        db.session.commit()
        client_id = client.client_id
    instances = [f"http://127.0.0.1:{port}" for port in topology.idp_ports.values()]

    def token(secret: str | None, base: str) -> int:
        # A new connection each time: the server hands it to any of the instance's workers.
        return requests.post(f"{base}/oauth/token", data={"grant_type": "client_credentials"},
                             auth=(client_id, secret or ""), headers={"Connection": "close"}, timeout=10).status_code

    rounds = 12
    assert [token(old, base) for base in instances for _ in range(rounds)] == [200] * rounds * 2  # cached everywhere
    with app.app_context():
        new = platform.regenerate_secret(db.session, db.session.get(Client, client.id), SYSTEM, actor=None)  # type: ignore[arg-type]
        db.session.commit()
    assert [token(old, base) for base in instances for _ in range(rounds)] == [401] * rounds * 2
    assert [token(new, base) for base in instances for _ in range(rounds)] == [200] * rounds * 2


def test_a_journey_survives_an_idp_instance_killed_midway(topology: Topology) -> None:
    person = make_person(topology.admin_app, given_name="Bastien", family_name="Bascule")
    org = make_structure(topology.admin_app)
    add_member(topology.admin_app, org, person, ["repernet:lecteur"])
    browser = _browser()
    rp = topology.apps["repernet"]
    login_page = browser.get(f"{rp.url}/auth/login?next=/", allow_redirects=True, timeout=30)
    assert login_page.url.startswith(f"{topology.proxy}/") and 'name="password"' in login_page.text

    started = time.monotonic()
    topology.kill("idp-a")  # a crash, mid-journey: the login form is open in the browser
    posted = browser.post(login_page.url, data=form_fields(login_page.text, email=person.email, password=PASSWORD),
                          allow_redirects=True, timeout=30)
    _signed_in(posted, "Bastien")  # the other instance took over: login, code, token exchange
    assert posted.url.startswith(rp.url)
    assert time.monotonic() - started < 10
    # Everything now goes to the survivor; a new journey works too.
    assert requests.get(f"{topology.proxy}/readyz", timeout=5).status_code == 200
    assert re.search("Bastien", browser.get(f"{rp.url}/", timeout=10).text)


def test_a_restored_backup_logs_in_with_earlier_credentials(topology: Topology, tmp_path: Path) -> None:
    """compose/README.md's procedure: pg_dump, then pg_restore into a fresh database."""
    from test_accounts_helpers import login

    from idp import create_app

    person = make_person(topology.admin_app, given_name="Sauvegarde", family_name="Restaurée")
    pg_dump, pg_restore = shutil.which("pg_dump"), shutil.which("pg_restore")
    assert pg_dump and pg_restore, "postgresql-client is needed (pg_dump, pg_restore)"
    dump = tmp_path / "idp.dump"
    subprocess.run([pg_dump, "--format=custom", "--no-owner", f"--file={dump}", _libpq(topology.database_url)],
                   check=True, capture_output=True, timeout=60)
    restored_name = f"portail_restored_{uuid.uuid4().hex[:8]}"
    admin = create_engine(BASE_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{restored_name}"'))
    restored = _database(restored_name)
    app = None
    try:
        subprocess.run([pg_restore, "--no-owner", "--exit-on-error", f"--dbname={_libpq(restored)}", str(dump)],
                       check=True, capture_output=True, timeout=60)
        app = create_app({"TESTING": True, "SECRET_KEY": SECRET, "DATABASE_URL": restored,
                          "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 8, "TOTP_REQUIRED_FOR_ADMINS": False})
        client = app.test_client()
        assert client.get("/readyz").json["checks"]["signing_keys"] == "ok"  # the keys came back with it
        assert login(client, person.email).status_code == 302
        assert "Sauvegarde" in client.get("/account/").get_data(as_text=True)
        assert login(app.test_client(), person.email, password="Not-The-Password-42").status_code == 200
    finally:
        if app is not None:
            app.extensions["backchannel"].pool.shutdown(wait=True)
            app.extensions["db"].session.remove()
            app.extensions["db"].engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{restored_name}" WITH (FORCE)'))
        admin.dispose()
