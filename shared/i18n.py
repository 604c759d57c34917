"""The apps in French and English (issue 16): which language a request is answered in, and the
language switcher in the shell's header.

Catalogs: the shell's own (`shared/translations`) and each app's (`apps/<app>/translations`),
merged when Flask-Babel loads them (the app's entries win). `make messages` extracts and updates
them, `make translations` compiles them.

The language, first found wins: `?ui_locales=` (OIDC style, this request only), the switcher's
cookie (`portail_lang`, the IdP's: cookies are per host, not per port, so a choice made on the
portal follows the person to the apps in dev), the `locale` claim, the browser, French.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from flask import Blueprint, Flask, current_app, has_request_context, redirect, request
from flask_babel import LazyString, gettext
from markupsafe import escape
from werkzeug.wrappers import Response

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


def install_plural(app: Flask) -> None:
    """The templates' `ngettext` (newstyle: `%(num)d` is the count) with the rule of `plural`."""
    from flask_babel import get_translations

    app.jinja_env.install_gettext_callables(gettext=lambda s: get_translations().ugettext(s), ngettext=plural,
                                            newstyle=True)


def select_locale() -> str:
    """The language of this request (see the module's docstring); French outside a request (the
    command line, the mail worker)."""
    from shared.sso import current_identity

    if not has_request_context():
        return str(current_app.config["BABEL_DEFAULT_LOCALE"])
    chosen = chosen_locale()
    if chosen:
        return chosen
    languages = current_app.config["LANGUAGES"]
    identity = current_identity()
    claim = (identity.locale if identity else "").split("-")[0].lower()
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


bp = Blueprint("shell_i18n", __name__)


@bp.post("/langue")
def language() -> Response:
    """Remember the language chosen in the header, in the portal's cookie, and go back.

    No CSRF token: a token would open a server-side session for every anonymous visitor of the
    public pages, and the most a forged post can do is switch the page's language."""
    from shared.sso import safe_next

    response = redirect(safe_next(request.form.get("next")), 303)
    lang = request.form.get("lang", "")
    if lang in current_app.config["LANGUAGES"]:
        response.set_cookie(LANG_COOKIE, lang, max_age=LANG_COOKIE_MAX_AGE, samesite="Lax", httponly=True,
                            secure=current_app.config.get("SESSION_COOKIE_SECURE", False))
    return response
