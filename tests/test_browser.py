# ruff: noqa: F811 - pytest fixtures imported from tests/rp_helpers.py are parameters here
"""The journeys a person clicks through, in a real headless Chromium (SPEC §11): single sign-on
into REPERNET through the IdP's login form and structure chooser, switching structure from the
app's header, logging out from the app and from the IdP (back-channel), and joining a structure
with the instant search (the typeahead's JavaScript) until its admin accepts.

Chromium and its driver are Debian packages the Makefile installs; without them these tests fail,
they are never skipped."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as seen
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.conftest import PASSWORD, mail_text
from tests.rp_helpers import (
    RP,
    add_member,
    catalogue,  # noqa: F401 - the live-server fixture
    make_person,
    make_structure,
    member_of,
    repernet,  # noqa: F401 - the live-server fixture
    sam,  # noqa: F401 - the live-server fixture
)

# Where the Makefile installs them (it passes its CHROMIUM / CHROMEDRIVER settings on).
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")


@pytest.fixture(scope="session")
def chromium() -> Iterator[webdriver.Chrome]:
    """One headless Chromium for the session; each test starts with no cookies."""
    for path in (CHROMIUM, CHROMEDRIVER):
        assert shutil.which(path), f"{path} is missing: `make test` installs Debian's chromium and chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--lang=fr-FR", "--window-size=1280,1024"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"intl.accept_languages": "fr-FR,fr"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def chrome(chromium: webdriver.Chrome) -> webdriver.Chrome:
    chromium.execute_cdp_cmd("Network.clearBrowserCookies", {})
    return chromium


def wait(driver: webdriver.Chrome, condition: Any, seconds: float = 10) -> Any:
    # A page being replaced can answer with a node that no longer belongs to the document: ask again.
    return WebDriverWait(driver, seconds, ignored_exceptions=(StaleElementReferenceException,
                                                              WebDriverException)).until(condition)


def click(driver: webdriver.Chrome, text: str) -> None:
    """Click the button a person would, by its label (headers also hold links with the same words),
    and wait until the page it submits has replaced this one."""
    page = driver.find_element(By.TAG_NAME, "html")
    wait(driver, seen.element_to_be_clickable((By.XPATH, f'//button[normalize-space()="{text}"]'))).click()
    wait(driver, seen.staleness_of(page))


def page_text(driver: webdriver.Chrome) -> str:
    return driver.find_element(By.TAG_NAME, "body").text


def log_in(driver: webdriver.Chrome, email: str) -> None:
    """Fill in the IdP's login form, on screen, and submit it."""
    wait(driver, seen.visibility_of_element_located((By.NAME, "email"))).send_keys(email)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    click(driver, "Se connecter")


def header(driver: webdriver.Chrome) -> WebElement:
    return wait(driver, seen.visibility_of_element_located((By.CSS_SELECTOR, "header.sso")))


def test_single_sign_on_switch_and_logout_from_the_app(app: Any, live_server: str, repernet: RP,
                                                       chrome: webdriver.Chrome) -> None:
    person, first = member_of(app, ["repernet:lecteur"])
    second = make_structure(app)
    add_member(app, second, person, ["repernet:gestionnaire"])

    # A protected page of the app sends the browser to the IdP's login form.
    chrome.get(f"{repernet.url}/ma-structure")
    assert chrome.current_url.startswith(f"{live_server}/login")
    log_in(chrome, person.email)
    # Two structures: the IdP asks which one, then the app opens on the page asked for.
    wait(chrome, seen.text_to_be_present_in_element((By.TAG_NAME, "h1"), "Pour quelle structure agissez-vous ?"))
    chrome.find_element(By.XPATH, f"//label[contains(., '{first.siret}')]//input[@type='radio']").click()
    click(chrome, "Continuer")
    assert f"{first.name} · SIRET {first.siret}" in header(chrome).text
    assert chrome.current_url.startswith(repernet.url)

    # The header's switcher: choose the other structure, the app comes back with its claims.
    Select(chrome.find_element(By.ID, "sso-siret")).select_by_value(second.siret)
    click(chrome, "Changer")
    wait(chrome, seen.text_to_be_present_in_element((By.CSS_SELECTOR, "header.sso .structure"), second.name))
    assert chrome.current_url.startswith(f"{repernet.url}/")

    # Logging out from the app ends the IdP session too: the next visit shows the login form.
    click(chrome, "Se déconnecter")
    wait(chrome, seen.url_to_be(f"{repernet.url}/"))
    assert "Se connecter" in header(chrome).text
    chrome.get(f"{repernet.url}/ma-structure")
    wait(chrome, seen.visibility_of_element_located((By.NAME, "password")))
    assert chrome.current_url.startswith(f"{live_server}/login")


