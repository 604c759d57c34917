# ruff: noqa: F811 - pytest fixtures imported from other test modules are parameters here
"""RGAA 4 / WCAG 2.1 AA (issue 16): axe-core, the engine the DINUM's tools use, run in headless
Chromium on every page the journeys visit, signed out, as a member, a structure admin and a
platform admin, and on the apps' pages: no violation of any impact.

axe-core comes from its npm package, installed by `make test` under .venv/axe (AXE_CORE overrides)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyotp
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as seen

from tests.conftest import PASSWORD
from tests.oidc_helpers import CALLBACK, authorize_url, pkce_pair
from tests.rp_helpers import (
    RP,
    add_member,
    catalogue,  # noqa: F401 - the live-server fixture
    make_person,
    make_structure,
    member_of,
    platform_admin,
    repernet,  # noqa: F401 - the live-server fixture
    sam,  # noqa: F401 - the live-server fixture
)
from tests.test_browser import chrome, chromium, click, wait  # noqa: F401 - fixtures

AXE_CORE = Path(os.environ.get("AXE_CORE") or Path(__file__).parent.parent / ".venv/axe/node_modules/axe-core/axe.min.js")
# WCAG 2.1 A and AA (RGAA 4 follows them) and axe's best practices: every rule axe runs by default.
AXE_OPTIONS = {"resultTypes": ["violations"]}


def axe_violations(driver: webdriver.Chrome) -> list[str]:
    """axe-core's violations on the page shown, one line each: rule, impact, the nodes' selectors."""
    assert AXE_CORE.exists(), f"{AXE_CORE} is missing: `make test` installs axe-core from npm"
    if not driver.execute_script("return typeof window.axe !== 'undefined'"):
        driver.execute_script(AXE_CORE.read_text(encoding="utf-8"))
    driver.set_script_timeout(30)
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, arguments[0]).then(r => done(r.violations), e => done([{id: 'axe-error', impact: String(e), nodes: []}]));",
        AXE_OPTIONS)
    return [f"{v['id']} ({v['impact']}): {v.get('help', '')} — " + ", ".join(
        " ".join(n["target"]) if isinstance(n["target"], list) else str(n["target"]) for n in v["nodes"][:5])
        for v in result]


def check(driver: webdriver.Chrome, url: str, found: dict[str, list[str]]) -> None:
    driver.get(url)
    wait(driver, lambda d: d.execute_script("return document.readyState") == "complete")
    violations = axe_violations(driver)
    if violations:
        found[url] = violations


def log_in_as(driver: webdriver.Chrome, base: str, email: str) -> None:
    driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
    driver.get(f"{base}/login")
    wait(driver, lambda d: d.find_element(By.NAME, "email")).send_keys(email)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    click(driver, "Se connecter")


def report(found: dict[str, list[str]]) -> str:
    return "\n".join(f"{url}\n  " + "\n  ".join(lines) for url, lines in found.items())


def test_idp_pages_signed_out(app: Any, live_server: str, chrome: webdriver.Chrome) -> None:
    found: dict[str, list[str]] = {}
    for path in ("/", "/login", "/signup", "/signup/resend", "/password/forgot", "/bienvenue",
                 "/password/reset/bad-token", "/signup/verify/bad-token", "/nowhere"):
        check(chrome, live_server + path, found)
    assert not found, report(found)


def submit(driver: webdriver.Chrome, values: dict[str, str], button: str) -> None:
    for name, value in values.items():
        field = driver.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)
    click(driver, button)


def test_idp_forms_with_their_errors(app: Any, live_server: str, chrome: webdriver.Chrome) -> None:
    """The pages as they come back with errors (messages, aria-invalid, values kept)."""
    found: dict[str, list[str]] = {}
    chrome.execute_cdp_cmd("Network.clearBrowserCookies", {})
    chrome.get(f"{live_server}/login")
    submit(chrome, {"email": "personne@example.test", "password": "mauvais"}, "Se connecter")
    check(chrome, chrome.current_url, found)
    chrome.get(f"{live_server}/signup")
    submit(chrome, {"email": "pas-une-adresse", "password": "court"}, "Créer mon compte")
    found.update({f"{k} (erreurs)": v for k, v in {chrome.current_url: axe_violations(chrome)}.items() if v})
    chrome.get(f"{live_server}/password/forgot")
    submit(chrome, {"email": "x"}, "Recevoir le lien")
    found.update({f"{k} (erreurs)": v for k, v in {chrome.current_url: axe_violations(chrome)}.items() if v})
    person, org = member_of(app, ["repernet:lecteur"])
    log_in_as(chrome, live_server, person.email)
    chrome.get(f"{live_server}/structures/rattacher?siret=12345678900012")
    found.update({f"{k} (erreurs)": v for k, v in {chrome.current_url: axe_violations(chrome)}.items() if v})
    chrome.get(f"{live_server}/account/password")
    submit(chrome, {"current": "faux"}, "Enregistrer")
    found.update({f"{k} (erreurs)": v for k, v in {chrome.current_url: axe_violations(chrome)}.items() if v})
    assert not found, report(found)


def test_idp_pages_as_a_member_and_a_structure_admin(app: Any, live_server: str, chrome: webdriver.Chrome) -> None:
    member, org = member_of(app, ["repernet:lecteur", "sam:redacteur"])
    second = make_structure(app)
    add_member(app, second, member, ["repernet:gestionnaire"])
    admin = make_person(app, given_name="Agathe", family_name="Admin")
    add_member(app, org, admin, ["sam:redacteur", "sam:signataire", "repernet:lecteur"], admin=True)
    found: dict[str, list[str]] = {}
    log_in_as(chrome, live_server, member.email)
    for path in ("/account/structure", "/", "/account/", "/account/profile", "/account/password", "/account/email",
                 "/account/sessions", "/account/totp", "/account/totp/enroll", "/structures/",
                 "/structures/rattacher", f"/structures/rattacher/{org.siret}", "/ancien-compte/",
                 "/ancien-compte/lier", "/ancien-compte/oubli", "/logout"):
        check(chrome, live_server + path, found)
    log_in_as(chrome, live_server, admin.email)
    base = f"{live_server}/gestion/{org.id}"
    for path in ("/", "/membres", "/demandes", "/invitations", "/journal", "/rattacher"):
        check(chrome, base + path, found)
    check(chrome, live_server + "/", found)
    chrome.get(f"{base}/membres")
    links = [a.get_attribute("href") for a in chrome.find_elements(By.CSS_SELECTOR, "a[href*='/membres/']")]
    for href in links[:2]:
        check(chrome, href, found)
    assert not found, report(found)


def test_idp_console_pages(app: Any, live_server: str, chrome: webdriver.Chrome) -> None:
    from datetime import timedelta

    from idp.core.security import SYSTEM
    from idp.extensions import db
    from idp.models import Consent, OutboxMail, utcnow
    from idp.oidc.clients import ClientSpec, create_client

    with app.app_context():
        admin = platform_admin(app)
        db.session.commit()
        email, admin_id = admin.email, admin.id
        # A client with lifetimes of its own and a consent; mail failed, retried and sent.
        client, _secret = create_client(db.session, ClientSpec(name="Client de la console", redirect_uris=[CALLBACK]),
                                        SYSTEM)
        client.access_token_lifetime, client.refresh_token_lifetime = 120, 3600
        db.session.add(Consent(user_id=admin_id, client_id=client.client_id, scope="openid profile"))
        db.session.add_all([
            OutboxMail(recipient="echec@example.test", subject="En échec", text_body="t", html_body="<p>t</p>",
                       status="failed", attempts=8, last_error="550 boîte inconnue"),
            OutboxMail(recipient="retard@example.test", subject="Réessayé", text_body="t", html_body="<p>t</p>",
                       status="pending", attempts=2, last_error="421 plus tard",
                       next_attempt_at=utcnow() + timedelta(days=1)),
        ])
        db.session.commit()
        client_pk = client.id
    org = make_structure(app)
    found: dict[str, list[str]] = {}
    log_in_as(chrome, live_server, email)
    for path in ("/admin/", "/admin/users", f"/admin/users/{admin_id}", "/admin/structures", "/admin/structures/new",
                 f"/admin/structures/{org.id}", f"/admin/structures/{org.id}/members",
                 f"/admin/structures/{org.id}/entitlements", "/admin/clients", "/admin/clients/new",
                 f"/admin/clients/{client_pk}", f"/admin/clients/{client_pk}/console",
                 f"/admin/clients/{client_pk}/supprimer", "/admin/applications", "/admin/applications/sam",
                 "/admin/profiles", "/admin/profiles/new", "/admin/moderation", "/admin/keys", "/admin/audit",
                 "/admin/audit?event=login", "/dev/inbox", "/admin/tableau-de-bord", "/admin/reglages",
                 "/admin/courriels", "/admin/courriels?etat=failed", "/admin/comptes/nouveau",
                 f"/admin/comptes/{admin_id}"):
        check(chrome, live_server + path, found)
    for selector in ("a[href*='/admin/profiles/']",):
        chrome.get(live_server + "/admin/profiles")
        hrefs = [a.get_attribute("href") for a in chrome.find_elements(By.CSS_SELECTOR, selector)]
        for href in [h for h in hrefs if not h.endswith("/new")][:1]:
            check(chrome, href, found)
    # The console's forms as they come back with errors.
    chrome.get(f"{live_server}/admin/clients/{client_pk}/console")
    submit(chrome, {"access_token_lifetime": "bientôt"}, "Enregistrer les durées")
    found.update({f"{k} (erreurs)": v for k, v in {chrome.current_url: axe_violations(chrome)}.items() if v})
    chrome.get(f"{live_server}/admin/comptes/nouveau")
    submit(chrome, {"email": "pas-une-adresse"}, "Créer le compte")
    found.update({f"{k} (erreurs)": v for k, v in {chrome.current_url: axe_violations(chrome)}.items() if v})
    assert not found, report(found)


def test_idp_journey_pages_an_application_sends_people_to(app: Any, live_server: str, chrome: webdriver.Chrome) -> None:
    """The pages of the OpenID Connect journey: an application's login page, the second factor (and
    its error), the structure choice, the consent, the account chooser, the logout confirmation, the
    logged-out pages, and the error pages (an OAuth error, 403, 404)."""
    from idp.core.security import SYSTEM
    from idp.extensions import db
    from idp.models import User, utcnow
    from idp.oidc.clients import ClientSpec, create_client

    with app.app_context():
        client, _secret = create_client(db.session, ClientSpec(
            name="Application tierce", redirect_uris=[CALLBACK], post_logout_redirect_uris=[f"{live_server}/"]), SYSTEM)
        db.session.commit()
        client_id = client.client_id
    member, _org = member_of(app, ["repernet:lecteur"])
    add_member(app, make_structure(app), member, ["sam:redacteur"])  # two structures: the choice is asked
    guarded = make_person(app, given_name="Double", family_name="Facteur")
    with app.app_context():
        user = db.session.get(User, guarded.user_id)
        user.totp_secret, user.totp_enabled_at = pyotp.random_base32(), utcnow()
        db.session.commit()
    _verifier, challenge = pkce_pair()
    url = authorize_url(live_server, client_id, challenge=challenge)
    found: dict[str, list[str]] = {}
    # Signed out: the application's request, its errors, the logged-out pages.
    check(chrome, url, found)
    assert "/login" in chrome.current_url
    check(chrome, authorize_url(live_server, "inconnu", challenge=challenge), found)
    check(chrome, f"{live_server}/oauth/logout?client_id={client_id}", found)
    check(chrome, f"{live_server}/logout", found)
    # The second factor, then with a wrong code.
    chrome.get(url)
    log_in(chrome, guarded.email)
    assert "/login/totp" in chrome.current_url
    check(chrome, chrome.current_url, found)
    submit(chrome, {"code": "000000"}, "Valider")
    assert "Code incorrect" in chrome.page_source
    found.update({f"{k} (erreurs)": v for k, v in {chrome.current_url: axe_violations(chrome)}.items() if v})
    # The structure choice and the consent on the way back to the application.
    chrome.execute_cdp_cmd("Network.clearBrowserCookies", {})
    chrome.get(url)
    log_in(chrome, member.email)
    assert "/account/structure" in chrome.current_url
    check(chrome, chrome.current_url, found)
    chrome.find_element(By.CSS_SELECTOR, "input[name=structure]").click()
    click(chrome, "Continuer")
    assert 'name="decision"' in chrome.page_source
    check(chrome, chrome.current_url, found)
    check(chrome, authorize_url(live_server, client_id, challenge=challenge, prompt="select_account"), found)
    check(chrome, f"{live_server}/admin/", found)  # 403
    # Logging out from the application: the confirmation, then the page that says it is done.
    check(chrome, f"{live_server}/oauth/logout?client_id={client_id}", found)
    page = chrome.find_element(By.TAG_NAME, "html")
    chrome.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()  # not the header's
    wait(chrome, seen.staleness_of(page))
    assert "logout" in chrome.current_url
    found.update({f"{k} (déconnecté)": v for k, v in {chrome.current_url: axe_violations(chrome)}.items() if v})
    assert not found, report(found)


def log_in(driver: webdriver.Chrome, email: str) -> None:
    """The login form on screen (where an application's request led)."""
    wait(driver, lambda d: d.find_element(By.NAME, "email")).send_keys(email)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    click(driver, "Se connecter")


def test_the_apps_public_pages(app: Any, live_server: str, chrome: webdriver.Chrome, sam: RP, catalogue: RP,
                               repernet: RP) -> None:
    """Signed out: SAM's consultations and a published one, the Catalogue's search (with results) and
    an offer, REPERNET's home."""
    from tests.rp_helpers import new_browser, rp_login
    from tests.test_catalogue import full_offer, publish
    from tests.test_sam_helpers import buyer, published

    browser, _org, _email = buyer(app, sam)
    consultation = published(browser, sam)
    editor, org = member_of(app, ["catalogue:editeur"])
    editing = new_browser()
    rp_login(editing, catalogue, editor.email)
    offer_id, _action = full_offer(editing, catalogue, org.siret, title="Électricité des bâtiments (a11y)")
    moderating = new_browser()
    mod, _region = member_of(app, ["catalogue:moderateur", "catalogue:lecteur"], org=make_structure(app, kind="region"))
    rp_login(moderating, catalogue, mod.email)
    assert publish(moderating, catalogue, offer_id).status_code == 302
    found: dict[str, list[str]] = {}
    for url in (f"{sam.url}/consultations", f"{sam.url}/consultations/{consultation}", f"{repernet.url}/",
                f"{catalogue.url}/recherche", f"{catalogue.url}/recherche?q=electricite"):
        check(chrome, url, found)
    offers = [a.get_attribute("href") for a in chrome.find_elements(By.CSS_SELECTOR, "a[href*='/formations/']")]
    assert offers, "the published offer is found"
    check(chrome, offers[0], found)
    assert not found, report(found)


@pytest.mark.parametrize("name", ["repernet", "sam", "catalogue"])
def test_app_pages(app: Any, live_server: str, chrome: webdriver.Chrome, name: str, request: Any) -> None:
    rp: RP = request.getfixturevalue(name)
    grants = {"repernet": ["repernet:gestionnaire"], "sam": ["sam:redacteur", "sam:signataire"],
              "catalogue": ["catalogue:editeur"]}[name]
    person, org = member_of(app, grants)
    found: dict[str, list[str]] = {}
    check(chrome, rp.url + "/", found)
    log_in_as(chrome, live_server, person.email)
    paths = {"repernet": ["/", "/ma-structure", "/structures/nouvelle", f"/structures/{org.siret}/pieces"],
             "sam": ["/", "/consultations"],
             "catalogue": ["/", "/recherche", "/organismes", f"/organismes/{org.siret}",
                           f"/organismes/{org.siret}/formations"]}[name]
    for path in paths:
        check(chrome, rp.url + path, found)
    assert not found, report(found)


def test_the_apps_signed_in_edit_forms(app: Any, live_server: str, chrome: webdriver.Chrome, sam: RP, catalogue: RP,
                                       repernet: RP) -> None:
    """The edit forms behind a login: the Catalogue's formation, action and session forms (new and
    existing), REPERNET's record edit page, SAM's consultation form (new and existing)."""
    from tests.rp_helpers import new_browser, rp_login
    from tests.test_catalogue import full_offer
    from tests.test_repernet import local_record
    from tests.test_sam_helpers import buyer, create

    editor, org = member_of(app, ["catalogue:editeur"])
    editing = new_browser()
    rp_login(editing, catalogue, editor.email)
    offer_id, action = full_offer(editing, catalogue, org.siret, title="Formulaires accessibles (a11y)")
    sam_browser, _region, buyer_email = buyer(app, sam)
    consultation = create(sam_browser, sam)
    manager, record_org = member_of(app, ["repernet:gestionnaire", "repernet:lecteur"])
    local_record(repernet, record_org)
    found: dict[str, list[str]] = {}

    def check_form(url: str) -> None:
        check(chrome, url, found)
        assert chrome.current_url == url and chrome.find_elements(By.CSS_SELECTOR, "main form[method=post]"), url

    log_in_as(chrome, live_server, editor.email)
    offer = f"{catalogue.url}/offres/{offer_id}"
    check(chrome, offer, found)  # the offer's page: its sessions table, the actions column named
    for url in (f"{catalogue.url}/organismes/{org.siret}/formations/nouvelle", f"{offer}/formation",
                f"{offer}/actions/nouvelle", f"{offer}/actions/{action}",
                f"{offer}/actions/{action}/sessions/nouvelle"):
        check_form(url)
    chrome.get(offer)
    sessions = [a.get_attribute("href") for a in chrome.find_elements(By.CSS_SELECTOR, "a[href*='/sessions/']")
                if not a.get_attribute("href").endswith("/nouvelle")]
    assert sessions, "the offer's page links to its session"
    check_form(sessions[0])

    log_in_as(chrome, live_server, manager.email)
    check_form(f"{repernet.url}/structures/{record_org.siret}/modifier")

    log_in_as(chrome, live_server, buyer_email)
    for path in ("/consultations/nouvelle", f"/consultations/{consultation}/modifier"):
        check_form(sam.url + path)
    assert not found, report(found)
