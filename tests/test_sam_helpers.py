# ruff: noqa: F811 - pytest fixtures imported from tests/rp_helpers.py are parameters here
"""Fixtures and helpers for SAM's tests (no tests here): SAM served beside the live IdP on the
suite's database kind (its own PostgreSQL database in the PostgreSQL variant, so the French
full-text search is tested there too) and with the test SMTP server; buyers and organismes made at
the IdP; a buyer's browser that creates, fills and publishes consultations through SAM's forms."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from tests.conftest import Mailbox, forms
from tests.rp_helpers import (
    RP,
    Org,
    app_database,
    make_structure,
    member_of,
    new_browser,
    page_form,
    rp_get,
    rp_login,
    serve_rp,
)

PARIS = ZoneInfo("Europe/Paris")
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
MAX_DCE_BYTES = 64 * 1024


@pytest.fixture(scope="session")
def sam_site(app: Any, live_server: str, tmp_path_factory: pytest.TempPathFactory,
             smtp_server: tuple[str, Mailbox]) -> Iterator[RP]:
    """SAM beside the live IdP, on the suite's kind of database, mailing through the test SMTP server."""
    folder = tmp_path_factory.mktemp("sam-site")
    databases = app_database(folder, "sam")
    url = next(databases)
    yield from serve_rp(app, live_server, folder, "sam", DATABASE_URL=url, FILES_DIR=str(folder / "files"),
                        SMTP_URL=smtp_server[0], DEV_INBOX=False, MAX_DCE_BYTES=MAX_DCE_BYTES,
                        MAX_CONTENT_LENGTH=4 * MAX_DCE_BYTES, CONSULTATIONS_PER_PAGE=3)
    next(databases, None)


# ---------------------------------------------------------------- people

def region(app: Any) -> Org:
    return make_structure(app, name=f"Région test {uuid.uuid4().hex[:6]}", kind="region")


def buyer(app: Any, rp: RP, org: Org | None = None) -> tuple[requests.Session, Org, str]:
    """A logged-in buyer (`sam:acheteur` in a Région structure): browser, structure, e-mail."""
    person, org = member_of(app, ["sam:acheteur"], org=org or region(app))
    browser = new_browser()
    rp_login(browser, rp, person.email)
    return browser, org, person.email


def organisme_user(app: Any, rp: RP, grants: list[str] | None = None,
                   org: Org | None = None) -> tuple[requests.Session, Org, str]:
    """A logged-in person of an organisme (rédacteur by default)."""
    person, org = member_of(app, grants or ["sam:redacteur"], org=org)
    browser = new_browser()
    rp_login(browser, rp, person.email)
    return browser, org, person.email


# ---------------------------------------------------------------- pages and forms

def page_text(response: requests.Response) -> str:
    return html.unescape(response.text)


def local(value: datetime) -> str:
    """A time as a datetime-local input holds it, in Paris time."""
    return value.astimezone(PARIS).strftime("%Y-%m-%dT%H:%M")


def soon(days: float) -> datetime:
    return (datetime.now(UTC) + timedelta(days=days)).replace(second=0, microsecond=0)


def unique_reference() -> str:
    return f"T-{uuid.uuid4().hex[:10].upper()}"


def consultation_fields(**overrides: Any) -> dict[str, str]:
    fields = {"reference": unique_reference(), "title": "Formations aux métiers de l'électricité",
              "device": "Programme régional de formation", "description": "Actions qualifiantes.",
              "question_deadline": local(soon(10)), "response_deadline": local(soon(20))}
    fields.update(overrides)
    return fields


def post_form(browser: requests.Session, rp: RP, page_path: str, action: str, values: dict[str, Any],
              files: dict[str, Any] | None = None) -> requests.Response:
    """Submit the form of `page_path` whose action contains `action`, with `values` over its fields."""
    page = rp_get(browser, rp, page_path)
    assert page.status_code == 200, (page.status_code, page_path)
    exact = [f for f in forms(page.text) if f["action"] == action and f["method"] == "post"]
    form = exact[0] if exact else page_form(page.text, action)
    return browser.post(f"{rp.url}{form['action']}", data={**form["fields"], **values}, files=files,
                        allow_redirects=False)


def create(browser: requests.Session, rp: RP, **overrides: Any) -> int:
    """Create a draft through the form; its id."""
    response = post_form(browser, rp, "/consultations/nouvelle", "/consultations/nouvelle",
                         consultation_fields(**overrides))
    assert response.status_code == 303, (response.status_code, page_text(response)[:3000])
    return int(re.search(r"/consultations/(\d+)", response.headers["Location"]).group(1))  # type: ignore[union-attr]


def add_lot(browser: requests.Session, rp: RP, cid: int, number: int, title: str, unit: str = "HSTA",
            place: str = "Lyon", volume: int = 1200) -> requests.Response:
    return post_form(browser, rp, f"/consultations/{cid}", f"/consultations/{cid}/lots",
                     {"number": str(number), "title": title, "unit": unit, "place": place, "volume": str(volume)})


def upload(browser: requests.Session, rp: RP, cid: int, name: str, content: bytes,
           mimetype: str = "application/pdf") -> requests.Response:
    return post_form(browser, rp, f"/consultations/{cid}", f"/consultations/{cid}/dce", {},
                     files={"file": (name, content, mimetype)})


def publish(browser: requests.Session, rp: RP, cid: int) -> requests.Response:
    return post_form(browser, rp, f"/consultations/{cid}", f"/consultations/{cid}/publier", {})


def published(browser: requests.Session, rp: RP, lots: tuple[str, ...] = ("Électricien du bâtiment",),
              dce: bytes | None = PDF, **overrides: Any) -> int:
    """A published consultation (with its lots and a DCE) made through the buyer's forms."""
    cid = create(browser, rp, **overrides)
    for number, title in enumerate(lots, start=1):
        assert add_lot(browser, rp, cid, number, title).status_code == 303
    if dce is not None:
        assert upload(browser, rp, cid, "dce.pdf", dce).status_code == 303
    response = publish(browser, rp, cid)
    assert response.status_code == 303
    assert "La consultation est publiée." in page_text(browser.get(f"{rp.url}/consultations/{cid}"))
    return cid


def time_passes(rp: RP, cid: int, *, questions: bool = True, responses: bool = False) -> None:
    """Move a consultation's deadlines into the past, as the clock would (closing needs no scheduler)."""
    from apps.sam import db
    from apps.sam.models import Consultation

    past = datetime.now(UTC) - timedelta(minutes=1)
    with rp.app.app_context():
        consultation = db.session.get(Consultation, cid)
        if questions or responses:
            consultation.question_deadline = past - timedelta(minutes=1)
        if responses:
            consultation.response_deadline = past
        db.session.commit()


def listed(browser: requests.Session, rp: RP, query: str = "", **params: str) -> str:
    response = browser.get(f"{rp.url}/consultations", params={"q": query, **params}, allow_redirects=False)
    assert response.status_code == 200, response.status_code
    return page_text(response)
