"""Times as a person in the Région reads them: Europe/Paris, whatever the server's zone (no Flask:
the IdP's core uses it; the templates' filter in the page's language is `shared.i18n.paris_shown`)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")


def paris(value: datetime | None, fmt: str = "%d/%m/%Y à %H:%M", zone: bool = False) -> str:
    """`value` (aware, or naive UTC) in Paris time; `zone` adds "(heure de Paris)"."""
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    text = value.astimezone(PARIS).strftime(fmt)
    return f"{text} (heure de Paris)" if zone else text


def from_paris(value: datetime) -> datetime:
    """A naive time typed in Paris time, as aware UTC (what the databases store)."""
    return value.replace(tzinfo=PARIS).astimezone(UTC)

