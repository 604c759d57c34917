"""The public search (issue 14 §5): published actions only, by keyword, place, dates, certifying
and entry mode; an action is *current* when it has a current or future session; results sorted
by next session start.

Keywords: the indexed text and the query are folded by `text.index_text` (accents, case,
plurals) for both engines — SQLite's FTS5 table `public_action_fts` in the embedded mode,
PostgreSQL's `french` text search (a stored `to_tsvector('french', search_text)`, GIN-indexed) in
production — behind one function, `keyword_filter`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    bindparam,
    delete,
    func,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from apps.catalogue.models import Offer, OfferVersion, PublicAction, PublicSession, SearchDay
from apps.catalogue.text import fold, fts_query, index_text
from shared import Page, ascii_digits

FTS_TABLE = "public_action_fts"
# PostgreSQL only: the stored to_tsvector('french', search_text) the migration adds, GIN-indexed.
SEARCH_VECTOR = literal_column("public_actions.search_vector")
FTS_DELETE = text("DELETE FROM public_action_fts WHERE rowid = :id")
FTS_INSERT = text("INSERT INTO public_action_fts (rowid, body) VALUES (:id, :body)")


def department(postal_code: str) -> str:
    """The département of a French postal code: 2 digits, 3 overseas (97x), 2A / 2B in Corsica."""
    code = postal_code.strip()
    if not ascii_digits(code, 5):
        return ""
    if code.startswith("97") or code.startswith("98"):
        return code[:3]
    if code.startswith("20"):
        return "2A" if code < "20200" else "2B"
    return code[:2]


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def next_start(sessions: list[dict[str, Any]], today: date) -> date | None:
    """The start of the next session still running or to come (None: the action is not current)."""
    starts = [date.fromisoformat(s["start"]) for s in sessions if date.fromisoformat(s["end"]) >= today]
    return min(starts) if starts else None


def refresh_current(session: Session, today: date) -> None:
    """Recompute the actions' next session when the day changed since the last computation (one
    UPDATE a day, on the first search of the day; the same result if two searches race).

    Only actions whose next session had already started can change: for the others every session
    still counted starts after today, so none of them has ended since.
    """
    state = session.get(SearchDay, 1)
    if state is not None and state.day == today:
        return
    upcoming = (select(func.min(PublicSession.start)).where(PublicSession.action_id == PublicAction.id,
                                                            PublicSession.end >= today).scalar_subquery())
    statement = update(PublicAction).values(next_start=upcoming)
    if state is not None and state.day < today:  # (a clock set back recomputes everything)
        statement = statement.where(PublicAction.next_start < today)
    session.execute(statement)
    if state is None:
        session.add(SearchDay(id=1, day=today))
    else:
        state.day = today
    session.flush()


def reindex_offer(session: Session, offer: Offer, today: date) -> None:
    """Rebuild the public rows of an offer from its published version (none: it leaves the search)."""
    old_ids = list(session.scalars(select(PublicAction.id).where(PublicAction.offer_id == offer.id)))
    if old_ids:
        if _dialect(session) == "sqlite":
            session.execute(FTS_DELETE, [{"id": i} for i in old_ids])
        session.execute(delete(PublicSession).where(PublicSession.action_id.in_(old_ids)))
        session.execute(delete(PublicAction).where(PublicAction.id.in_(old_ids)))
    version = session.get(OfferVersion, offer.published_version_id) if offer.published_version_id else None
    if version is None:
        session.flush()
        return
    doc, organisation = version.data, offer.organisation
    f = doc["formation"]
    for action in doc["actions"]:
        row = PublicAction(
            offer_id=offer.id, action_key=action["key"], title=f["title"], organisation_name=organisation.name,
            summary=f["objectives"][:300], certifying=bool(f.get("certifying")), entry_mode=action["entry_mode"],
            city=action["city"], city_folded=fold(action["city"]).strip(), postal_code=action["postal_code"],
            department=department(action["postal_code"]),
            search_text=index_text(f["title"], f["objectives"], f["content"], f.get("keywords"),
                                   (f.get("certification") or {}).get("label"), organisation.name, organisation.sigle),
            next_start=next_start(action["sessions"], today),
        )
        row.sessions = [PublicSession(start=date.fromisoformat(s["start"]), end=date.fromisoformat(s["end"]))
                        for s in action["sessions"]]
        session.add(row)
        session.flush()
        if _dialect(session) == "sqlite":
            session.execute(FTS_INSERT, {"id": row.id, "body": row.search_text})
    session.flush()


def reindex_organisation(session: Session, organisation_id: int, today: date) -> None:
    """An organisation's name is searched too: its published offers follow a rename."""
    for offer in session.scalars(select(Offer).where(Offer.organisation_id == organisation_id,
                                                     Offer.published_version_id.is_not(None))):
        reindex_offer(session, offer, today)


