"""Keyword search over consultations, one function for both databases (issue 12 §3).

French words match with and without accents and in the singular or plural:
- PostgreSQL (production): full-text search with the `sam_french` configuration, `french`
  stemming after `unaccent` (created by the migration), over `consultations.search_text`;
- SQLite (the embedded mode): an FTS5 table `consultation_fts` (rowid = consultation id) that holds
  the same text folded here (no accents, lower case, plural endings removed) since FTS5 has no
  French stemmer; the query is folded the same way and each word matches as a prefix.
"""

from __future__ import annotations

import re
import unicodedata

from sqlalchemy import ColumnElement, TextClause, bindparam, func, literal_column, text
from sqlalchemy.orm import Session

from apps.sam.models import Consultation

MAX_TERMS = 12
_WORD = re.compile(r"[0-9a-z]+")
_RAW_WORD = re.compile(r"\w+")


def document(consultation: Consultation) -> str:
    """What a keyword is looked for in: reference, title, description and lot titles."""
    parts = [consultation.reference, consultation.title, consultation.description,
             *(lot.title for lot in consultation.lots)]
    return "\n".join(p for p in parts if p)


def fold(value: str) -> list[str]:
    """Words without accents or case, in the singular (a light French plural rule):
    "Électricités" → "electricite", "chevaux" → "cheval", "bureaux" → "bureau"."""
    plain = unicodedata.normalize("NFKD", value.lower())
    plain = "".join(c for c in plain if not unicodedata.combining(c)).replace("œ", "oe").replace("æ", "ae")
    words = []
    for word in _WORD.findall(plain):
        if len(word) > 3 and word.endswith("eaux"):
            word = word[:-1]
        elif len(word) > 4 and word.endswith("aux"):
            word = word[:-3] + "al"
        elif len(word) > 3 and word[-1] in "sx" and not word[-2].isdigit():
            word = word[:-1]
        words.append(word)
    return words


def reindex(session: Session, consultation: Consultation) -> None:
    """Refresh what the search reads for `consultation` (call after any change of its text or lots)."""
    consultation.search_text = document(consultation)
    session.flush()
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("DELETE FROM consultation_fts WHERE rowid = :id"), {"id": consultation.id})
        session.execute(text("INSERT INTO consultation_fts (rowid, body) VALUES (:id, :body)"),
                        {"id": consultation.id, "body": " ".join(fold(consultation.search_text))})


def matches(session: Session, query: str) -> ColumnElement[bool] | TextClause | None:
    """A WHERE clause on `Consultation` for the keywords in `query` (every word must match), or
    None when the query holds no word (then nothing is filtered)."""
    if session.get_bind().dialect.name == "postgresql":
        # The query goes to PostgreSQL's parser as typed (up to MAX_TERMS words), so it is cut into
        # tokens exactly as the document was: "T-5E4729A9EE" is one hyphenated word in both, where
        # re-joining its \w+ pieces would read "5e4729" as a number and never match.
        words = query.lower().split()[:MAX_TERMS]
        if not any(_RAW_WORD.search(word) for word in words):
            return None
        # The configuration itself removes accents (unaccent) and stems ("formations" → "format").
        config = literal_column("'sam_french'::regconfig")
        ts_query = func.plainto_tsquery(config, bindparam("keywords", " ".join(words)))
        return func.to_tsvector(config, Consultation.search_text).op("@@")(ts_query)
    folded = fold(query)[:MAX_TERMS]
    if not folded:
        return None
    fts = " AND ".join(f'"{w}"*' for w in folded)  # folded words are [0-9a-z]+: nothing to escape
    return text("consultations.id IN (SELECT rowid FROM consultation_fts WHERE consultation_fts MATCH :fts)"
                ).bindparams(fts=fts)
