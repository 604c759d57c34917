"""The fuzz pass's crawler, payloads and checks (issue 15; no tests here), for the IdP
(tests/test_fuzz.py, through Flask's test client) and the apps (tests/test_fuzz_apps.py, over real
HTTP through `LiveClient`, which answers like the test client so one crawler serves both).

Pages are found by crawling from a few entry points (links and forms of the same site), so a new
page is fuzzed without being listed. Each form is posted once per field and payload (over values
that make it valid, when given, and with the page's new version after each save), each GET form
and query parameter is sent each payload, each id in a path odd values, each file field odd
names, contents and types. Nothing may answer 500, reflect markup unescaped, evaluate a template,
let a header through or send headers a proxy refuses. Destructive buttons (log out, delete,
revoke...) are left alone: their effect would end the crawl, not test the input.

The costs stay bounded: MAX_PAGES pages, one value per way of failing, one row of a repeated list,
a form class once (SAME_FORM), and a `seen` set shared by the people of one app.
"""

from __future__ import annotations

import html as html_lib
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests

from tests.conftest import forms

MARKUP = "<script>alert('fz')</script><img src=x onerror=alert(1)>"
TEMPLATE = "fz{{ 7*191 }}zf fz{% print 7*191 %}zf fz${7*191}zf"  # evaluated, it would show "fz1337zf"
# One value per way of failing: payloads that fail the same way share a value (NUL and the other
# control characters; an SQL and a template injection), so each field costs 14 requests.
TEXT_PAYLOADS: dict[str, str] = {
    "control": "a\x00b\x01\x1b\x7f",  # NUL (PostgreSQL refuses it in text) and other control characters
    "crlf": "x\r\nX-Fuzz: injected\r\n\r\n<b>",
    "sql_template": "' OR 1=1 --; DROP TABLE users; -- " + TEMPLATE,
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
RAW_PAYLOADS = {"invalid_utf8": "%FF%FE%C0%AF%ED%A0%80"}
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
SAME_FORM = 5  # fields: two forms with the same five fields or more are one form class (create, edit)
# What a reverse proxy takes of an answer's headers (nginx's proxy_buffer_size, 4 or 8 kB): a longer
# Location (a reflected 10 kB query) is a 502 in production, whatever the app meant.
MAX_HEADERS = 8192


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
        return self._send("GET", path, params=query_string)

    def post(self, path: str, data: Any = None, content_type: str | None = None,
             files: dict[str, Any] | None = None) -> LiveResponse:
        headers = {"Content-Type": content_type} if content_type else None
        return self._send("POST", path, data=data, headers=headers, files=files)

    def _send(self, method: str, path: str, **kwargs: Any) -> LiveResponse:
        try:
            return LiveResponse(self.browser.request(method, f"{self.base_url}{path}", allow_redirects=False, timeout=30,
                                                     **kwargs))
        except requests.ConnectionError as exc:  # an answer no client can read (a header line over 64 kB...)
            raise AssertionError(f"{method} {path[:200]} {str(kwargs)[:300]}: {exc}") from exc


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


def _select_defaults(chunk: str) -> dict[str, str]:
    """Each select's first non-empty option: a form posted with its choices made reaches the code
    behind its validation, where an empty choice stops at "Ce champ est obligatoire"."""
    chosen = {}
    for name, options in re.findall(r'<select\b[^>]*\bname="([^"]+)"[^>]*>(.*?)</select>', chunk, flags=re.DOTALL):
        values = [html_lib.unescape(v) for v in re.findall(r'<option\b[^>]*\bvalue="([^"]*)"', options) if v]
        if values:
            chosen[name] = values[0]
    return chosen


def _post_forms(pages: dict[str, str], skip: Iterable[str], seen: set[Any] | None,
                kind: str) -> Iterator[tuple[str, str, list[str], dict[str, str], str]]:
    """(page, action, field names, the values the page gave its fields, form chunk) of each POST form,
    once per kind of form (its action with the ids left out, its fields), and not when in `seen` already."""
    done = seen if seen is not None else set()
    skip = tuple(skip)
    for path, page in pages.items():
        for form, chunk in zip(forms(page), _form_chunks(page), strict=False):
            action = html_lib.unescape(form["action"] or path)
            if form["method"] != "post" or any(s in action for s in skip):
                continue
            names = _field_names(chunk)
            # The same form on another page (the header's, a list's rows, another offer's); a form of
            # SAME_FORM fields or more that has the fields of one fuzzed already is the same form class
            # on its create and edit pages: its fields are sent their payloads once.
            key = (kind, tuple(sorted(names))) if len(names) >= SAME_FORM else (kind, _shape(action), tuple(sorted(names)))
            if key in done:
                continue
            done.add(key)
            yield path, action, names, dict(form["fields"]), chunk


def _one_row_each(names: list[str]) -> list[str]:
    """The fields less the later rows of a repeated list ("sites-1-city" after "sites-0-city"): the
    same code reads each row."""
    kept, rows = [], set()
    for name in names:
        row = re.sub(r"-[0-9]+-", "-#-", name)
        if row == name or row not in rows:
            kept.append(name)
            rows.add(row)
    return kept


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
    size = sum(len(name) + len(value) + 4 for name, value in response.headers.items())
    assert size <= MAX_HEADERS, (where, size, {k: v[:100] for k, v in response.headers.items()})
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


# (action, form) → the values that make the form valid; a callable value is called for each post
# (a unique reference, a new SIRET).
Valid = Callable[[str, str], dict[str, Any]]


def fuzz_forms(client: Any, pages: dict[str, str], *, skip_actions: Iterable[str] = SKIP_ACTIONS,
               choose: bool = False, valid: Valid | None = None, seen: set[Any] | None = None) -> int:
    """Post every form of every page once per field and payload; the number of requests sent.

    :param choose: post each select's first choice (not the empty one) beside the hostile value.
    :param valid: the values that make a form valid, so that each hostile value reaches the code
        behind the form's validation (saving, the domain's rules), not only the validation.
    :param seen: what was fuzzed already (by another person of the same app): not again.
    """
    sent = 0
    for source, action, names, fields, chunk in _post_forms(pages, skip_actions, seen, "form"):
        form = _Posted(client, source, action, {**fields, **(_select_defaults(chunk) if choose else {})},
                       valid(action, chunk) if valid else {})
        for name in _one_row_each(names):
            for label, value in TEXT_PAYLOADS.items():
                form.post(f"{name}={label}", {name: value})
            for label, raw in RAW_PAYLOADS.items():
                form.post(f"{name}={label}", raw=(name, raw))
        # A 1 MB value: 413 by the body limit, never a 500.
        form.post("1 MB", {(names or ["x"])[0]: "x" * (1024 * 1024 + 1)})
        sent += form.sent
    return sent


class _Posted:
    """A form posted again and again, one hostile value at a time, over its page's values (and the
    valid ones): after each save, the next post takes the page's new version and token, so it is not
    merely a stale save (409)."""

    def __init__(self, client: Any, source: str, action: str, base: dict[str, Any], good: dict[str, Any]) -> None:
        self.client, self.source, self.action, self.base, self.good, self.sent = client, source, action, base, good, 0

    def post(self, label: str, values: dict[str, Any] | None = None, raw: tuple[str, str] | None = None) -> None:
        good = {k: v() if callable(v) else v for k, v in self.good.items()}  # e.g. a new unique reference each time
        data = {**self.base, **good, **(values or {})}
        if raw is not None:
            name, encoded = raw
            body = urlencode({k: v for k, v in data.items() if k != name}, doseq=True) + f"&{name}={encoded}"
            response = self.client.post(self.action, data=body, content_type="application/x-www-form-urlencoded")
        else:
            response = self.client.post(self.action, data=data)
        check_answer(response, f"{self.action} {label}")
        self.sent += 1
        if 300 <= response.status_code < 400:
            self._refresh()

    def _refresh(self) -> None:
        page = self.client.get(self.source)
        check_answer(page, f"GET {self.source} after {self.action}")  # what was saved, shown where it was typed
        if page.status_code != 200 or page.mimetype != "text/html":
            page.close()
            return
        for form in forms(page.get_data(as_text=True)):
            if html_lib.unescape(form["action"] or self.source) == self.action:
                self.base.update({k: v for k, v in form["fields"].items() if k in ("csrf_token", "version")})
                return


PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
UPLOAD_NAMES = {"nul": "a\x00b.pdf", "crlf": "a\r\nX-Fuzz: x.pdf", "markup": MARKUP + ".pdf", "template": TEMPLATE + ".pdf",
                "traversal": "../../../etc/passwd", "windows": "C:\\Windows\\..\\x.pdf", "long": "é" * 2_000 + ".pdf",
                "empty": "", "dots": "..", "unicode": "\u202efdp.exe", "quote": '"; x=".pdf'}
UPLOAD_BODIES = {"empty": b"", "markup": MARKUP.encode(), "not_utf8": b"\xff\xfe\x00" * 100, "zip": b"PK\x03\x04" + b"\x00" * 30}
UPLOAD_TYPES = ("", "text/html", "application/pdf; charset=\x00", "x" * 500)


def fuzz_uploads(client: Any, pages: dict[str, str], *, skip_actions: Iterable[str] = SKIP_ACTIONS,
                 seen: set[Any] | None = None) -> int:
    """Each multipart form's file fields: hostile file names, contents and types (a `LiveClient`:
    it sends `files`). The other fields keep their values, selects their first choice."""
    sent = 0
    for _source, action, _names, fields, chunk in _post_forms(pages, skip_actions, seen, "upload"):
        base = {**fields, **_select_defaults(chunk)}
        files = re.findall(r'<input\b(?=[^>]*\btype="file")[^>]*\bname="([^"]+)"', chunk)
        for name in files:
            cases = [*((f"name={label}", (filename, PDF, "application/pdf")) for label, filename in UPLOAD_NAMES.items()),
                     *((f"body={label}", ("piece.pdf", body, "application/pdf")) for label, body in UPLOAD_BODIES.items()),
                     *((f"type={kind[:10]!r}", ("piece.pdf", PDF, kind)) for kind in UPLOAD_TYPES)]
            for label, upload in cases:
                response = client.post(action, data=base, files={name: upload})
                check_answer(response, f"{action} {name} {label}")
                sent += 1
    return sent


# Ids in paths: beyond 64 bits, zero, negative, digits int() takes or refuses, bytes, markup, CRLF.
ODD_SEGMENTS = ("9" * 30, "0", "-1", "²", "٣", "1_0", "%00", "%FF%FE", "%0D%0AX-Fuzz:%20x", "a" * 2_000,
                "%3Cscript%3Ealert('fz')%3C%2Fscript%3E", "..%2F..%2Fetc")
_ID_SEGMENT = re.compile(r"[0-9]+|[0-9a-f]{8,}|[0-9a-f-]{36}")


def fuzz_paths(client: Any, pages: dict[str, str], *, skip_actions: Iterable[str] = SKIP_ACTIONS,
               seen: set[Any] | None = None) -> int:
    """Each id in the path of a crawled page (GET) and of a form's action (POST, with its fields)
    replaced by ODD_SEGMENTS, once per kind of path."""
    sent = 0
    done = seen if seen is not None else set()
    targets: dict[tuple[str, str], tuple[str, dict[str, str]]] = {}
    for path in pages:
        targets.setdefault(("get", _shape(path)), (urlsplit(path).path, {}))
    for _source, action, _names, fields, chunk in _post_forms(pages, skip_actions, None, "path"):
        targets.setdefault(("post", _shape(action)), (urlsplit(action).path, {**fields, **_select_defaults(chunk)}))
    for (method, shape), (path, base) in targets.items():
        if ("path", method, shape) in done:
            continue
        done.add(("path", method, shape))
        segments = path.split("/")
        for index, segment in enumerate(segments):
            if not _ID_SEGMENT.fullmatch(segment):
                continue
            for odd in ODD_SEGMENTS:
                odd_path = "/".join([*segments[:index], odd, *segments[index + 1:]])
                response = client.get(odd_path) if method == "get" else client.post(odd_path, data=base)
                check_answer(response, f"{method.upper()} {odd_path[:120]}")
                sent += 1
    return sent


def _shape(path: str) -> str:
    return "/".join("{id}" if _ID_SEGMENT.fullmatch(s) else s for s in urlsplit(path).path.split("/"))


def fuzz_query_strings(client: Any, pages: dict[str, str], extra: dict[str, Iterable[str]] | None = None,
                       seen: set[Any] | None = None) -> int:
    """Each page's GET forms and query parameters, with the same payloads in the query string.

    :param extra: more parameters to send per path (those no page links to, e.g. `next`).
    """
    sent = 0
    done = seen if seen is not None else set()
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
    opened = {urlsplit(path).path for path in pages}
    for path, names in targets.items():
        for name in sorted(names):
            if path in opened:  # a page this person opens: once per app (another may only be refused it)
                if ("query", _shape(path), name) in done:
                    continue
                done.add(("query", _shape(path), name))
            for label, value in TEXT_PAYLOADS.items():
                response = client.get(path, query_string={name: value})
                check_answer(response, f"GET {path}?{name}={label}")
                sent += 1
            for label, raw in RAW_PAYLOADS.items():
                response = client.get(f"{path}?{name}={raw}")
                check_answer(response, f"GET {path}?{name}={label}")
                sent += 1
    return sent
