# ruff: noqa: F811 - pytest fixtures imported from other test modules are parameters here
"""Fixtures and helpers for SAM's response tests (issue 13; no tests here): SAM beside the live IdP,
REPERNET and the Catalogue, on the suite's kind of database, mailing through the test SMTP server;
an organisme's people who fill a response through SAM's forms; SAM's clock moved by the tests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pytest
import requests

from tests.conftest import Mailbox
from tests.rp_helpers import RP, Org, app_database, catalogue, repernet, serve_rp  # noqa: F401 - fixtures
from tests.test_sam_helpers import (
    PDF,
    buyer,
    organisme_user,
    page_text,
    post_form,
    published,
)

MAX_ATTACHMENT_BYTES = 64 * 1024


@pytest.fixture(scope="session")
def sam_rp(app: Any, live_server: str, tmp_path_factory: pytest.TempPathFactory, smtp_server: tuple[str, Mailbox],
           repernet: RP, catalogue: RP) -> Iterator[RP]:
    """SAM calling REPERNET's and the Catalogue's APIs, on the suite's kind of database, with SMTP."""
    folder = tmp_path_factory.mktemp("sam-responses")
    databases = app_database(folder, "sam")
    url = next(databases)
    yield from serve_rp(app, live_server, folder, "sam", DATABASE_URL=url, FILES_DIR=str(folder / "files"),
                        SMTP_URL=smtp_server[0], DEV_INBOX=False, MAX_ATTACHMENT_BYTES=MAX_ATTACHMENT_BYTES,
                        CATALOGUE_API_URL=f"{catalogue.url}/api/v1", REPERNET_API_URL=f"{repernet.url}/api/v1")
    next(databases, None)


@contextmanager
def clock(rp: RP, moment: datetime) -> Iterator[None]:
    """SAM's clock set to `moment` (deadlines are judged by it): the tests move time, never sleep."""
    from shared import utcnow

    rp.app.extensions["sam.clock"] = lambda: moment
    try:
        yield
    finally:
        rp.app.extensions["sam.clock"] = utcnow


def deadline_of(rp: RP, cid: int) -> datetime:
    from apps.sam import db
    from apps.sam.models import Consultation

    with rp.app.app_context():
        consultation = db.session.get(Consultation, cid)
        return consultation.response_deadline  # type: ignore[no-any-return]


def lot_ids(rp: RP, cid: int) -> list[int]:
    from apps.sam import db
    from apps.sam.models import Consultation

    with rp.app.app_context():
        return [lot.id for lot in db.session.get(Consultation, cid).lots]


def consultation(app: Any, rp: RP, lots: tuple[str, ...] = ("Électricien du bâtiment",),
                 **overrides: Any) -> tuple[requests.Session, Org, int]:
    """A buyer and their published consultation."""
    browser, org, _ = buyer(app, rp)
    return browser, org, published(browser, rp, lots=lots, **overrides)


def signataire(app: Any, rp: RP, org: Org | None = None) -> tuple[requests.Session, Org, str]:
    return organisme_user(app, rp, ["sam:redacteur", "sam:signataire"], org=org)


def redacteur(app: Any, rp: RP, org: Org | None = None) -> tuple[requests.Session, Org, str]:
    return organisme_user(app, rp, ["sam:redacteur"], org=org)


def ok(response: requests.Response) -> requests.Response:
    errors = re.findall(r'role="alert">([^<]+)<', page_text(response))
    assert response.status_code == 303, (response.status_code, errors or page_text(response)[:3000])
    return response


def start(browser: requests.Session, rp: RP, cid: int) -> int:
    """Start the structure's response; its id."""
    response = ok(post_form(browser, rp, f"/consultations/{cid}/reponse", f"/consultations/{cid}/reponse", {}))
    return int(re.search(r"/reponses/(\d+)", response.headers["Location"]).group(1))  # type: ignore[union-attr]


CANDIDATURE = {
    "legal_name": "Formation Plus", "legal_category": "Association", "ape_code": "8559A",
    "address": "12 rue de la République", "postal_code": "69002", "city": "Lyon",
    "representative": "Marie Durand", "representative_title": "Présidente",
    "signatory": "Paul Martin", "signatory_title": "Directeur", "email": "contact@formation-plus.test",
    "phone": "04 78 00 00 00", "group_kind": "seul",
    "sites-0-name": "Centre de Lyon", "sites-0-address": "3 quai Perrache", "sites-0-postal_code": "69002",
    "sites-0-city": "Lyon",
}


