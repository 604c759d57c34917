"""Issue 15, the fuzz pass: every form a platform admin, a structure admin, a member and a visitor
can reach, and every JSON body of the service API, with hostile values (NUL, invalid UTF-8, 10 kB
and 1 MB strings, CR/LF, SQL and template payloads, markup, huge and wrong-typed numbers, deep
nesting). Nothing may answer 500, reflect markup unescaped, or let a header through.

The pages are found by crawling from a few entry points (links and forms of the same site), so
a new page is fuzzed without being listed here. Destructive buttons (log out, detach, revoke,
rotate keys...) are left alone: their effect would end the crawl, not test the input.
"""

from __future__ import annotations

import html as html_lib
import re
from collections import deque
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import requests
from conftest import forms, new_siret
from manage_helpers import (
    World,
    account_factory,
    ask_to_join,
    build_world,
    logged,
    retire_platform_admin,
)

MARKUP = "<script>alert('fz')</script><img src=x onerror=alert(1)>"
TEMPLATE = "fz{{ 7*191 }}zf fz{% print 7*191 %}zf fz${7*191}zf"  # evaluated, it would show "fz1337zf"
TEXT_PAYLOADS: dict[str, str] = {
    "nul": "a\x00b",
    "control": "\x01\x1b\x7f",
    "crlf": "x\r\nX-Fuzz: injected\r\n\r\n<b>",
    "sql": "' OR 1=1 --; DROP TABLE users; --",
    "template": TEMPLATE,
    "markup": MARKUP,
    "long": "é" * 10_000,
    "huge_int": "9" * 40,
    "negative": "-1",
    "float": "1e999",
    "unicode": "\u202e\ufeff\U0001f600",
    "superscript_digit": "²",  # str.isdigit() says yes, int() refuses it
    "arabic_digit": "٣",  # int() takes it: only ASCII digits may count
    "last_day": "9999-12-31",  # parses, then overflows once a day is added
    "first_day": "0001-01-01",
    "empty": "",
}
# Raw bytes no str can carry: invalid UTF-8 and a lone surrogate, percent-encoded in the body.
RAW_PAYLOADS = {"invalid_utf8": "%FF%FE%C0%AF", "surrogate": "%ED%A0%80"}
SKIP_ACTIONS = ("logout", "detacher", "revoke", "disable", "secret", "rotate", "/keys", "recovery-codes",
                "deactivate", "delete", "block", "suspension", "administrateur", "refuser", "/dev/")
SKIP_LINKS = ("logout", "/dev/", ".csv", "/oauth/", "/static/", "mailto:", "javascript:")
MAX_PAGES = 60


def _same_site_links(page: str) -> list[str]:
    links = []
    for href in re.findall(r'<a\b[^>]*\bhref="([^"#]+)"', page):  # links, not stylesheets
        href = html_lib.unescape(href)
        if href.startswith("/") and not href.startswith("//") and not any(s in href for s in SKIP_LINKS):
            links.append(href)
    return links


def _form_chunks(page: str) -> list[str]:
    return re.findall(r"<form\b.*?</form>", page, flags=re.DOTALL)


def _field_names(chunk: str) -> list[str]:
    names = re.findall(r'<(?:input|textarea|select)\b[^>]*\bname="([^"]+)"', chunk)
    return list(dict.fromkeys(n for n in names if n != "csrf_token"))


def crawl(client: Any, start: list[str]) -> dict[str, str]:
    """GET pages reachable from `start` (same site, safe links): path → HTML."""
    seen: dict[str, str] = {}
    queue = deque(start)
    while queue and len(seen) < MAX_PAGES:
        path = queue.popleft()
        if path in seen:
            continue
        response = client.get(path)
        assert response.status_code != 500, path
        if response.status_code != 200 or response.mimetype != "text/html":
            response.close()  # a file sent as is (an export) must not stay open
            seen[path] = ""
            continue
        text = response.get_data(as_text=True)
        seen[path] = text
        queue.extend(link for link in _same_site_links(text) if link not in seen)
    return {path: page for path, page in seen.items() if page}


