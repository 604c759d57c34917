# ruff: noqa: F811 - pytest fixtures imported from other test modules are parameters here
"""What is visual in issue 16, measured in headless Chromium: a button readable against what is
behind it, choices one per line, tables within their card, no page stretched by a long name."""

from __future__ import annotations

import uuid
from typing import Any

from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.rp_helpers import add_member, make_person, make_structure, member_of
from tests.test_accessibility import log_in_as
from tests.test_browser import chrome, chromium, wait  # noqa: F401 - fixtures

# The colour behind an element: its own background if painted, else its nearest painted ancestor's.
BACKDROP = """
const rgba = c => (c.match(/[\\d.]+/g) || []).map(Number);
let node = arguments[0];
const color = getComputedStyle(node).color;
while (node) {
  const bg = rgba(getComputedStyle(node).backgroundColor);
  if (bg.length === 3 || (bg.length === 4 && bg[3] > 0)) return [color, getComputedStyle(node).backgroundColor];
  node = node.parentElement;
}
return [color, 'rgb(255, 255, 255)'];
"""


def _luminance(css: str) -> float:
    parts = [float(x) for x in css[css.index("(") + 1:css.index(")")].split(",")[:3]]
    channels = [c / 255 for c in parts]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(driver: webdriver.Chrome, element: Any) -> float:
    color, backdrop = driver.execute_script(BACKDROP, element)
    light, dark = sorted((_luminance(color), _luminance(backdrop)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_the_close_session_button_is_readable(app: Any, live_server: str, chrome: webdriver.Chrome) -> None:
    person, _org = member_of(app, ["repernet:lecteur"])
    log_in_as(chrome, live_server, person.email)
    chrome.get(f"{live_server}/account/sessions")
    button = wait(chrome, lambda d: d.find_element(By.CSS_SELECTOR, "form.revoke button"))
    assert button.text == "Fermer"
    assert contrast(chrome, button) >= 4.5  # WCAG AA for normal text; it was white on white (1:1)


def test_structure_choices_are_one_per_line(app: Any, live_server: str, chrome: webdriver.Chrome) -> None:
    person, first = member_of(app, ["repernet:lecteur"])
    add_member(app, make_structure(app), person, ["repernet:lecteur"])
    add_member(app, make_structure(app), person, ["repernet:lecteur"])
    log_in_as(chrome, live_server, person.email)
    chrome.get(f"{live_server}/account/structure")
    labels = wait(chrome, lambda d: d.find_elements(By.CSS_SELECTOR, "label.choice"))
    tops = [label.rect["y"] for label in labels]
    assert len(labels) == 3 and len(set(tops)) == 3, tops
    lefts = {round(label.rect["x"]) for label in labels}
    assert len(lefts) == 1  # one column


def test_tables_stay_within_their_card_and_long_names_do_not_stretch_the_page(
        app: Any, live_server: str, chrome: webdriver.Chrome) -> None:
    long_name = "Atelier" + "X" * 400  # one unbroken word, as pasted by someone
    org = make_structure(app, name=long_name[:200])
    admin = make_person(app, given_name="Agathe", family_name="A" * 100)  # the column's limit
    add_member(app, org, admin, ["sam:redacteur", "sam:signataire", "repernet:gestionnaire", "repernet:lecteur"],
               admin=True)
    for _ in range(3):
        # a long address (64 characters before the @, SMTP's limit) in an unbroken run
        add_member(app, org, make_person(app, email=f"{'x' * 32}{uuid.uuid4().hex}@{'sous-domaine' * 8}.example.test"),
                   ["sam:redacteur", "repernet:lecteur"])
    log_in_as(chrome, live_server, admin.email)
    for path in (f"/gestion/{org.id}/membres", f"/gestion/{org.id}/journal", "/structures/", "/"):
        chrome.get(live_server + path)
        wait(chrome, lambda d: d.execute_script("return document.readyState") == "complete")
        width = chrome.execute_script("return document.documentElement.scrollWidth")
        viewport = chrome.execute_script("return window.innerWidth")
        assert width <= viewport, (path, width, viewport)
        main = chrome.find_element(By.TAG_NAME, "main").rect
        for table in chrome.find_elements(By.TAG_NAME, "table"):
            box = table.rect
            assert box["x"] >= main["x"] - 1 and box["x"] + box["width"] <= main["x"] + main["width"] + 1, (path, box, main)
