"""The application shell: start-up checks, security headers, cookies, error pages, deployment files."""

from __future__ import annotations

import importlib.util
import re
import shlex
import shutil
import sys
from configparser import ConfigParser
from pathlib import Path
from typing import Any

import click
import pytest

from idp import create_app
from idp.__main__ import main as idp_main
from idp.extensions import db

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "compose"


# ---------------------------------------------------------------- start-up

def test_refuses_to_start_without_a_secret_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("IDP_SECRET_KEY", raising=False)
    with pytest.raises(RuntimeError, match="IDP_SECRET_KEY"):
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}"})


@pytest.mark.parametrize("config", [{"DEMO": True}, {"SECRET_KEY": "a-real-production-secret"}],
                         ids=["demo", "secret-set"])
def test_starts_in_the_demo_or_with_a_secret_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                 config: dict[str, Any]) -> None:
    monkeypatch.delenv("IDP_SECRET_KEY", raising=False)
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}", **config})
    try:
        assert not app.testing and app.config["ISSUER"]
    finally:
        app.extensions["backchannel"].pool.shutdown(wait=True)
        with app.app_context():
            db.engine.dispose()


def test_the_secret_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IDP_SECRET_KEY", "from-the-environment-0123456789")
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}"})
    try:
        assert app.config["SECRET_KEY"] == "from-the-environment-0123456789"
    finally:
        app.extensions["backchannel"].pool.shutdown(wait=True)
        with app.app_context():
            db.engine.dispose()


# ---------------------------------------------------------------- headers and cookies

def _html_pages(app: Any) -> list[str]:
    """Every GET route without URL parameters (the HTML pages and the JSON endpoints)."""
    return sorted(
        rule.rule for rule in app.url_map.iter_rules()
        if "GET" in rule.methods and not rule.arguments and rule.endpoint != "static"
    )


def test_security_headers_on_every_page(app: Any, testclient: Any) -> None:
    pages = _html_pages(app)
    assert {"/login", "/signup", "/dev/inbox"} <= set(pages)
    html_seen = 0
    for path in [*pages, "/no-such-page"]:
        response = testclient.get(path)
        assert response.status_code < 500, path
        headers = response.headers
        csp = headers.get("Content-Security-Policy", "")
        assert "frame-ancestors 'none'" in csp, path
        assert "default-src 'self'" in csp and "object-src 'none'" in csp, path
        assert headers.get("X-Content-Type-Options") == "nosniff", path
        assert headers.get("X-Frame-Options") == "DENY", path
        assert headers.get("Referrer-Policy") == "no-referrer", path
        if response.mimetype == "text/html":
            html_seen += 1
            assert headers.get("Cache-Control") == "no-store", path
    assert html_seen >= 4


def test_session_cookie_is_named_httponly_and_lax(app: Any, testclient: Any) -> None:
    assert app.config["SESSION_COOKIE_NAME"] == "portail_idp"
    response = testclient.get("/login")  # the CSRF token lives in the session
    assert response.status_code == 200
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("portail_idp=")]
    assert len(cookies) == 1, response.headers.getlist("Set-Cookie")
    attributes = {part.strip().split("=")[0].lower() for part in cookies[0].split(";")[1:]}
    assert "httponly" in attributes
    assert "samesite=lax" in cookies[0].lower()
    assert "path" in attributes


# ---------------------------------------------------------------- errors

def test_unknown_page_is_a_french_404(testclient: Any) -> None:
    response = testclient.get("/nulle-part", headers={"Accept": "text/html", "Accept-Language": "fr"})
    assert response.status_code == 404 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "Page introuvable" in html and 'lang="fr"' in html
    assert "Traceback" not in html and "werkzeug" not in html.lower()


def test_unknown_page_in_english_on_request(testclient: Any) -> None:
    response = testclient.get("/nulle-part", headers={"Accept": "text/html", "Accept-Language": "en"})
    assert response.status_code == 404
    assert "Page introuvable" not in response.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/oauth/nope", "/.well-known/nope"])