def save_candidature(browser: requests.Session, rp: RP, rid: int, **values: str) -> requests.Response:
    path = f"/reponses/{rid}/candidature"
    return post_form(browser, rp, path, path, {**CANDIDATURE, **values})


def attach(browser: requests.Session, rp: RP, rid: int, kind: str, content: bytes = PDF, name: str = "piece.pdf",
           offer: int | None = None) -> requests.Response:
    action = f"/reponses/{rid}/offres/{offer}/pieces" if offer else f"/reponses/{rid}/pieces"
    return post_form(browser, rp, f"/reponses/{rid}", action, {"kind": kind},
                     files={"file": (name, content, "application/pdf")})


def press(browser: requests.Session, rp: RP, rid: int, action: str) -> requests.Response:
    """Press a button of the response page (its form posts to `action`)."""
    return post_form(browser, rp, f"/reponses/{rid}", action, {})


def valid_candidature(browser: requests.Session, rp: RP, rid: int) -> None:
    ok(save_candidature(browser, rp, rid))
    ok(attach(browser, rp, rid, "pouvoir"))
    ok(attach(browser, rp, rid, "qualiopi"))
    ok(press(browser, rp, rid, f"/reponses/{rid}/candidature/valider"))
    assert "La candidature est validée" in page_text(browser.get(f"{rp.url}/reponses/{rid}"))


def new_offer(browser: requests.Session, rp: RP, rid: int, lot_id: int) -> int:
    response = ok(post_form(browser, rp, f"/reponses/{rid}", f"/reponses/{rid}/offres", {"lot": str(lot_id)}))
    return int(re.search(r"/offres/(\d+)", response.headers["Location"]).group(1))  # type: ignore[union-attr]


OFFER = {
    "formacode": "44028", "objectives": "Obtenir le titre d'électricien d'équipement du bâtiment.",
    "prerequisites": "Savoirs de base.", "content": "Module 1 : habilitations. Module 2 : installations.",
    "hours": "420", "headcount": "12", "unit_price": "12.50",
    "accessibility": "Locaux de plain-pied, accessibles en fauteuil.",
    "sites-0-name": "Centre de Lyon", "sites-0-address": "3 quai Perrache", "sites-0-postal_code": "69002",
    "sites-0-city": "Lyon", "sessions-0-site": "1", "sessions-0-start": "2027-01-11", "sessions-0-end": "2027-06-30",
    "contact_name": "Paul Martin", "contact_phone": "04 78 00 00 01", "contact_email": "paul@formation-plus.test",
}


def save_offer(browser: requests.Session, rp: RP, rid: int, oid: int, **values: str) -> requests.Response:
    path = f"/reponses/{rid}/offres/{oid}"
    return post_form(browser, rp, path, path, {**OFFER, **values})


def valid_offer(browser: requests.Session, rp: RP, rid: int, lot_id: int, **values: str) -> int:
    oid = new_offer(browser, rp, rid, lot_id)
    ok(save_offer(browser, rp, rid, oid, **values))
    ok(attach(browser, rp, rid, "annexe", offer=oid))
    ok(press(browser, rp, rid, f"/reponses/{rid}/offres/{oid}/valider"))
    assert "est validée ; son acte d'engagement est généré" in page_text(browser.get(f"{rp.url}/reponses/{rid}"))
    return oid


def ready(app: Any, rp: RP, cid: int, org: Org | None = None, **offer: str) -> tuple[requests.Session, Org, str, int, int]:
    """A signataire's response with a validated candidature and one validated offer on the first lot:
    (browser, structure, e-mail, response id, offer id)."""
    browser, org, email = signataire(app, rp, org)
    rid = start(browser, rp, cid)
    valid_candidature(browser, rp, rid)
    oid = valid_offer(browser, rp, rid, lot_ids(rp, cid)[0], **offer)
    return browser, org, email, rid, oid


def submit(browser: requests.Session, rp: RP, rid: int) -> requests.Response:
    return press(browser, rp, rid, f"/reponses/{rid}/deposer")


def documents_of(rp: RP, rid: int) -> list[tuple[int, str, str]]:
    """(id, kind, filename) of a response's generated documents."""
    from apps.sam import db
    from apps.sam.models import TenderResponse

    with rp.app.app_context():
        return [(d.id, d.kind, d.filename) for d in db.session.get(TenderResponse, rid).documents]
