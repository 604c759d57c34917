"""Numbers, days and URLs read from a request (path, query, form, header), within the ranges the
code, the databases and the proxies can hold: one rule for the IdP and the apps (issue 15, "no 500
on bad input").

`str.isdigit()` is true for "²" (which `int()` refuses: a 500) and `int()` takes "٣" or "1_0"; a day
like 9999-12-31 parses, then overflows as soon as a day is added to it. So only ASCII digits count,
their number is checked before `int()`, and days stay between FIRST_DAY and LAST_DAY.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any
from urllib.parse import quote

_INTEGER = re.compile(r"-?[0-9]{1,19}")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

# Far enough for any deadline, contract or journal; near enough that adding days or converting to
# UTC never overflows (`date.max` is 9999-12-31).
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2100, 12, 31)


# The longest URL a service redirects to from what it was sent (a `next`, a page to come back to):
# a longer one, say a 10 kB query reflected, makes a `Location` header that reverse proxies refuse
# (a 502: nginx's proxy_buffer_size is 4 or 8 kB), so it is not followed.
MAX_REDIRECT = 2048
_URL_CHARACTERS = "/?#[]@!$&'()*+,;=:%~-._"  # kept as they are by percent-encoding


def redirect_length(target: str) -> int:
    """The length of `target` once percent-encoded, as it goes in a `Location` header."""
    return len(quote(target.encode("utf-8", "surrogatepass"), safe=_URL_CHARACTERS))  # a lone surrogate too


class DayOutOfRange(ValueError):
    """A well-formed day before FIRST_DAY or after LAST_DAY."""


def ascii_digits(value: str, length: int | None = None) -> bool:
    """Whether `value` is made of ASCII digits only (`length` of them, when given): a SIRET, a
    postal code, a département, a count typed in a form."""
    return value.isascii() and value.isdigit() and (length is None or len(value) == length)


def bounded_int(value: Any, low: int, high: int) -> int | None:
    """`value` as an int within [low, high]; None when it is anything else.

    :param value: a string from the request (surrounding spaces allowed), or an int.
    """
    text = str(value).strip()
    if _INTEGER.fullmatch(text) is None:
        return None
    number = int(text)
    return number if low <= number <= high else None


def parse_day(value: str) -> date:
    """A day typed as AAAA-MM-JJ, between FIRST_DAY and LAST_DAY.

    :raises DayOutOfRange: a real day outside the range (the caller says which range).
    :raises ValueError: anything else (another format, a day that does not exist).
    """
    text = value.strip()
    if _DAY.fullmatch(text) is None:
        raise ValueError(f"not a day: {text[:20]!r}")
    day = date.fromisoformat(text)
    if not FIRST_DAY <= day <= LAST_DAY:
        raise DayOutOfRange(text)
    return day
