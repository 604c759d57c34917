# ruff: noqa: F811 - pytest fixtures imported from tests/rp_helpers.py are parameters here
"""The apps on the shell (SAM, REPERNET, Catalogue): health pair, home page with the person's roles
in human words, 403 for a person without any, single sign-on from one app to the next."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.rp_helpers import (
    RP,
    catalogue,  # noqa: F401 - the live-server fixture
    member_of,
    new_browser,
    repernet,  # noqa: F401 - the live-server fixture
    rp_get,
    rp_login,
    sam,  # noqa: F401 - the live-server fixture
)


@pytest.fixture(params=["sam", "repernet", "catalogue"])
def each_app(request: pytest.FixtureRequest) -> RP:
    return request.getfixturevalue(request.param)


def test_health_pair(each_app: RP) -> None:
    assert requests.get(f"{each_app.url}/livez", timeout=5).json() == {"status": "ok"}
    ready = requests.get(f"{each_app.url}/readyz", timeout=5)
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "schema": "ok"}


def test_security_headers_on_every_app(each_app: RP) -> None:
    response = requests.get(f"{each_app.url}/", timeout=5)
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_unknown_page_is_french_and_api_paths_are_problems(each_app: RP) -> None:
    page = requests.get(f"{each_app.url}/nulle-part", timeout=5)
    assert page.status_code == 404 and "Page introuvable" in page.text
    api = requests.get(f"{each_app.url}/api/v1/nulle-part", timeout=5)
    assert api.status_code == 404 and api.headers["Content-Type"] == "application/problem+json"
    assert api.json()["title"] == "Page introuvable"


@pytest.mark.parametrize(("name", "grants", "labels"), [
    ("sam", ["sam:redacteur", "sam:signataire"], ["SAM — Rédacteur", "SAM — Signataire"]),
    ("catalogue", ["catalogue:editeur"], ["Catalogue — Éditeur"]),
])
def test_home_shows_the_roles_in_words(app: Any, request: pytest.FixtureRequest, name: str, grants: list[str],
                                       labels: list[str]) -> None:
    rp: RP = request.getfixturevalue(name)
    person, org = member_of(app, grants)
    page = rp_login(new_browser(), rp, person.email)
    assert page.status_code == 200
    for label in labels:
        assert label in page.text
    assert grants[0] not in page.text and org.name in page.text


@pytest.mark.parametrize("name", ["sam", "catalogue"])
def test_a_person_without_any_role_gets_the_french_403(app: Any, request: pytest.FixtureRequest, name: str) -> None:
    rp: RP = request.getfixturevalue(name)
    person, _org = member_of(app, ["repernet:lecteur"])
    page = rp_login(new_browser(), rp, person.email)
    assert page.status_code == 403 and "Accès refusé" in page.text


def test_single_sign_on_from_sam_to_the_catalogue(app: Any, sam: RP, catalogue: RP) -> None:
    person, org = member_of(app, ["sam:redacteur", "catalogue:editeur"])
    browser = new_browser()
    rp_login(browser, sam, person.email)
    # The Catalogue's login goes to the IdP, which knows the browser: no password asked.
    start = rp_get(browser, catalogue, "/auth/login?next=/")
    authorize = browser.get(start.headers["Location"], allow_redirects=False)
    assert authorize.status_code == 302 and authorize.headers["Location"].startswith(f"{catalogue.url}/auth/callback")
    home = browser.get(authorize.headers["Location"])
    assert home.status_code == 200 and "Catalogue — Éditeur" in home.text and org.name in home.text


@pytest.mark.parametrize(("name", "command", "says"), [
    ("sam", ["demo", "seed"], "sam : démo créée"),
    ("sam", ["catalogue", "worker", "--once"], "0 offre(s) transmise(s) au Catalogue"),
    ("catalogue", ["reminders"], "rappel(s) mis en file d'envoi"),
    ("repernet", ["mail", "worker", "--once"], ""),
])
def test_each_apps_own_command_line(tmp_path: Any, name: str, command: list[str], says: str) -> None:
    import os
    import subprocess
    import sys

    prefix = name.upper()
    env = {**os.environ, f"{prefix}_DEMO": "true", f"{prefix}_DATABASE_URL": f"sqlite:///{tmp_path / 'app.sqlite3'}",
           f"{prefix}_FILES_DIR": str(tmp_path / "files")}
    run = [sys.executable, "-m", f"apps.{name}"]
    upgraded = subprocess.run([*run, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=60)
    assert upgraded.returncode == 0 and "base de données à jour" in upgraded.stdout, upgraded.stderr
    done = subprocess.run([*run, *command], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert says in done.stdout
    unknown = subprocess.run([*run, "nimporte", "quoi"], env=env, capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 2 and "usage" in unknown.stderr