def test_logout_at_the_idp_ends_the_app_session(app: Any, live_server: str, repernet: RP,
                                                chrome: webdriver.Chrome) -> None:
    person, org = member_of(app, ["repernet:lecteur"])
    chrome.get(f"{repernet.url}/ma-structure")
    log_in(chrome, person.email)
    assert org.name in header(chrome).text

    # The IdP's own "Se déconnecter" (confirmation page); the back-channel call to the app leaves
    # from a worker thread, so the app's session ends within moments, not necessarily at once.
    chrome.get(f"{live_server}/logout")
    click(chrome, "Se déconnecter")
    wait(chrome, seen.text_to_be_present_in_element((By.TAG_NAME, "body"), "déconnecté"))
    deadline = time.monotonic() + 10
    while True:
        chrome.get(f"{repernet.url}/ma-structure")
        if chrome.current_url.startswith(f"{live_server}/login") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    wait(chrome, seen.visibility_of_element_located((By.NAME, "password")))
    assert chrome.current_url.startswith(f"{live_server}/login")


def test_join_with_the_instant_search_then_the_admin_accepts(app: Any, live_server: str, mailbox: Any,
                                                            chrome: webdriver.Chrome) -> None:
    word = uuid.uuid4().hex[:8]
    org = make_structure(app, name=f"Atelier Typeahead {word}")
    admin = make_person(app, given_name="Agathe", family_name="Admin")
    add_member(app, org, admin, ["sam:redacteur", "sam:signataire"], admin=True)
    requester = make_person(app, given_name="Jules", family_name="Demandeur")

    chrome.get(f"{live_server}/login?next=/structures/rattacher")
    log_in(chrome, requester.email)
    search = wait(chrome, seen.visibility_of_element_located((By.ID, "q")))
    search.send_keys(f"typeahead {word[:6]}")
    # The suggestions come from the JSON search as the person types; arrow down and Enter opens one
    # (once the whole word has been searched: a slower half-typed answer would come first).
    wait(chrome, seen.text_to_be_present_in_element((By.ID, "search-status"), "1 structure trouvée."))
    option = wait(chrome, seen.visibility_of_element_located((By.CSS_SELECTOR, "#search-results [role=option]")))
    assert org.name in option.text and org.siret in option.text
    search.send_keys(Keys.ARROW_DOWN, Keys.ENTER)
    wait(chrome, seen.url_contains(f"/structures/rattacher/{org.siret}"))
    chrome.find_element(By.NAME, "message").send_keys("Bonjour, je rejoins l'équipe.")
    # Without a profile: a French message, and the message typed is still there.
    click(chrome, "Demander l'accès")
    wait(chrome, seen.text_to_be_present_in_element((By.TAG_NAME, "body"), "Choisissez un profil."))
    assert chrome.find_element(By.NAME, "message").get_attribute("value") == "Bonjour, je rejoins l'équipe."
    chrome.find_element(By.XPATH, "//label[contains(., \"Répondre aux appels d'offres\")]/input").click()
    click(chrome, "Demander l'accès")
    wait(chrome, seen.text_to_be_present_in_element((By.ID, "confirmation"), "Votre demande a bien été envoyée."))

    # The admin, in the same browser after a fresh start, accepts it from "Gérer ma structure".
    chrome.execute_cdp_cmd("Network.clearBrowserCookies", {})
    chrome.get(f"{live_server}/login?next=/gestion/{org.id}/")
    log_in(chrome, admin.email)
    wait(chrome, seen.text_to_be_present_in_element((By.TAG_NAME, "body"), "Jules Demandeur"))
    chrome.find_element(By.PARTIAL_LINK_TEXT, "Jules Demandeur").click()
    wait(chrome, seen.text_to_be_present_in_element((By.TAG_NAME, "body"), "Bonjour, je rejoins l'équipe."))
    # The grants come ticked from the profile asked for; the admin leaves out the signature.
    signataire = chrome.find_element(By.XPATH, "//label[span[@title='sam:signataire']]/input")
    assert signataire.is_selected()
    signataire.click()
    click(chrome, "Accepter la demande")
    wait(chrome, seen.text_to_be_present_in_element((By.TAG_NAME, "body"), "La demande de Jules Demandeur a été acceptée"))
    mail = mailbox.wait_for(requester.email)
    assert org.name in mail_text(mail)
    assert grants_of(app, org, requester) == {"sam:redacteur"}


