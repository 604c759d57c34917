"""Text folding for search (issue 14 §5): one function for both databases.

Accents and case are folded in Python before either engine sees the text, so SQLite's FTS5 and
PostgreSQL's `french` text search read the same words (PostgreSQL then needs no `unaccent`
extension, which only a superuser may create). Plurals are folded to the singular here for FTS5;
PostgreSQL's French stemmer does the same on its side.
"""

from __future__ import annotations

import re
import unicodedata

WORD = re.compile(r"[a-z0-9]+")
LIGATURES = str.maketrans({"œ": "oe", "æ": "ae", "Œ": "oe", "Æ": "ae", "ß": "ss"})


def fold(value: str | None) -> str:
    """Lower case without accents: "Électricité des Bâtiments" → "electricite des batiments"."""
    text = (value or "").translate(LIGATURES)
    text = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in text if not unicodedata.combining(ch)).lower()


def singular(word: str) -> str:
    """The French singular of a folded word, for the common plurals: -aux → -al, -eaux → -eau, -s/-x."""
    if len(word) <= 3 or word.isdigit():
        return word
    if word.endswith("eaux"):
        return word[:-1]
    if word.endswith("aux") and len(word) > 4:
        return word[:-3] + "al"
    if word.endswith(("s", "x")) and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def words(value: str | None) -> list[str]:
    """The folded, singular words of a text."""
    return [singular(w) for w in WORD.findall(fold(value))]


def index_text(*parts: str | None) -> str:
    """The text an engine indexes: folded singular words, separated by spaces."""
    return " ".join(w for part in parts for w in words(part))


def fts_query(value: str | None, limit: int = 8) -> str:
    """An FTS5 MATCH expression: every word, as a prefix (so "macon" finds "maconnerie"), all required."""
    terms = list(dict.fromkeys(words(value)))[:limit]
    return " ".join(f'"{t}"*' for t in terms)
