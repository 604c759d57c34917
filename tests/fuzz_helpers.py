"""The fuzz pass's crawler, payloads and checks (issue 15; no tests here), for the IdP
(tests/test_fuzz.py, through Flask's test client) and the apps (tests/test_fuzz_apps.py, over real
HTTP through `LiveClient`, which answers like the test client so one crawler serves both).

Pages are found by crawling from a few entry points (links and forms of the same site), so a new
page is fuzzed without being listed. Each form is posted once per field and payload, each GET form
and query parameter is sent each payload. Nothing may answer 500, reflect markup unescaped,
evaluate a template, or let a header through. Destructive buttons (log out, delete, revoke...) are
left alone: their effect would end the crawl, not test the input.
"""

from __future__ import annotations

import html as html_lib
import re
from collections import deque
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests

from tests.conftest import forms

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
# JSON bodies of the service APIs: wrong types, huge numbers, deep nesting.
JSON_VALUES: dict[str, Any] = {
    "nul": "a\x00b", "crlf": "x\r\ny", "markup": MARKUP, "template": TEMPLATE, "sql": "' OR 1=1 --",
    "long": "é" * 10_000, "huge_int": 10**40, "negative": -1, "float": 1e308, "bool": True, "null": None,
    "list": ["a"], "object": {"a": 1}, "deep": [[[[[[[[[[["x"]]]]]]]]]]], "empty": "",
}
# Bodies no JSON parser should turn into a 500: empty, truncated, not an object, not UTF-8, NUL, big.
RAW_JSON_BODIES = (b"", b"{", b"[]", b'"x"', b"\xff\xfe", b"{}" * 1000, b"\x00", b"[" * 10_000 + b"]" * 10_000,
                   b'{"a": ' * 5_000 + b"1" + b"}" * 5_000, b'{"name": "a"}' + b" " * 2_000_000)

SKIP_ACTIONS = ("logout", "detacher", "revoke", "disable", "secret", "rotate", "/keys", "recovery-codes",
                "deactivate", "delete", "block", "suspension", "administrateur", "refuser", "/dev/")
SKIP_LINKS = ("logout", "/dev/", ".csv", "/oauth/", "/static/", "mailto:", "javascript:")
MAX_PAGES = 60


class LiveResponse:
    """A `requests` answer read like the test client's (status, mimetype, headers, body)."""

    def __init__(self, response: requests.Response) -> None:
        self._response = response
        self.status_code = response.status_code
        self.headers = response.headers
        self.mimetype = response.headers.get("Content-Type", "").split(";")[0].strip()

    def get_data(self, as_text: bool = False) -> Any:
        return self._response.text if as_text else self._response.content

    def close(self) -> None:
        self._response.close()


class LiveClient:
    """A signed-in browser (a `requests.Session` holding an app's cookies) used like Flask's test
    client, so the crawler drives a live app over HTTP as a person's browser would. No redirect is
    followed: a redirect is an answer to check, not a page to read."""

    def __init__(self, browser: requests.Session, base_url: str) -> None:
        self.browser = browser
        self.base_url = base_url

    def get(self, path: str, query_string: dict[str, str] | None = None) -> LiveResponse:
        return LiveResponse(self.browser.get(f"{self.base_url}{path}", params=query_string, allow_redirects=False,
                                             timeout=30))

    def post(self, path: str, data: Any = None, content_type: str | None = None) -> LiveResponse:
        headers = {"Content-Type": content_type} if content_type else None
        return LiveResponse(self.browser.post(f"{self.base_url}{path}", data=data, headers=headers,
                                              allow_redirects=False, timeout=30))


def _same_site_links(page: str, skip: Iterable[str]) -> list[str]:
    links = []
    for href in re.findall(r'<a\b[^>]*\bhref="([^"#]+)"', page):  # links, not stylesheets
        href = html_lib.unescape(href)
        if href.startswith("/") and not href.startswith("//") and not any(s in href for s in skip):
            links.append(href)
    return links


def _form_chunks(page: str) -> list[str]:
    return re.findall(r"<form\b.*?</form>", page, flags=re.DOTALL)


def _field_names(chunk: str) -> list[str]:
    names = re.findall(r'<(?:input|textarea|select)\b[^>]*\bname="([^"]+)"', chunk)
    return list(dict.fromkeys(n for n in names if n != "csrf_token"))


def crawl(client: Any, start: list[str], *, max_pages: int = MAX_PAGES,
          skip_links: Iterable[str] = SKIP_LINKS) -> dict[str, str]:
    """GET pages reachable from `start` (same site, safe links): path → HTML."""
    seen: dict[str, str] = {}
    queue = deque(start)
    skip = tuple(skip_links)
    while queue and len(seen) < max_pages:
        path = queue.popleft()
        if path in seen:
            continue
        response = client.get(path)
        assert response.status_code < 500, (path, response.status_code)
        if response.status_code != 200 or response.mimetype != "text/html":
            response.close()  # a file sent as is (an export) must not stay open
            seen[path] = ""
            continue
        text = response.get_data(as_text=True)
        seen[path] = text
        queue.extend(link for link in _same_site_links(text, skip) if link not in seen)
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
    else:
        response.close()


def fuzz_forms(client: Any, pages: dict[str, str], *, skip_actions: Iterable[str] = SKIP_ACTIONS,
               payloads: Iterable[str] | None = None) -> int:
    """Post every form of every page once per field and payload; the number of requests sent.

    :param payloads: the labels of TEXT_PAYLOADS to send (all by default); the raw ones always go.
    """
    sent = 0
    skip = tuple(skip_actions)
    texts = {label: TEXT_PAYLOADS[label] for label in (payloads or TEXT_PAYLOADS)}
    done: set[tuple[str, tuple[str, ...]]] = set()
    for path, page in pages.items():
        parsed = forms(page)
        for form, chunk in zip(parsed, _form_chunks(page), strict=False):
            action = html_lib.unescape(form["action"] or path)
            if form["method"] != "post" or any(s in action for s in skip):
                continue
            names = _field_names(chunk)
            key = (urlsplit(action).path, tuple(sorted(names)))
            if key in done:  # the same form on another page (the header's, a list's rows)
                continue
            done.add(key)
            base = {k: v for k, v in form["fields"].items()}
            for name in names:
                for label, value in texts.items():
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


def fuzz_query_strings(client: Any, pages: dict[str, str], extra: dict[str, Iterable[str]] | None = None) -> int:
    """Each page's GET forms and query parameters, with the same payloads in the query string.

    :param extra: more parameters to send per path (those no page links to, e.g. `next`).
    """
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
    for path, names in (extra or {}).items():
        targets.setdefault(path, set()).update(names)
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
