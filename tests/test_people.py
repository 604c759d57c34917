"""What a new user and an operator stumbled on (issue 16), through HTTP: the portal's home, the badge
that says what it counts, Paris times, the journal in French sentences (raw fields in the CSV), the
language switcher kept in a cookie and on the account."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from manage_helpers import (
    _actors,
    add,
    ask_to_join,
    logged,
    make_structure,
    platform_admin,
    role_id,
)
from test_accounts_helpers import login, user_row

from tests.conftest import csrf_token


@pytest.fixture(scope="module")
def operator(app: Any) -> Any:
    """A platform admin: the actor of the helpers' attachments, and the console's user."""
    user = platform_admin(app)
    _actors[id(app)] = user.id
    return user


@pytest.fixture(autouse=True)
def _operator(operator: Any) -> None:
    pass


def _set_last_login(app: Any, email: str, when: datetime) -> None:
    from idp.core.accounts import find_user
    from idp.extensions import db

    with app.app_context():
        find_user(db.session, email).last_login_at = when
        db.session.commit()


# ---------------------------------------------------------------- the home page

def test_home_signed_out_says_what_the_portal_is(testclient: Any) -> None:
    page = testclient.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Bienvenue sur Portail" in html and "applications de la formation" in html
    assert 'href="/login"' in html and 'href="/signup"' in html


def test_home_signed_in_lists_my_applications_structures_and_requests(app: Any, create_account: Any) -> None:
    user = create_account(given_name="Inès", family_name="Accueil")
    org = make_structure(app, "Atelier Accueil")
    other = make_structure(app, "Lycée Attente")
    add(app, org, user.id, ("sam:redacteur", "repernet:lecteur"))
    ask_to_join(app, user.id, other)
    client = logged(app, user.email)
    html = client.get("/").get_data(as_text=True)
    assert "Bonjour Inès Accueil" in html
    apps = html[html.index('id="applications"'):html.index('id="structures"')]
    assert "SAM — marchés de formation" in apps and "Rédacteur" in apps
    assert "REPERNET — référentiel des structures" in apps and "Lecteur" in apps
    assert 'href="http://127.0.0.1:8001"' in apps or "href=" in apps
    assert "Atelier Accueil" in html[html.index('id="my-structures"'):]
    assert "Lycée Attente" in html[html.index('id="my-requests"'):]


def test_the_error_page_leads_home(testclient: Any) -> None:
    html = testclient.get("/nulle-part").get_data(as_text=True)
    assert 'href="/"' in html


# ---------------------------------------------------------------- the badge

def test_the_badge_says_what_it_counts(app: Any, create_account: Any) -> None:
    admin, requester = create_account(), create_account()
    org = make_structure(app, "Atelier Badge")
    add(app, org, admin.id, ("sam:redacteur",), admin=True)
    ask_to_join(app, requester.id, org)
    client = logged(app, admin.email)
    html = client.get("/account/").get_data(as_text=True)
    badge = re.search(r'<span class="badge"[^>]*>(.*?)</span></span>', html, re.S)
    assert badge is not None
    assert "1" in badge.group(1) and "demande de rattachement en attente" in badge.group(1)


def test_without_a_current_structure_the_badge_is_not_a_lone_number(app: Any, create_account: Any) -> None:
    admin, requester = create_account(), create_account()
    first, second = make_structure(app, "Atelier Un"), make_structure(app, "Atelier Deux")
    add(app, first, admin.id, ("sam:redacteur",), admin=True)
    add(app, second, admin.id, ("sam:redacteur",), admin=True)
    ask_to_join(app, requester.id, first)
    client = logged(app, admin.email)  # two structures: none chosen yet
    html = client.get("/structures/").get_data(as_text=True)
    header = html[html.index("<header"):html.index("</header>")]
    assert re.search(r'<a href="/structures/">Demandes à traiter <span class="badge"', header)


def test_the_console_dashboard_counts_moderation_once(app: Any, create_account: Any, operator: Any) -> None:
    email = operator.email
    requester = create_account()
    orphan = make_structure(app, "Sans administrateur")
    ask_to_join(app, requester.id, orphan)
    html = logged(app, email).get("/admin/").get_data(as_text=True)
    row = html[html.index("Demandes à modérer"):]
    row = row[:row.index("</dd>")]
    assert len(re.findall(r">\d+<", row)) == 1


# ---------------------------------------------------------------- times in Europe/Paris

def test_members_and_users_show_paris_time(app: Any, create_account: Any, operator: Any) -> None:
    admin, member = create_account(), create_account()
    org = make_structure(app, "Atelier Heure")
    add(app, org, admin.id, ("sam:redacteur",), admin=True)
    add(app, org, member.id, ("sam:redacteur",))
    _set_last_login(app, member.email, datetime(2026, 1, 15, 23, 30, tzinfo=UTC))  # 16/01 00:30 in Paris
    html = logged(app, admin.email).get(f"/gestion/{org}/membres").get_data(as_text=True)
    assert "16/01/2026 00:30" in html and "15/01/2026 23:30" not in html
    html = logged(app, operator.email).get(f"/admin/users?q={member.email}").get_data(as_text=True)
    assert "16/01/2026 00:30" in html


def test_the_journal_speaks_french_with_names_and_role_labels(app: Any, create_account: Any) -> None:
    admin = create_account(given_name="Agathe", family_name="Admin")
    member = create_account(given_name="Jules", family_name="Membre")
    org = make_structure(app, "Atelier Journal")
    add(app, org, admin.id, ("sam:redacteur", "sam:signataire"), admin=True)
    client = logged(app, admin.email)
    page = client.get(f"/gestion/{org}/rattacher")
    response = client.post(f"/gestion/{org}/rattacher", data={
        "csrf_token": csrf_token(page.get_data(as_text=True)), "email": member.email,
        "roles": [str(role_id(app, "sam:redacteur"))]}, follow_redirects=True)
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    html = client.get(f"/gestion/{org}/journal").get_data(as_text=True)
    assert "Agathe Admin a rattaché Jules Membre à Atelier Journal : SAM — Rédacteur." in html
    assert "roles=[" not in html.split("Détails techniques")[0]
    assert "Date (heure de Paris)" in html
    # The CSV keeps the raw fields, with the zone in the date.
    body = client.get(f"/gestion/{org}/journal.csv").get_data(as_text=True).lstrip("\ufeff")
    rows = list(csv.reader(io.StringIO(body), delimiter=";"))
    added = next(r for r in rows if r[1] == "membership.added")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0[12]:00", added[0])
    assert "roles=[" in added[-1]


# ---------------------------------------------------------------- the language switcher

def test_the_language_switcher_keeps_the_choice_in_a_cookie_and_the_account(app: Any, create_account: Any) -> None:
    user = create_account()
    client = app.test_client()
    page = client.get("/login")
    assert 'lang="en"' in page.get_data(as_text=True)
    response = client.post("/langue", data={"csrf_token": csrf_token(page.get_data(as_text=True)), "lang": "en",
                                            "next": "/login"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
    assert "portail_lang=en" in response.headers.get("Set-Cookie", "")
    assert "Log in" in client.get("/login").get_data(as_text=True)
    # Logged in, the choice goes on the account: a new browser gets it at login.
    login(client, user.email)
    html = client.get("/account/").get_data(as_text=True)
    client.post("/langue", data={"csrf_token": csrf_token(html), "lang": "en", "next": "/account/"})
    assert user_row(app, user.email).locale == "en"
    fresh = app.test_client()
    login(fresh, user.email)
    html = fresh.get("/").get_data(as_text=True)
    assert "My applications" in html and "Mes applications" not in html
    assert "Rédacteur" not in html


def test_an_unknown_language_or_an_offsite_next_changes_nothing(app: Any) -> None:
    client = app.test_client()
    page = client.get("/login")
    response = client.post("/langue", data={"csrf_token": csrf_token(page.get_data(as_text=True)), "lang": "xx",
                                            "next": "https://evil.example/"})
    assert response.status_code == 302 and "evil" not in response.headers["Location"]
    assert "portail_lang" not in response.headers.get("Set-Cookie", "")


def test_the_switcher_needs_its_csrf_token(app: Any) -> None:
    response = app.test_client().post("/langue", data={"lang": "en"})
    assert response.status_code == 400


def test_role_labels_in_english(app: Any, create_account: Any) -> None:
    user = create_account()
    org = make_structure(app, "Atelier English")
    add(app, org, user.id, ("sam:redacteur",))
    client = logged(app, user.email)
    html = client.get("/?ui_locales=en").get_data(as_text=True)
    assert "Drafter" in html and "SAM — training contracts" in html


# ---------------------------------------------------------------- dead ends and small ones

def test_back_from_repernet_the_designated_admin_reads_structure_registered(app: Any, create_account: Any) -> None:
    user = create_account()
    org = make_structure(app, "Atelier Enregistré")
    add(app, org, user.id, ("repernet:gestionnaire",), admin=True)  # what the API's admin e-mail did
    from idp.extensions import db
    from idp.models import Structure

    with app.app_context():
        siret = db.session.get(Structure, org).siret
    client = logged(app, user.email)
    back = client.get(f"/structures/rattacher?siret={siret}&enregistree=1")
    assert back.status_code == 302
    page = client.get(back.headers["Location"])
    assert "Structure enregistrée." in page.text and "administrateur" in page.text
    assert 'id="already"' not in page.text and "déjà rattaché" not in page.text
    # Without the marker (a later visit), the usual notice.
    assert 'id="already"' in client.get(f"/structures/rattacher/{siret}").text


def test_the_siret_example_passes_its_own_check(app: Any, create_account: Any) -> None:
    from stdnum.fr import siret

    client = logged(app, create_account().email)
    page = client.get("/structures/rattacher").text
    example = re.search(r"par exemple ([\d ]{17})", page).group(1)
    assert siret.is_valid(example.replace(" ", ""))


def test_mail_subjects_elide_de_before_a_vowel() -> None:
    from idp.ui import de

    assert de("Atelier Nord") == "d'Atelier Nord" and de("Hôpital") == "d'Hôpital"
    assert de("Lycée Jean Moulin") == "de Lycée Jean Moulin"


def test_recovery_codes_can_be_downloaded_and_printed(app: Any, create_account: Any) -> None:
    from urllib.parse import unquote

    from test_totp import enrol

    user = create_account()
    client = app.test_client()
    login(client, user.email)
    enrol(app, client, user.email)
    page = client.get("/account/totp")
    regenerated = client.post("/account/totp/recovery-codes", data={"csrf_token": csrf_token(page.text)})
    codes = re.findall(r"<code>([a-z0-9]{5}-[a-z0-9]{5})</code>", regenerated.text)
    link = re.search(r'id="download-codes" download="[^"]+\.txt"\s+href="data:text/plain;charset=utf-8,([^"]+)"',
                     regenerated.text)
    assert link is not None and all(code in unquote(link.group(1)) for code in codes)
    assert "data-print" in regenerated.text and "print.js" in regenerated.text
    script = client.get("/static/print.js")
    assert script.status_code == 200 and b"window.print()" in script.data
    script.close()


def test_every_folder_of_templates_and_static_files_is_a_declared_package() -> None:
    """setuptools warns "Package would be ignored" (hundreds of times at `make run`) for a folder of
    package data that discovery does not list: setup.cfg's namespace discovery lists them all."""
    import configparser
    from pathlib import Path

    from setuptools import find_namespace_packages

    root = Path(__file__).resolve().parent.parent
    cfg = configparser.ConfigParser()
    cfg.read(root / "setup.cfg")
    assert cfg["options"]["packages"].strip() == "find_namespace:"
    include = [p.strip() for p in cfg["options.packages.find"]["include"].split(",")]
    exclude = [p.strip() for p in cfg["options.packages.find"]["exclude"].split(",")]
    found = set(find_namespace_packages(str(root), include=include, exclude=exclude))
    data_dirs = {p.parent.relative_to(root) for top in ("idp", "shared", "apps") for p in (root / top).rglob("*")
                 if p.is_file() and p.suffix in (".html", ".txt", ".css", ".js", ".po", ".mako", ".ldif")
                 and "__pycache__" not in p.parts}
    missing = sorted(str(d) for d in data_dirs if ".".join(d.parts) not in found)
    assert not missing, missing


def test_stopping_make_run_stops_the_apps_once() -> None:
    """Ctrl-C on `make run`: `kill 0` in an EXIT trap re-entered the trap until the shell crashed
    ("Segmentation fault"); the recipe now stops the apps it started, by their ids."""
    from pathlib import Path

    makefile = (Path(__file__).resolve().parent.parent / "Makefile").read_text()
    recipe = makefile[makefile.index("\nrun:"):makefile.index("\nlint:")]
    assert "trap 'kill 0'" not in recipe
    assert "trap 'trap - INT TERM EXIT;" in recipe and recipe.count('PIDS="$$PIDS $$!"') == 2