def test_unknown_api_path_is_json(testclient: Any, path: str) -> None:
    response = testclient.get(path)
    assert response.status_code == 404
    assert response.is_json and response.get_json()["error"] == "not_found"


def test_unknown_service_api_path_is_a_problem_document(testclient: Any) -> None:
    response = testclient.get("/api/v1/nope")
    assert response.status_code == 404 and response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == 404


def test_json_client_gets_json_errors(testclient: Any) -> None:
    response = testclient.get("/nulle-part", headers={"Accept": "application/json"})
    assert response.status_code == 404 and response.is_json


def test_wrong_method_on_an_api_endpoint_is_json(testclient: Any) -> None:
    response = testclient.get("/oauth/token")
    assert response.status_code == 405 and response.is_json


def test_oversized_form_is_413_not_500(app: Any, testclient: Any) -> None:
    big = "x" * (app.config["MAX_CONTENT_LENGTH"] + 1024)
    response = testclient.post("/login", data={"email": "a@b.test", "password": big})
    assert response.status_code == 413
    assert "Envoi trop volumineux" in response.get_data(as_text=True)


def test_oversized_token_request_is_json_413(app: Any, testclient: Any) -> None:
    big = "x" * (app.config["MAX_CONTENT_LENGTH"] + 1024)
    response = testclient.post("/oauth/token", data={"grant_type": "authorization_code", "code": big})
    assert response.status_code == 413 and response.is_json


# ---------------------------------------------------------------- deployment files (SPEC §10.4)

def _console_scripts() -> set[str]:
    parser = ConfigParser()
    parser.read(ROOT / "setup.cfg")
    entries = parser.get("options.entry_points", "console_scripts").strip().splitlines()
    return {line.split("=")[0].strip() for line in entries if line.strip()}


def _idp_command_exists(args: list[str]) -> bool:
    """Whether `idp <args...>` names a real command (options after it are not checked here)."""
    from idp.cli import register_commands

    group = click.Group("idp")
    fake = type("App", (), {"cli": group})()
    register_commands(fake)  # type: ignore[arg-type]
    command: click.Command | None = group
    ctx = click.Context(group)
    for word in args:
        if word.startswith("-"):
            break
        assert isinstance(command, click.Group), f"idp {' '.join(args)}: {word!r} under a command"
        command = command.get_command(ctx, word)
        if command is None:
            return False
    return True


def _check_command(argv: list[str]) -> None:
    program = argv[0]
    if program == "env":  # env NAME=value … command
        _check_command([a for a in argv[1:] if not re.match(r"^[A-Z_]+=", a)])
    elif program == "idp":
        assert "idp" in _console_scripts()
        assert _idp_command_exists(argv[1:]), argv
    elif program == "gunicorn":
        assert importlib.util.find_spec("gunicorn") is not None
        target = next(a for a in argv[1:] if ":" in a and not a.startswith("-") and "." in a.split(":")[0])
        module, _, attr = target.partition(":")
        spec = importlib.util.find_spec(module)
        assert spec is not None and spec.origin, target
        assert re.search(rf"^{attr}\s*=", Path(spec.origin).read_text(), re.M), target
    elif program == "python" and argv[1] == "-m":  # an app's own command line (shared.cli)
        app_name = argv[2].removeprefix("apps.")
        assert argv[2].startswith("apps.") and importlib.util.find_spec(f"{argv[2]}.__main__"), argv
        assert argv[3:5] in (["db", "upgrade"], ["mail", "worker"], ["catalogue", "worker"], ["serve"],
                             ["serve", "--demo"], ["reminders"]), argv
        assert (ROOT / "apps" / app_name / "migrations" / "env.py").exists()
    elif program == "sleep":  # a daily job's pause before Compose runs it again
        assert len(argv) == 2 and argv[1].isdecimal(), argv
    elif program in ("sh", "bash"):
        for part in re.split(r"&&|;|\|\|", argv[argv.index("-c") + 1]):
            _check_command(shlex.split(part))
    else:
        pytest.fail(f"unexpected program in a deployment command: {argv}")


