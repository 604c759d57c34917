"""Issue 15, the fuzz pass: every form a platform admin, a structure admin, a member and a visitor
can reach, and every JSON body of the service API, with hostile values (NUL, invalid UTF-8, 10 kB
and 1 MB strings, CR/LF, SQL and template payloads, markup, huge and wrong-typed numbers, deep
nesting). Nothing may answer 500, reflect markup unescaped, or let a header through.

The pages are found by crawling from a few entry points (links and forms of the same site), so
a new page is fuzzed without being listed here. Destructive buttons (log out, detach, revoke,
rotate keys...) are left alone: their effect would end the crawl, not test the input.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from conftest import new_siret
from manage_helpers import (
    World,
    account_factory,
    ask_to_join,
    build_world,
    logged,
    retire_platform_admin,
)

from tests.fuzz_helpers import (
    JSON_VALUES,
    RAW_JSON_BODIES,
    TEXT_PAYLOADS,
    crawl,
    fuzz_forms,
    fuzz_query_strings,
)


@pytest.fixture(scope="module")
def world(app: Any) -> Iterator[World]:
    built = build_world(app, account_factory(app))
    ask_to_join(app, account_factory(app)().id, built.a)
    yield built
    retire_platform_admin(app, built.platform.id)


@pytest.mark.parametrize("who", ["visitor", "member_a", "admin_a2", "platform"])
def test_forms_survive_hostile_input(app: Any, world: World, who: str) -> None:
    if who == "visitor":
        client = app.test_client()
        start = ["/login", "/signup", "/signup/resend", "/password/forgot"]
    else:
        client = logged(app, getattr(world, who).email)
        start = ["/account/", "/structures/", "/ancien-compte/"]
        if who == "admin_a2":
            start += [f"/gestion/{world.a}/", f"/gestion/{world.a}/membres/{world.m_member_a}"]
        if who == "platform":
            start += ["/admin/"]
    pages = crawl(client, start)
    assert len(pages) >= 3, pages.keys()
    sent = fuzz_forms(client, pages) + fuzz_query_strings(
        client, pages, extra={path: ("next", "login_hint", "ui_locales", "force") for path in ("/login", "/signup")})
    print(f"{who}: {len(pages)} pages, {sent} requests: {sorted(pages)}")  # noqa: T201 - shown with -s
    assert sent > 50


# ------------------------------------------------------------------ the service API's JSON bodies

API_FIELDS = ("siret", "name", "kind", "city", "postal_code", "code", "parent_siret", "admin_email", "searchable",
              "version", "inconnu")


@pytest.fixture
def api(live_server: str, create_client: Any) -> Any:
    client = create_client(name="Service API (fuzz)", grant_types=["client_credentials"],
                           scope="structures:read structures:write members:read", redirect_uris=[])
    token = requests.post(f"{live_server}/oauth/token", data={"grant_type": "client_credentials"}, auth=client,
                          timeout=10).json()["access_token"]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"

    def call(method: str, path: str, **kwargs: Any) -> requests.Response:
        return session.request(method, f"{live_server}/api/v1{path}", timeout=30, **kwargs)

    return call


def _check_api(response: requests.Response, where: str) -> None:
    assert response.status_code < 500, (where, response.status_code, response.text[:200])
    assert response.headers["Content-Type"].startswith(("application/json", "application/problem+json")), where


def test_api_json_bodies_survive_hostile_values(api: Any, app: Any) -> None:
    saved = app.config["RATELIMIT_API_CLIENT"]
    app.config["RATELIMIT_API_CLIENT"] = "100000/minute"
    try:
        siret = new_siret()
        assert api("POST", "/structures", json={"siret": siret, "name": "Fuzz"}).status_code == 201
        for field in API_FIELDS:
            for label, value in JSON_VALUES.items():
                created = api("POST", "/structures", json={"siret": new_siret(), "name": "Fuzz", field: value})
                _check_api(created, f"POST {field}={label}")
                patched = api("PATCH", f"/structures/{siret}", json={field: value})
                _check_api(patched, f"PATCH {field}={label}")
        for raw in RAW_JSON_BODIES:
            for method, path in (("POST", "/structures"), ("PATCH", f"/structures/{siret}")):
                response = api(method, path, data=raw, headers={"Content-Type": "application/json"})
                _check_api(response, f"{method} raw {raw[:10]!r}")
        for name in ("q", "page", "per_page"):
            for label, value in TEXT_PAYLOADS.items():
                response = api("GET", "/structures", params={name: value})
                _check_api(response, f"GET ?{name}={label}")
        for odd in ("9" * 40, "%00", "%FF", "a" * 10_000, "' OR 1=1"):
            for path in (f"/structures/{odd}", f"/structures/{odd}/members"):
                _check_api(api("GET", path), f"GET {path[:40]}")
        for header in ("If-Match", "Content-Type"):
            for tag in ("9" * 40, "²", "٣"):
                response = api("PATCH", f"/structures/{siret}", json={"name": "x"},
                               headers={header: f'"{tag}"'.encode("latin-1", "replace")})
                _check_api(response, f"{header}: {tag}")
    finally:
        app.config["RATELIMIT_API_CLIENT"] = saved
