# ruff: noqa: F811 - pytest fixtures imported from other test modules are parameters here
"""A consultation's journey in a real headless Chromium (issue 12): the buyer publishes a
consultation with a DCE; an organisme's user finds it by keyword, downloads the DCE and asks a
question; the buyer answers; the user sees the answer and has received the alert e-mail."""

from __future__ import annotations

import hashlib
import time
import uuid
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as seen
from selenium.webdriver.support.ui import Select

from tests.conftest import Mailbox, mail_text
from tests.rp_helpers import RP, member_of
from tests.test_browser import chrome, chromium, click, log_in, page_text, wait  # noqa: F401 - fixtures
from tests.test_sam_helpers import PDF, local, region, sam_site, soon  # noqa: F401 - the live-server fixture


def fill(driver: webdriver.Chrome, name: str, value: str) -> None:
    field = driver.find_element(By.NAME, name)
    field.clear()
    field.send_keys(value)


def set_value(driver: webdriver.Chrome, name: str, value: str) -> None:
    """Date-time pickers take their value as the browser stores it (typing is locale-dependent)."""
    driver.execute_script("arguments[0].value = arguments[1]", driver.find_element(By.NAME, name), value)


def test_publish_find_download_ask_answer(app: Any, live_server: str, sam_site: RP, chrome: webdriver.Chrome,
                                          mailbox: Mailbox, tmp_path: Path) -> None:
    word = uuid.uuid4().hex[:6]
    buyer, _ = member_of(app, ["sam:acheteur"], org=region(app))
    user, org = member_of(app, ["sam:redacteur"])
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    chrome.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})

    # The buyer creates the consultation, adds a lot and the DCE, and publishes it.
    chrome.get(f"{sam_site.url}/consultations/nouvelle")
    log_in(chrome, buyer.email)
    wait(chrome, seen.visibility_of_element_located((By.NAME, "reference")))
    fill(chrome, "reference", f"NAV-{word}")
    fill(chrome, "title", f"Électricité et énergies renouvelables {word}")
    fill(chrome, "device", "Programme régional de formation")
    fill(chrome, "description", "Parcours qualifiants.")
    set_value(chrome, "question_deadline", local(soon(10)))
    set_value(chrome, "response_deadline", local(soon(20)))
    click(chrome, "Enregistrer")
    wait(chrome, seen.text_to_be_present_in_element((By.TAG_NAME, "body"), "Le brouillon est enregistré"))
    chrome.find_element(By.XPATH, "//summary[normalize-space()='Ajouter un lot']").click()
    fill(chrome, "number", "1")
    fill(chrome, "title", "Installateur de panneaux photovoltaïques")
    Select(chrome.find_element(By.NAME, "unit")).select_by_value("HSTA")
    fill(chrome, "place", "Clermont-Ferrand")
    fill(chrome, "volume", "6000")
    click(chrome, "Ajouter le lot")
    wait(chrome, seen.text_to_be_present_in_element((By.TAG_NAME, "body"), "Le lot n° 1 est ajouté."))
    dce = tmp_path / "DCE électricité.pdf"
    dce.write_bytes(PDF)
    chrome.find_element(By.NAME, "file").send_keys(str(dce))
    click(chrome, "Déposer")
    wait(chrome, seen.text_to_be_present_in_element((By.TAG_NAME, "body"), "Le DCE (version 1) est déposé."))
    click(chrome, "Publier la consultation")
    wait(chrome, seen.text_to_be_present_in_element((By.TAG_NAME, "body"), "La consultation est publiée."))
    consultation_url = chrome.current_url.split("#")[0]

    # An organisme's user finds it by keyword, typed without accents and in the plural.
    chrome.execute_cdp_cmd("Network.clearBrowserCookies", {})
    chrome.get(f"{sam_site.url}/consultations")
    fill(chrome, "q", f"electricite renouvelable {word}")
    click(chrome, "Rechercher")
    chrome.find_element(By.PARTIAL_LINK_TEXT, f"Électricité et énergies renouvelables {word}").click()
    wait(chrome, seen.text_to_be_present_in_element((By.TAG_NAME, "h1"), "Électricité et énergies renouvelables"))
    assert "Installateur de panneaux photovoltaïques" in page_text(chrome)
    chrome.find_element(By.LINK_TEXT, "Connectez-vous").click()
    log_in(chrome, user.email)
    wait(chrome, seen.text_to_be_present_in_element((By.TAG_NAME, "body"), "votre téléchargement inscrit votre structure"))
    chrome.find_element(By.LINK_TEXT, "Télécharger le DCE").click()
    deadline = time.monotonic() + 10
    while not list(downloads.glob("*.pdf")) and time.monotonic() < deadline:
        time.sleep(0.1)
    downloaded = list(downloads.glob("*.pdf"))
    assert downloaded and hashlib.sha256(downloaded[0].read_bytes()).hexdigest() == hashlib.sha256(PDF).hexdigest()
    fill(chrome, "text", "Les sessions peuvent-elles commencer en septembre ?")
    click(chrome, "Envoyer la question")
    wait(chrome, seen.text_to_be_present_in_element((By.TAG_NAME, "body"), "Votre question est transmise"))

    # The buyer answers from the consultation's page.
    chrome.execute_cdp_cmd("Network.clearBrowserCookies", {})
    chrome.get(consultation_url)
    chrome.find_element(By.LINK_TEXT, "Se connecter").click()
    log_in(chrome, buyer.email)
    wait(chrome, seen.text_to_be_present_in_element((By.TAG_NAME, "body"), "Les sessions peuvent-elles commencer"))
    fill(chrome, "answer", "Oui, dès le 1er septembre.")
    click(chrome, "Publier la réponse")
    wait(chrome, seen.text_to_be_present_in_element((By.TAG_NAME, "body"), "La réponse est publiée"))

    # The user sees the answer on the page, and got the alert.
    chrome.execute_cdp_cmd("Network.clearBrowserCookies", {})
    chrome.get(consultation_url)
    chrome.find_element(By.LINK_TEXT, "Se connecter").click()
    log_in(chrome, user.email)
    wait(chrome, seen.text_to_be_present_in_element((By.TAG_NAME, "body"), "Oui, dès le 1er septembre."))
    assert org.name in page_text(chrome)  # the header: acting for their structure
    mail = mailbox.wait_for(user.email, "Réponse publiée")
    assert "Oui, dès le 1er septembre." in mail_text(mail) and consultation_url in mail_text(mail)