def test_procfile_runs_existing_commands() -> None:
    lines = [line for line in (COMPOSE / "Procfile").read_text().splitlines() if line.strip()]
    processes = {}
    for line in lines:
        if line.startswith("#"):
            match = re.match(r"#\s*(sam|repernet|catalogue):\s*(.+)", line)
            if match:
                _check_command(shlex.split(match.group(2)))  # the commented apps, for later
            continue
        name, _, command = line.partition(":")
        processes[name.strip()] = shlex.split(command)
    assert set(processes) == {"idp", "mail", "sam", "repernet", "catalogue", "sam-mail", "catalogue-mail",
                              "sam-catalogue"}
    for argv in processes.values():
        _check_command(argv)
    assert "--workers" in processes["idp"] and int(processes["idp"][processes["idp"].index("--workers") + 1]) > 1
    assert processes["mail"][:3] == ["idp", "mail", "worker"]


def _compose() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml", reason="PyYAML belongs in the test extras (setup.cfg)")
    return yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())


def test_docker_compose_file_passes_the_compose_schema() -> None:
    """No Docker engine in CI: the file is checked against the Compose format (tests/compose_schema.py)."""
    import jsonschema
    from compose_schema import COMPOSE as SCHEMA

    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.validate(_compose(), SCHEMA, cls=jsonschema.Draft202012Validator)
    broken = _compose()
    broken["services"]["idp"]["depends_on"]["migrate"]["condition"] = "service_done"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA, cls=jsonschema.Draft202012Validator)


def _probe(service: dict[str, Any]) -> str:
    return " ".join(service["healthcheck"]["test"])


