# ruff: noqa: F811 - pytest fixtures imported from other test modules are parameters here
"""The Catalogue's moderation journey in a real headless Chromium (issue 14): an editor creates an
offer with two sessions, duplicates one and saves; the moderator returns it with a comment; the
editor fixes it and submits again; the moderator publishes; the public search finds it by a
keyword typed without accents."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as seen

from tests.rp_helpers import RP, make_structure, member_of
from tests.test_browser import chrome, chromium, click, log_in, page_text, wait  # noqa: F401 - fixtures
from tests.test_catalogue import cat  # noqa: F401 - the live-server fixture


def follow_link(driver: webdriver.Chrome, text: str) -> None:
    page = driver.find_element(By.TAG_NAME, "html")
    wait(driver, seen.element_to_be_clickable((By.PARTIAL_LINK_TEXT, text))).click()
    wait(driver, seen.staleness_of(page))


def fill(driver: webdriver.Chrome, **fields: str) -> None:
    for name, value in fields.items():
        element = driver.find_element(By.NAME, name)
        if element.get_attribute("type") == "date":
            # A date input types in the browser's locale: set the ISO value the form sends.
            driver.execute_script("arguments[0].value = arguments[1];", element, value)
        else:
            element.clear()
            element.send_keys(value)


def as_user(driver: webdriver.Chrome, url: str, email: str) -> None:
    """A fresh browser session (no cookies): the page asks the IdP, which shows its login form."""
    driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
    driver.get(url)
    log_in(driver, email)


def add_session(driver: webdriver.Chrome, start: date, end: date) -> None:
    follow_link(driver, "Créer une nouvelle session")
    fill(driver, start=start.isoformat(), end=end.isoformat(), new_contact_name="Lucie Martin",
         new_contact_phone="04 76 00 00 00")
    click(driver, "Enregistrer la session")


def test_editor_and_moderator_journey_to_the_public_search(app: Any, cat: RP, chrome: webdriver.Chrome) -> None:
    word = f"oenologie{uuid.uuid4().hex[:4]}"
    editor, org = member_of(app, ["catalogue:editeur"])
    moderator, _region = member_of(app, ["catalogue:moderateur"], org=make_structure(app, kind="region"))
    today = date.today()

    # The editor creates the offer: formation, one action, two sessions.
    as_user(chrome, f"{cat.url}/organismes/{org.siret}/formations/nouvelle", editor.email)
    fill(chrome, title=f"Œnologie et dégustation {word}", objectives="Reconnaître les cépages et les défauts des vins.",
         content="Analyse sensorielle, vinification, accords mets et vins.")
    click(chrome, "Enregistrer et transmettre au Carif-Oref")
    assert "transmise au Carif-Oref" in page_text(chrome)
    follow_link(chrome, "Ajouter une action")
    fill(chrome, address="2 place des Vins", postal_code="21200", city="Beaune")
    click(chrome, "Enregistrer l'action")
    add_session(chrome, today + timedelta(days=20), today + timedelta(days=50))
    add_session(chrome, today + timedelta(days=80), today + timedelta(days=110))
    # Duplicate the first one for a reconduction, with new dates.
    chrome.find_elements(By.XPATH, '//button[normalize-space()="Dupliquer"]')[0].click()
    wait(chrome, seen.text_to_be_present_in_element((By.TAG_NAME, "h1"), "Modifier la session"))
    later = today + timedelta(days=400)
    fill(chrome, start=later.isoformat(), end=(later + timedelta(days=30)).isoformat())
    click(chrome, "Enregistrer la session")
    assert later.strftime("%d/%m/%Y") in page_text(chrome)
    assert len(chrome.find_elements(By.XPATH, '//button[normalize-space()="Dupliquer"]')) == 3
    offer_url = chrome.current_url.split("#")[0]

    # The moderator returns it with a comment.
    as_user(chrome, f"{cat.url}/moderation", moderator.email)
    follow_link(chrome, f"Œnologie et dégustation {word}")
    fill(chrome, comment="Précisez les prérequis.")
    click(chrome, "Renvoyer pour correction")
    assert "renvoyée à l'organisme" in page_text(chrome)

    # The editor reads it, fixes the offer and submits it again.
    as_user(chrome, offer_url, editor.email)
    assert "Précisez les prérequis." in page_text(chrome)
    follow_link(chrome, "Modifier la formation")
    fill(chrome, prerequisites="Aucun prérequis : débutants bienvenus.")
    click(chrome, "Enregistrer et transmettre au Carif-Oref")
    assert "En attente de validation" in page_text(chrome)

    # The moderator publishes it.
    as_user(chrome, offer_url, moderator.email)
    click(chrome, "Valider et publier")
    assert "publiée" in page_text(chrome)

    # Anyone finds it, typing without accents.
    chrome.execute_cdp_cmd("Network.clearBrowserCookies", {})
    chrome.get(f"{cat.url}/recherche")
    fill(chrome, q=f"oenologie degustation {word}")
    click(chrome, "Rechercher")
    assert f"Œnologie et dégustation {word}" in page_text(chrome)
    assert "En cours ou à venir" in page_text(chrome)
