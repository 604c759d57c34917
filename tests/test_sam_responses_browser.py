# ruff: noqa: F811 - pytest fixtures imported from other test modules are parameters here
"""A response's journey in a real headless Chromium (issue 13): an organisme's rédacteur fills
the candidature and one offer; the signataire validates, signs and submits, and receives the
receipt by e-mail; after the deadline the buyer opens the responses and awards the lot; the
action appears in the Catalogue's moderation queue."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as seen
from selenium.webdriver.support.ui import Select

from tests.conftest import Mailbox, mail_text
from tests.rp_helpers import RP, catalogue, member_of, repernet  # noqa: F401 - fixtures
from tests.test_browser import chrome, chromium, click, log_in, page_text, wait  # noqa: F401 - fixtures
from tests.test_sam_helpers import PDF, time_passes
from tests.test_sam_response_helpers import consultation, sam_rp  # noqa: F401 - the live-server fixture

BODY = (By.TAG_NAME, "body")


def fill(driver: webdriver.Chrome, name: str, value: str, scope: str = "") -> None:
    field = driver.find_element(By.CSS_SELECTOR, f'{scope} [name="{name}"]'.strip())
    field.clear()
    field.send_keys(value)


def set_value(driver: webdriver.Chrome, name: str, value: str) -> None:
    """Date pickers take their value as the browser stores it (typing is locale-dependent)."""
    driver.execute_script("arguments[0].value = arguments[1]", driver.find_element(By.NAME, name), value)


def shows(driver: webdriver.Chrome, text: str) -> None:
    wait(driver, seen.text_to_be_present_in_element(BODY, text))


def as_person(driver: webdriver.Chrome, url: str, email: str) -> None:
    """Open `url` as `email` (a fresh session: the IdP's login form)."""
    driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
    driver.get(url)
    log_in(driver, email)


def upload(driver: webdriver.Chrome, form: str, kind: str, path: Path, button: str) -> None:
    Select(driver.find_element(By.CSS_SELECTOR, f'form[action$="{form}"] select[name="kind"]')).select_by_value(kind)
    driver.find_element(By.CSS_SELECTOR, f'form[action$="{form}"] input[name="file"]').send_keys(str(path))
    click(driver, button)
    shows(driver, "La pièce est déposée")


def test_respond_sign_submit_open_award_to_the_catalogue(app: Any, sam_rp: RP, catalogue: RP,
                                                         chrome: webdriver.Chrome, mailbox: Mailbox,
                                                         tmp_path: Path) -> None:
    lot_title = f"Assistant de vie aux familles {uuid.uuid4().hex[:6]}"
    _, region, cid = consultation(app, sam_rp, lots=(lot_title,))
    buyer, _ = member_of(app, ["sam:acheteur"], org=region)
    writer, org = member_of(app, ["sam:redacteur"])
    signer, _ = member_of(app, ["sam:redacteur", "sam:signataire"], org=org)
    moderator, _ = member_of(app, ["catalogue:moderateur", "catalogue:lecteur"], org=region)
    piece = tmp_path / "piece.pdf"
    piece.write_bytes(PDF)

    # The rédacteur starts the response and fills the candidature.
    as_person(chrome, f"{sam_rp.url}/consultations/{cid}/reponse", writer.email)
    click(chrome, "Commencer la réponse")
    shows(chrome, "Votre réponse est créée")
    response_url = chrome.current_url.split("#")[0]
    rid = int(re.search(r"/reponses/(\d+)", response_url).group(1))  # type: ignore[union-attr]
    chrome.find_element(By.LINK_TEXT, "Modifier la candidature").click()
    for name, value in (("legal_name", "Formation Plus"), ("address", "12 rue de la République"),
                        ("postal_code", "69002"), ("city", "Lyon"), ("representative", "Marie Durand"),
                        ("representative_title", "Présidente"), ("signatory", "Paul Martin"),
                        ("signatory_title", "Directeur"), ("email", signer.email), ("phone", "04 78 00 00 00"),
                        ("sites-0-name", "Centre de Lyon"), ("sites-0-address", "3 quai Perrache"),
                        ("sites-0-postal_code", "69002"), ("sites-0-city", "Lyon")):
        fill(chrome, name, value)
    click(chrome, "Enregistrer la candidature")
    shows(chrome, "La candidature est enregistrée")
    upload(chrome, f"/reponses/{rid}/pieces", "pouvoir", piece, "Déposer la pièce")
    upload(chrome, f"/reponses/{rid}/pieces", "qualiopi", piece, "Déposer la pièce")
    assert "Valider la candidature" not in page_text(chrome)  # the rédacteur prepares, the signataire validates

    # The signataire validates the candidature.
    as_person(chrome, response_url, signer.email)
    click(chrome, "Valider la candidature")
    shows(chrome, "La candidature est validée")

    # The rédacteur creates and fills the offer.
    as_person(chrome, response_url, writer.email)
    click(chrome, "Créer une offre")
    shows(chrome, "complétez-la")
    offer_url = chrome.current_url
    oid = int(re.search(r"/offres/(\d+)", offer_url).group(1))  # type: ignore[union-attr]
    for name, value in (("formacode", "44028"), ("objectives", "Accompagner les personnes à domicile."),
                        ("content", "Module 1 : aide aux repas. Module 2 : hygiène."), ("hours", "350"),
                        ("headcount", "14"), ("unit_price", "11.20"),
                        ("accessibility", "Locaux accessibles en fauteuil."), ("sessions-0-site", "1"),
                        ("contact_name", "Paul Martin"), ("contact_phone", "04 78 00 00 01")):
        fill(chrome, name, value)
    set_value(chrome, "sessions-0-start", "2027-02-01")
    set_value(chrome, "sessions-0-end", "2027-07-09")
    click(chrome, "Enregistrer l'offre")
    shows(chrome, "est enregistrée (brouillon)")
    upload(chrome, f"/offres/{oid}/pieces", "annexe", piece, "Déposer la pièce de l'offre")

    # The signataire validates the offer, signs the acte d'engagement and submits.
    as_person(chrome, response_url, signer.email)
    click(chrome, "Valider l'offre")
    shows(chrome, "son acte d'engagement est généré")
    click(chrome, "Signer l'acte d'engagement")
    shows(chrome, "est signé électroniquement (PAdES)")
    chrome.find_element(By.LINK_TEXT, "Vérifier la signature").click()
    shows(chrome, "Signature valide.")
    chrome.get(response_url)
    click(chrome, "Déposer la réponse")
    shows(chrome, "Votre réponse est déposée")
    digest = chrome.find_element(By.ID, "receipt-digest").text
    mail = mailbox.wait_for(signer.email, "Accusé de réception")
    assert digest in mail_text(mail)

    # After the deadline, the buyer opens the responses and awards the lot.
    time_passes(sam_rp, cid, responses=True)
    as_person(chrome, f"{sam_rp.url}/consultations/{cid}/plis", buyer.email)
    shows(chrome, "1 réponse déposée")
    click(chrome, "Ouvrir les plis")
    shows(chrome, "Les plis sont ouverts")
    assert "Conforme à l'accusé" in page_text(chrome)
    chrome.find_element(By.LINK_TEXT, "Formation Plus").click()
    shows(chrome, digest)
    chrome.find_element(By.CSS_SELECTOR, 'input[name="admissible"][value="1"]').click()
    fill(chrome, "reason", "Offre complète, prix cohérent.")
    click(chrome, "Enregistrer l'analyse")
    shows(chrome, "L'analyse de l'offre est enregistrée")
    chrome.get(f"{sam_rp.url}/consultations/{cid}/plis")
    click(chrome, "Attribuer le lot à cette offre")
    shows(chrome, "Transmise au Catalogue (en modération)")
    won = mailbox.wait_for(signer.email, "Votre offre est retenue")
    assert lot_title in mail_text(won)

    # The action waits in the Catalogue's moderation queue.
    as_person(chrome, f"{catalogue.url}/moderation", moderator.email)
    shows(chrome, lot_title)