def grants_of(app: Any, org: Any, person: Any) -> set[str]:
    from idp.core import memberships
    from idp.extensions import db

    with app.app_context():
        membership = memberships.membership_of(db.session, person.user_id, org.id)
        return {grant.role.key for grant in membership.grants}


def test_single_sign_on_from_sam_to_the_catalogue(app: Any, live_server: str, sam: RP, catalogue: RP,
                                                  chrome: webdriver.Chrome) -> None:
    person, org = member_of(app, ["sam:redacteur", "catalogue:editeur"])
    # SAM sends the browser to the IdP's login form; after it, SAM's home shows the roles in words.
    chrome.get(f"{sam.url}/auth/login?next=/")
    assert chrome.current_url.startswith(f"{live_server}/login")
    log_in(chrome, person.email)
    wait(chrome, seen.text_to_be_present_in_element((By.TAG_NAME, "main"), "SAM — Rédacteur"))
    assert org.name in header(chrome).text
    # The Catalogue: the IdP knows this browser, so no second password, straight to the app.
    chrome.get(f"{catalogue.url}/auth/login?next=/")
    wait(chrome, seen.text_to_be_present_in_element((By.TAG_NAME, "main"), "Catalogue — Éditeur"))
    assert chrome.current_url == f"{catalogue.url}/"
    assert org.name in header(chrome).text and not chrome.find_elements(By.NAME, "password")


@pytest.fixture
def other_site() -> Iterator[tuple[str, dict[str, str]]]:
    """A page on another site (http://localhost:<port>, not 127.0.0.1): `pages[path]` is served as HTML."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    pages: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = pages.get(self.path, "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{server.server_port}", pages
    server.shutdown()
    server.server_close()


def test_an_authorization_request_posted_from_another_site_finds_the_session(
        app: Any, live_server: str, chrome: webdriver.Chrome, other_site: tuple[str, dict[str, str]]) -> None:
    """OIDC Core §3.1.2.1 by POST, in a real browser: a relying party's page on another site posts the
    request with prompt=none. The IdP's SameSite=Lax cookie does not come with a cross-site POST; the
    303 to the same request as a GET brings it, and the signed-in user gets a code, not login_required."""
    import html as html_lib
    from urllib.parse import parse_qs, urlsplit

    from idp.core.security import SYSTEM
    from idp.extensions import db
    from idp.oidc.clients import ClientSpec, create_client
    from tests.oidc_helpers import CALLBACK, authorize_url

    person = make_person(app)
    client_id = f"post-{uuid.uuid4().hex[:8]}"
    with app.app_context():
        create_client(db.session, ClientSpec(name="RP par POST", client_id=client_id, client_secret="s" * 32,
                                             redirect_uris=[CALLBACK], trusted=True,
                                             grant_types=["authorization_code"], scope="openid profile email"), SYSTEM)
        db.session.commit()
    chrome.get(f"{live_server}/login")
    log_in(chrome, person.email)
    params = parse_qs(urlsplit(authorize_url(live_server, client_id, prompt="none")).query)
    fields = "".join(f'<input type="hidden" name="{html_lib.escape(k)}" value="{html_lib.escape(v[0])}">'
                     for k, v in params.items())
    site, pages = other_site
    pages["/rp"] = (f'<!doctype html><title>RP</title><form method="post" action="{live_server}/oauth/authorize">'
                    f'{fields}<button type="submit">Continuer</button></form>')
    chrome.get(f"{site}/rp")
    chrome.find_element(By.XPATH, '//button[normalize-space()="Continuer"]').click()
    wait(chrome, lambda driver: driver.current_url.startswith(CALLBACK))
    answer = parse_qs(urlsplit(chrome.current_url).query)
    assert "code" in answer and "error" not in answer, answer
    assert answer["state"] == params["state"]
