"""The English catalogue (SPEC §1: French by default, English via ui_locales or the browser).

Every message the IdP marks for translation — extracted afresh from the sources, exactly as
`pybabel extract -F babel.cfg -k _l -k lazy_gettext .` does — has an English translation that
keeps the same placeholders; and pages asked for with `?ui_locales=en` come out in English.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from test_accounts_helpers import login

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "idp" / "translations"
PO = TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.po"
MO = PO.with_suffix(".mo")
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}

# %(name)s, %(num)d, %s, %d … (printf style, flask-babel) and {name} (str.format, a few views).
PLACEHOLDER = re.compile(r"%\(\w+\)[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]|%[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]"
                         r"|\{\w*\}")


def placeholders(text: str) -> Counter[str]:
    return Counter(PLACEHOLDER.findall(text.replace("%%", "")))


def extracted() -> Catalog:
    """The messages of the IdP as found now in idp/**.py and idp/templates/**.html (babel.cfg)."""
    with open(ROOT / "babel.cfg", encoding="utf-8") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    catalog = Catalog(locale=None)
    for filename, lineno, message, comments, context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=KEYWORDS):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def english() -> Catalog:
    with open(PO, "rb") as f:
        return read_po(f, locale="en")


def _where(message: Message) -> str:
    return ", ".join(f"{path}:{line}" for path, line in message.locations[:2])


def _as_tuple(value: Any) -> tuple[str, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def untranslated(fresh: Catalog, po: Catalog) -> tuple[list[str], list[str]]:
    """The extracted messages `po` lacks (or has fuzzy or empty), and those whose English
    placeholders differ from the French ones."""
    missing, wrong = [], []
    for message in fresh:
        if not message.id:
            continue
        known = po.get(message.id, message.context)
        ids = _as_tuple(message.id)
        strings = _as_tuple(known.string) if known is not None else ()
        if known is None or known.fuzzy or len(strings) != len(ids) or not all(strings):
            missing.append(f"{ids[0]!r} ({_where(message)})")
            continue
        for msgid, msgstr in zip(ids, strings, strict=True):
            if placeholders(msgid) != placeholders(msgstr):
                wrong.append(f"{msgid!r} -> {msgstr!r} ({_where(message)})")
    return missing, wrong


# ---------------------------------------------------------------- the catalogue

def test_every_message_of_the_idp_has_an_english_translation_with_the_same_placeholders() -> None:
    fresh, po = extracted(), english()
    assert len([m for m in fresh if m.id]) > 500, "extraction found too few messages: check babel.cfg"
    missing, wrong = untranslated(fresh, po)
    assert not missing, f"{len(missing)} message(s) without an English translation " \
                        f"(run pybabel extract + update, then translate):\n" + "\n".join(missing)
    assert not wrong, "placeholders differ:\n" + "\n".join(wrong)


def test_the_catalogue_has_no_fuzzy_entries_and_plural_forms_for_english() -> None:
    po = english()
    # `make` compiles with --use-fuzzy: a fuzzy guess would be shown to users as if it were right.
    assert not [m.id for m in po if m.id and m.fuzzy]
    assert po.num_plurals == 2
    for message in po:
        if message.pluralizable and message.string[0]:
            assert len(message.string) == 2, message.id


def test_the_catalogue_compiles() -> None:
    po = english()
    with tempfile.TemporaryFile() as out:
        write_mo(out, po)
        assert out.tell() > 0
    # check() yields python-format consistency errors (a bad %(x)s in a msgstr, for instance)
    problems = [(m.id, errors) for m, errors in po.check() if errors]
    assert not problems


# ---------------------------------------------------------------- pages in English

@pytest.fixture
def compiled(app: Any) -> None:
    """`make test` compiles the catalogue first; a bare pytest run may find a stale .mo: rebuild it
    (atomically: other processes may be reading it) and let flask-babel load it again."""
    if not MO.exists() or MO.stat().st_mtime < PO.stat().st_mtime:
        fd, tmp = tempfile.mkstemp(dir=MO.parent, suffix=".mo.tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                write_mo(out, english())
            os.replace(tmp, MO)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        with app.app_context():
            app.extensions["babel"].instance.domain_instance.cache.clear()


def test_login_page_in_english_with_ui_locales(compiled: None, testclient: Any) -> None:
    page = testclient.get("/login?ui_locales=en")
    assert page.status_code == 200
    assert "Forgotten password?" in page.text
    assert "Mot de passe oublié" not in page.text
    assert 'lang="en"' in page.text or "lang=en" in page.text


def test_login_page_stays_french_by_default(compiled: None, app: Any) -> None:
    page = app.test_client().get("/login", headers={"Accept-Language": "de"})
    assert page.status_code == 200
    assert "Mot de passe oublié" in page.text


def test_signup_page_in_english(compiled: None, testclient: Any) -> None:
    page = testclient.get("/signup?ui_locales=en")
    assert page.status_code == 200
    assert "Create my account" in page.text
    assert "Given name" in page.text


def test_browser_language_chooses_english(compiled: None, app: Any) -> None:
    page = app.test_client().get("/signup", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert page.status_code == 200
    assert "Create my account" in page.text


def test_my_organisations_page_in_english_after_login(compiled: None, testclient: Any,
                                                       create_account: Any) -> None:
    account = create_account()
    assert login(testclient, account.email, query="?ui_locales=en").status_code == 302
    page = testclient.get("/structures/?ui_locales=en")
    assert page.status_code == 200
    assert "My organisations" in page.text
    assert "Join an organisation" in page.text
    assert "Mes structures" not in page.text
    # The choice is remembered for the session: the next page needs no ui_locales.
    assert "Join an organisation" in testclient.get("/structures/").text


# ---------------------------------------------------------------- the shell's and the apps' catalogs

APP_CATALOGS = ["shared", "apps/repernet", "apps/sam", "apps/catalogue"]
APP_KEYWORDS = {**KEYWORDS, "N_": None}


def app_po(scope: str) -> Path:
    return ROOT / scope / "translations" / "en" / "LC_MESSAGES" / "messages.po"


def app_extracted(scope: str) -> Catalog:
    """What `make messages` extracts from `scope` (babel-apps.cfg, keywords _, _l, lazy_gettext, N_)."""
    with open(ROOT / "babel-apps.cfg", encoding="utf-8") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    catalog = Catalog(locale=None)
    for filename, lineno, message, comments, context in extract_from_dir(
            str(ROOT / scope), method_map, options_map, keywords=APP_KEYWORDS):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def app_english(scope: str) -> Catalog:
    with open(app_po(scope), "rb") as f:
        return read_po(f, locale="en")


@pytest.mark.parametrize("scope", APP_CATALOGS)
def test_every_message_of_the_shell_and_the_apps_has_an_english_translation(scope: str) -> None:
    fresh, po = app_extracted(scope), app_english(scope)
    assert len([m for m in fresh if m.id]) > 50, "extraction found too few messages: check babel-apps.cfg"
    missing, wrong = untranslated(fresh, po)
    assert not missing, f"{len(missing)} message(s) of {scope} without an English translation " \
                        f"(run `make messages`, then translate):\n" + "\n".join(missing)
    assert not wrong, "placeholders differ:\n" + "\n".join(wrong)


@pytest.mark.parametrize("scope", APP_CATALOGS)
def test_the_apps_catalogs_have_no_fuzzy_or_empty_entries_and_compile(scope: str) -> None:
    po = app_english(scope)
    assert not [m.id for m in po if m.id and m.fuzzy]
    assert not [m.id for m in po if m.id and not all(_as_tuple(m.string))]
    assert po.num_plurals == 2
    with tempfile.TemporaryFile() as out:
        write_mo(out, po)
        assert out.tell() > 0
    assert not [(m.id, errors) for m, errors in po.check() if errors]


def test_the_apps_read_the_portal_s_language_cookie() -> None:
    """One cookie for the four services: a choice made on the portal follows the person to the apps."""
    from idp.config import LANG_COOKIE as IDP_COOKIE
    from shared.i18n import LANG_COOKIE

    assert LANG_COOKIE == IDP_COOKIE
