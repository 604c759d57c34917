"""The apps in French and English (issue 16): which language a request is answered in (the
switcher in the shell's header is a route of `shared.views`).

Catalogs: the shell's own (`shared/translations`) and each app's (`apps/<app>/translations`),
merged when Flask-Babel loads them (the app's entries win). `make messages` extracts and updates
them, `make translations` compiles them.

The language, first found wins: `?ui_locales=` (OIDC style, this request only), the switcher's
cookie (`portail_lang`, the IdP's: cookies are per host, not per port, so a choice made on the
portal follows the person to the apps in dev), the `locale` claim, the browser, French.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from flask import Flask, current_app, has_request_context, request
from flask_babel import LazyString, gettext
from markupsafe import escape

from shared.timefmt import paris

K = TypeVar("K")

# The switcher's cookie: the same name as the IdP's (idp/ui.py; tests/test_translations.py checks).
LANG_COOKIE = "portail_lang"
LANG_COOKIE_MAX_AGE = 365 * 24 * 3600
LANGUAGE_NAMES = {"fr": "Français", "en": "English"}
TRANSLATIONS = Path(__file__).resolve().parent / "translations"


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "translate where shown"
    """Mark a French text for extraction; it is translated where it is shown (`_(label)`)."""
    return message


class LazyText(LazyString):
    """flask-babel's lazy string, escaped in HTML like any text (flask-babel's own is inserted as
    markup, unescaped): `CONFLICT_MESSAGE`, form labels and messages defined at import time."""

    def __html__(self) -> str:
        return str(escape(str(self)))


def lazy_gettext(string: str, **variables: Any) -> LazyText:
    """`gettext` when the text is shown, for texts defined at import time (form labels)."""
    return LazyText(gettext, string, **variables)


def page_language() -> str:
    """ "en" or "fr": the page's language, for the tables that hold both (shared/applications.py)."""
    from flask_babel import get_locale

    locale = get_locale()
    return "en" if locale is not None and locale.language == "en" else "fr"


def translated(labels: Mapping[K, str]) -> dict[K, str]:
    """A table of French labels (marked `N_`) in the page's language, for the templates."""
    return {key: gettext(label) for key, label in labels.items()}


def plural(singular: str, many: str, n: int) -> str:
    """ngettext with the French rule where there is no catalog to give it (0 and 1 are singular:
    "0 résultat"); English and other catalogs by their own rule."""
    from flask_babel import get_locale, get_translations

    locale = get_locale()
    if locale is None or locale.language == "fr":
        return singular if n <= 1 else many
    return str(get_translations().ungettext(singular, many, n))


def paris_shown(value: datetime | None, fmt: str = "%d/%m/%Y à %H:%M", zone: bool = False) -> str:
    """The templates' `paris` filter: as `shared.timefmt.paris`, in the page's language ("07/12/2026
    at 14:30 (Paris time)" in English). Python code keeps `paris` for what it stores (audit texts)."""
    from flask_babel import get_locale

    if value is None:
        return "—"
    locale = get_locale()
    if locale is not None and locale.language == "en":
        fmt = fmt.replace(" à ", " at ")
    text = paris(value, fmt)
    return gettext("%(time)s (heure de Paris)", time=text) if zone else text


def install_plural(app: Flask) -> None:
    """The templates' `ngettext` (newstyle: `%(num)d` is the count) with the rule of `plural`."""
    from flask_babel import get_translations

    app.jinja_env.install_gettext_callables(gettext=lambda s: get_translations().ugettext(s), ngettext=plural,
                                            newstyle=True)


def select_locale(claimed_locale: Callable[[], str]) -> str:
    """The language of this request (see the module's docstring); French outside a request (the
    command line, the mail worker). `claimed_locale()` is the signed-in person's `locale` claim, or ""."""
    if not has_request_context():
        return str(current_app.config["BABEL_DEFAULT_LOCALE"])
    chosen = chosen_locale()
    if chosen:
        return chosen
    languages = current_app.config["LANGUAGES"]
    claim = claimed_locale().split("-")[0].lower()
    if claim in languages:
        return claim
    return request.accept_languages.best_match(languages) or current_app.config["BABEL_DEFAULT_LOCALE"]


def chosen_locale() -> str | None:
    """The language this person chose: `?ui_locales=` (this request), else the switcher's cookie;
    None when they chose nothing (the login passes a choice on to the IdP as `ui_locales`)."""
    languages = current_app.config["LANGUAGES"]
    for tag in (request.args.get("ui_locales") or "").split():
        base = tag.split("-")[0].lower()
        if base in languages:
            return base
    chosen = request.cookies.get(LANG_COOKIE)
    return str(chosen) if chosen in languages else None
