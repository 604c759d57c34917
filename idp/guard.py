"""What no endpoint accepts, refused before any view runs (issue 15): repeated parameters, NUL and
control characters where the protocol forbids them, client credentials that are not text.

One rule in one place, so a new endpoint cannot forget it; the views keep their own shape checks.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from flask import Flask, abort, jsonify, render_template, request
from werkzeug.routing import IntegerConverter
from werkzeug.wrappers import Response

from shared.bounds import bounded_int

# The checkbox lists of the console and of "Gérer ma structure": one name, several values.
MULTI_VALUED = frozenset({"roles", "grant_types"})
OAUTH_PREFIX = "/oauth/"
API_PREFIX = "/api/"
# Ids are PostgreSQL INTEGER columns: a larger number can name no row (and must not reach the driver).
MAX_ID = 2**31 - 1


class BoundedIntConverter(IntegerConverter):
    """`<int:...>` in every route, bounded to the ids a row can have: beyond, the URL matches nothing
    (404), as a missing id does, instead of an overflow in the database driver (500)."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:  # noqa: A002 - werkzeug's name
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def column_int(value: Any) -> int | None:
    """A form's id or version as an int within a column's range; None when it is anything else
    (the shared rule, `shared.bounds.bounded_int`: ASCII digits only)."""
    return bounded_int(value, -MAX_ID, MAX_ID)


def _printable_name(name: str) -> str:
    """A parameter's name fit to be quoted in an error (RFC 6749 §5.2 error_description charset)."""
    return "".join(c for c in name[:40] if 0x20 <= ord(c) < 0x7F and c not in '"\\') or "?"


def repeated_parameter() -> str | None:
    """The first parameter sent more than once, if any.

    RFC 6749 §3.1-3.2: protocol parameters MUST NOT be repeated, whether in the query, the body, or
    split between the two. Elsewhere a page's hidden field may echo its query (`next`), so only the
    same source counts, and checkbox lists may repeat their name.
    """
    protocol = request.path.startswith((OAUTH_PREFIX, API_PREFIX))
    sources = [request.args]
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        sources.append(request.form)
    seen: set[str] = set()
    for source in sources:
        for name, values in source.lists():
            if len(values) > 1 and (protocol or name not in MULTI_VALUED):
                return name
            if protocol and name in seen:
                return name
            seen.add(name)
    return None


_CONTROL = re.compile("[\x00-\x1f\x7f]")  # C0 controls and DEL


def _has_control(value: str) -> bool:
    return _CONTROL.search(value) is not None  # one C-level scan: every request of /oauth/ passes here


def forbidden_characters() -> str | None:
    """A parameter carrying NUL anywhere, or any control character in an OAuth/OIDC parameter.

    NUL has no use in any parameter a browser or a client sends, PostgreSQL refuses it in text, and
    "REP_3076\x00" must never be taken for "REP_3076": refused here, once, rather than by every
    field and query (the fuzz test, tests/test_fuzz.py, found several that forgot). CR, LF and the
    other control characters have no use in protocol parameters either (they end in redirects and
    in error descriptions authlib refuses to write: issue 15 finding 15); text areas keep them.
    """
    protocol = request.path.startswith(OAUTH_PREFIX)
    if "\x00" in request.path:
        return "path"
    sources = [request.args]
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        sources.append(request.form)
    for source in sources:
        for name, values in source.lists():
            if _has_control(name) or any("\x00" in v or (protocol and _has_control(v)) for v in values):
                return name
    return None


def undecodable_basic_credentials() -> bool:
    """`Authorization: Basic` whose credentials are not base64 of UTF-8 text (RFC 7617 §2.1)."""
    header = request.headers.get("Authorization", "")
    if header[:6].lower() != "basic ":
        return False
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return True
    return ":" not in decoded or _has_control(decoded)


def refuse(error: str, description: str, french: str, status: int = 400) -> Response | tuple[Any, int]:
    """The refusal in the endpoint's own language: OAuth JSON (ASCII, RFC 6749 §5.2), an RFC 9457
    problem or the error page (French)."""
    path = request.path
    if path.startswith(API_PREFIX):
        from idp.api.problems import Problem, problem_response

        return problem_response(Problem(status, "Requête invalide", french))
    if path.startswith(OAUTH_PREFIX + "authorize") or path.startswith(OAUTH_PREFIX + "logout"):
        # No redirect: the redirect URI itself may be the repeated or damaged parameter.
        return render_template("oidc/error.html", error=error, description=description), status
    if path.startswith(OAUTH_PREFIX):
        response = jsonify(error=error, error_description=description)
        response.status_code = status
        response.headers["Cache-Control"] = "no-store"
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Basic realm="portail"'
        return response
    abort(status, french)


def init_app(app: Flask) -> None:
    @app.before_request
    def refuse_malformed_requests() -> Any:
        repeated = repeated_parameter()
        if repeated is not None:
            name = _printable_name(repeated)
            return refuse("invalid_request", f"Repeated parameter: {name}.",
                          f"Le paramètre « {name} » est répété : il ne doit figurer qu'une fois.")
        damaged = forbidden_characters()
        if damaged is not None:
            name = _printable_name(damaged)
            return refuse("invalid_request", f"Forbidden characters in parameter: {name}.",
                          f"Le paramètre « {name} » contient des caractères interdits.")
        if request.path.startswith(OAUTH_PREFIX) and undecodable_basic_credentials():
            return refuse("invalid_client", "Malformed client credentials.",
                          "Identifiants du client mal formés.", 401)
        return None
