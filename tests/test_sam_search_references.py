# ruff: noqa: F811 - pytest fixtures imported from tests/test_sam_helpers.py are parameters here
"""SAM's keyword search finds a consultation by its reference whatever the reference looks like to
PostgreSQL's parser (issue 12 §3): "T-5E4729A9EE" holds what reads as a number ("5e4729") once cut
at the hyphen, and must still match itself (on SQLite's FTS5 too)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.rp_helpers import RP, new_browser
from tests.test_sam_helpers import buyer, listed, published, sam_site  # noqa: F401 - the live-server fixture


@pytest.mark.parametrize("shape", ["T-5E47{}", "T-047E{}", "AO-2027-{}", "{}-12E5"])
def test_a_reference_finds_its_consultation(app: Any, sam_site: RP, shape: str) -> None:
    browser, _, _ = buyer(app, sam_site)
    reference = shape.format(uuid.uuid4().hex[:6].upper())
    cid = published(browser, sam_site, reference=reference)
    assert f'href="/consultations/{cid}"' in listed(new_browser(), sam_site, reference)
    assert f'href="/consultations/{cid}"' in listed(new_browser(), sam_site, reference.lower())