def check_answer(response: Any, where: str) -> None:
    assert response.status_code < 500, (where, response.status_code)
    for name, value in response.headers.items():
        assert name.lower() != "x-fuzz", where
        assert "\r" not in value and "\n" not in value, (where, name)
    if response.mimetype == "text/html":
        body = response.get_data(as_text=True)
        assert "<script>alert('fz')</script>" not in body, where
        assert "onerror=alert(1)>" not in body, where
        assert "fz1337zf" not in body, where  # a template payload evaluated


def fuzz_forms(client: Any, pages: dict[str, str]) -> int:
    """Post every form of every page once per field and payload; the number of requests sent."""
    sent = 0
    done: set[tuple[str, tuple[str, ...]]] = set()
    for path, page in pages.items():
        parsed = forms(page)
        for form, chunk in zip(parsed, _form_chunks(page), strict=False):
            action = html_lib.unescape(form["action"] or path)
            if form["method"] != "post" or any(s in action for s in SKIP_ACTIONS):
                continue
            names = _field_names(chunk)
            key = (urlsplit(action).path, tuple(sorted(names)))
            if key in done:  # the same form on another page (the header's, a list's rows)
                continue
            done.add(key)
            base = {k: v for k, v in form["fields"].items()}
            for name in names:
                for label, value in TEXT_PAYLOADS.items():
                    response = client.post(action, data={**base, name: value})
                    check_answer(response, f"{action} {name}={label}")
                    sent += 1
                for label, raw in RAW_PAYLOADS.items():
                    body = urlencode({k: v for k, v in base.items() if k != name}) + f"&{name}={raw}"
                    response = client.post(action, data=body, content_type="application/x-www-form-urlencoded")
                    check_answer(response, f"{action} {name}={label}")
                    sent += 1
            # A 1 MB value: 413 by the body limit, never a 500.
            response = client.post(action, data={**base, (names or ["x"])[0]: "x" * (1024 * 1024 + 1)})
            check_answer(response, f"{action} 1 MB")
            sent += 1
    return sent


def fuzz_query_strings(client: Any, pages: dict[str, str]) -> int:
    """Each page's GET forms and query parameters, with the same payloads in the query string."""
    sent = 0
    targets: dict[str, set[str]] = {}
    for path, page in pages.items():
        for form, chunk in zip(forms(page), _form_chunks(page), strict=False):
            if form["method"] == "get":
                targets.setdefault(html_lib.unescape(form["action"] or path).split("?")[0], set()).update(
                    _field_names(chunk))
        split = urlsplit(path)
        if split.query:
            targets.setdefault(split.path, set()).update(k for k, _ in
                                                         (p.split("=", 1) for p in split.query.split("&") if "=" in p))
    for path in ("/login", "/signup"):
        targets.setdefault(path, set()).update({"next", "login_hint", "ui_locales", "force"})
    for path, names in targets.items():
        for name in sorted(names):
            for label, value in TEXT_PAYLOADS.items():
                response = client.get(path, query_string={name: value})
                check_answer(response, f"GET {path}?{name}={label}")
                sent += 1
            for label, raw in RAW_PAYLOADS.items():
                response = client.get(f"{path}?{name}={raw}")
                check_answer(response, f"GET {path}?{name}={label}")
                sent += 1
    return sent


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
    sent = fuzz_forms(client, pages) + fuzz_query_strings(client, pages)
    print(f"{who}: {len(pages)} pages, {sent} requests: {sorted(pages)}")  # noqa: T201 - shown with -s
    assert sent > 50


# ------------------------------------------------------------------ the service API's JSON bodies

JSON_VALUES: dict[str, Any] = {
    "nul": "a\x00b", "crlf": "x\r\ny", "markup": MARKUP, "template": TEMPLATE, "sql": "' OR 1=1 --",
    "long": "é" * 10_000, "huge_int": 10**40, "negative": -1, "float": 1e308, "bool": True, "null": None,
    "list": ["a"], "object": {"a": 1}, "deep": [[[[[[[[[[["x"]]]]]]]]]]], "empty": "",
}
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
        for raw in (b"", b"{", b"[]", b'"x"', b"\xff\xfe", b"{}" * 1000, b"\x00", b'{"name": "a"}' + b" " * 2_000_000):
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