def test_docker_compose_runs_every_service_with_probes() -> None:
    spec = _compose()
    services = spec["services"]
    assert {"postgres", "redis", "openldap", "mailpit", "migrate", "idp", "proxy", "mail-worker",
            "sam", "repernet", "catalogue", "sam-mail", "catalogue-mail", "sam-catalogue", "idp-daily",
            "catalogue-daily"} <= set(services)
    assert "openldap" in services["openldap"]["image"] and "mailpit" in services["mailpit"]["image"]

    for name in ("migrate", "idp", "mail-worker"):
        service = services[name]
        assert service["build"] == {"context": "..", "dockerfile": "compose/Dockerfile"}
        env = service["environment"]
        for variable in ("IDP_DATABASE_URL", "IDP_REDIS_URL", "IDP_SMTP_URL", "IDP_SECRET_KEY", "IDP_ISSUER"):
            assert env.get(variable), (name, variable)
        assert env["IDP_DATABASE_URL"].startswith("postgresql+psycopg://") and "@postgres:" in env["IDP_DATABASE_URL"]
        assert "@redis:" in env["IDP_REDIS_URL"] or "//redis:" in env["IDP_REDIS_URL"]
        assert "mailpit" in env["IDP_SMTP_URL"]
        assert ":?" in env["IDP_SECRET_KEY"], "the secret must be required, never defaulted"
        assert env["IDP_PROXY_FIX"] == "true"  # behind the proxy
    for name, service in services.items():
        if "command" in service and service.get("build"):
            _check_command(service["command"])
        for dependency in service.get("depends_on", {}):
            assert dependency in services, (name, dependency)

    migrate = services["migrate"]["command"][-1]
    assert migrate.startswith("idp db upgrade && idp keys ensure")
    for app_name in ("sam", "repernet", "catalogue"):
        assert f"python -m apps.{app_name} db upgrade" in migrate
    idp = services["idp"]
    assert idp["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    command = " ".join(idp["command"])
    assert "--host 0.0.0.0 --port 8000" in command or "0.0.0.0:8000" in command
    assert "ports" not in idp  # replicas: only the proxy is published
    assert "/readyz" in _probe(idp) and "/readyz" in _probe(services["proxy"])
    assert services["mail-worker"]["command"][:3] == ["idp", "mail", "worker"]
    # The apps' workers, as in compose/Procfile: each with its app's settings, after the migrations.
    for name, argv, env in (("sam-mail", ["apps.sam", "mail", "worker"], "sam"),
                            ("catalogue-mail", ["apps.catalogue", "mail", "worker"], "catalogue"),
                            ("sam-catalogue", ["apps.sam", "catalogue", "worker"], "sam")):
        assert services[name]["command"][1:5] == ["-m", *argv], name
        assert services[name]["environment"] == services[env]["environment"], name
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
    # The daily jobs (README): the join requests' reminders and expiry, the Catalogue's yearly check.
    assert services["idp-daily"]["command"][-1].startswith("idp requests expire;")
    assert services["idp-daily"]["environment"] == services["idp"]["environment"]
    assert services["catalogue-daily"]["command"][-1].startswith("python -m apps.catalogue reminders;")
    assert services["catalogue-daily"]["environment"] == services["catalogue"]["environment"]

    # One issuer URL that the browser (published port) and the apps' containers (alias) both reach.
    proxy = services["proxy"]
    assert any(p.endswith(":8000:8000") for p in proxy["ports"]) and "portail.localhost" in \
        proxy["networks"]["default"]["aliases"]
    assert proxy["depends_on"]["idp"]["condition"] == "service_healthy"
    issuer = services["idp"]["environment"]["IDP_ISSUER"]
    assert issuer.endswith("portail.localhost}:8000")
    for mount in proxy["volumes"]:
        assert (COMPOSE / mount.split(":")[0]).exists(), mount
    nginx = (COMPOSE / "nginx" / "nginx.conf").read_text()
    assert "include /etc/nginx/idp-proxy.conf;" in nginx and "server idp:8000" in nginx

    for app_name, port in (("sam", 8001), ("repernet", 8002), ("catalogue", 8003)):
        service = services[app_name]
        prefix = app_name.upper()
        env = service["environment"]
        assert env[f"{prefix}_OIDC_ISSUER"] == issuer, app_name
        assert ":?" in env[f"{prefix}_SECRET_KEY"] and ":?" in env[f"{prefix}_OIDC_CLIENT_SECRET"]
        assert env[f"{prefix}_DATABASE_URL"].endswith(f"@postgres:5432/{app_name}")
        assert service["command"][:2] == ["gunicorn", f"apps.{app_name}.wsgi:app"]
        assert f"0.0.0.0:{port}" in service["command"] and f"127.0.0.1:{port}:{port}" in service["ports"]
        assert f"127.0.0.1:{port}/readyz" in _probe(service)
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert service["depends_on"]["proxy"]["condition"] == "service_healthy"
        assert f"CREATE DATABASE {app_name}" in (COMPOSE / "postgres-init.sql").read_text()
    for app_name in ("sam", "repernet"):  # their upload folders are volumes (backups: README)
        files = services[app_name]["environment"][f"{app_name.upper()}_FILES_DIR"]
        assert any(v.endswith(f":{files}") for v in services[app_name]["volumes"])
    for volume in [v.split(":")[0] for s in services.values() for v in s.get("volumes", [])]:
        assert volume in spec["volumes"] or (COMPOSE / volume).exists(), volume


def test_dockerfile_installs_the_project() -> None:
    text = (COMPOSE / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.1[1-9]", text, re.M)
    assert "pip install ." in text and "USER portail" in text and "COPY apps ./apps" in text
    assert "/readyz" in text
    for source in re.findall(r"^COPY (\S+) \./\S*$", text, re.M):
        assert (ROOT / source).exists(), source
    assert "idp.wsgi:app" in text


def test_idp_console_script_is_installed() -> None:
    assert "idp" in _console_scripts()
    assert idp_main.__module__ == "idp.__main__"
    script = Path(sys.executable).parent / "idp"
    assert script.exists() or shutil.which("idp")


def test_compose_readme_explains_both() -> None:
    text = (COMPOSE / "README.md").read_text()
    assert "docker compose" in text and "honcho" in text and "Procfile" in text
    # The operations an operator needs: probes, key rotation, backup and restore (issue 17).
    assert "/readyz" in text and "SECRET_KEY_FALLBACKS" in text
    assert "pg_dump" in text and "pg_restore" in text and "FILES_DIR" in text and "signing keys" in text
