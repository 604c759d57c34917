"""Times as a person in the Région reads them: Europe/Paris, whatever the server's zone."""

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


def paris_shown(value: datetime | None, fmt: str = "%d/%m/%Y à %H:%M", zone: bool = False) -> str:
    """The templates' `paris` filter: as `paris`, in the page's language ("07/12/2026 at 14:30
    (Paris time)" in English). Python code keeps `paris` for what it stores (audit texts)."""
    from flask_babel import get_locale
    from flask_babel import gettext as _

    if value is None:
        return "—"
    locale = get_locale()
    if locale is not None and locale.language == "en":
        fmt = fmt.replace(" à ", " at ")
    text = paris(value, fmt)
    return _("%(time)s (heure de Paris)", time=text) if zone else text