def keyword_filter(session: Session, query: str) -> ColumnElement[bool] | None:
    """The one keyword predicate, per engine (None: no usable word in the query)."""
    folded = index_text(query)
    if not folded:
        return None
    if _dialect(session) == "postgresql":
        # Every word as a prefix of a French stem, all required (as FTS5's "word"* below); the
        # words are folded [a-z0-9]+ only, so nothing in them is tsquery syntax.
        terms = " & ".join(f"{w}:*" for w in list(dict.fromkeys(folded.split()))[:8])
        return SEARCH_VECTOR.op("@@")(func.to_tsquery(text("'french'::regconfig"), terms))
    match = fts_query(query)
    ids = select(text("rowid")).select_from(text(FTS_TABLE)).where(
        text(f"{FTS_TABLE} MATCH :fts").bindparams(bindparam("fts", match)))
    return PublicAction.id.in_(ids)


def place_filter(value: str) -> ColumnElement[bool] | None:
    """A city, a postal code (5 digits) or a département (2 digits, 2A/2B, 97x)."""
    place = value.strip().upper()
    if not place:
        return None
    if ascii_digits(place, 5):
        return PublicAction.postal_code == place
    if place in ("2A", "2B") or ascii_digits(place, 2) or (ascii_digits(place, 3) and place.startswith("97")):
        return PublicAction.department == place
    return PublicAction.city_folded == fold(value).strip()


@dataclass
class Criteria:
    keywords: str = ""
    place: str = ""
    date_from: date | None = None
    date_to: date | None = None
    certifying: bool | None = None
    entry_mode: str = ""
    include_past: bool = False


@dataclass
class Hit:
    action: PublicAction
    next_start: date | None
    current: bool


def _base(session: Session, criteria: Criteria, today: date) -> Select[Any]:
    query = select(PublicAction)
    if not criteria.include_past:
        query = query.where(PublicAction.next_start.is_not(None))
    if criteria.date_from or criteria.date_to:
        window = [PublicSession.action_id == PublicAction.id]
        if criteria.date_from:
            window.append(PublicSession.end >= criteria.date_from)
        if criteria.date_to:
            window.append(PublicSession.start <= criteria.date_to)
        if not criteria.include_past:
            window.append(PublicSession.end >= today)
        query = query.where(select(PublicSession.id).where(*window).exists())
    filters = [keyword_filter(session, criteria.keywords) if criteria.keywords else None, place_filter(criteria.place)]
    if criteria.certifying is not None:
        filters.append(PublicAction.certifying.is_(criteria.certifying))
    if criteria.entry_mode:
        filters.append(PublicAction.entry_mode == criteria.entry_mode)
    for condition in filters:
        if condition is not None:
            query = query.where(condition)
    return query


def search_actions(session: Session, criteria: Criteria, today: date, page: int = 1, per_page: int = 20) -> Page:
    """Published actions matching `criteria`, current ones by next session start, then the others."""
    if criteria.keywords and keyword_filter(session, criteria.keywords) is None:
        return Page([], 1, per_page, 0)
    refresh_current(session, today)
    query = _base(session, criteria, today)
    total = session.scalar(query.with_only_columns(func.count(PublicAction.id)).order_by(None)) or 0
    page = max(1, min(page, max(1, -(-total // per_page))))
    # Current actions only (the default): the next_start index gives the order, nothing to sort.
    order = ([PublicAction.next_start.is_(None)] if criteria.include_past else []) + [PublicAction.next_start,
                                                                                     PublicAction.id]
    rows = session.scalars(query.order_by(*order).limit(per_page).offset((page - 1) * per_page)).all()
    return Page([Hit(a, a.next_start, a.next_start is not None) for a in rows], page, per_page, total)
