"""Pages of a query: one COUNT and one LIMIT/OFFSET query, whatever the table size."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from shared.bounds import bounded_int

T = TypeVar("T")

MAX_PER_PAGE = 200
MAX_PAGE_NUMBER = 1_000_000


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of results, read by the pagination macros (the attribute names of
    Flask-SQLAlchemy's `Pagination`, so `db.paginate()` pages and these read the same)."""

    items: list[T]
    page: int  # 1-based
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def paginate(session: Session, query: Select[Any], number: int, per_page: int = 25, *, scalars: bool = True,
             count: Select[Any] | None = None) -> Page[Any]:
    """Page `number` (clamped to 1..MAX) of an ordered query.

    :param scalars: yield the first column's objects (models) rather than rows.
    :param count: a cheaper statement giving the same total (default: COUNT over the query).
    """
    per_page = min(max(per_page, 1), MAX_PER_PAGE)
    number = max(number, 1)
    if count is None:
        count = select(func.count()).select_from(query.order_by(None).subquery())
    total = session.scalar(count) or 0
    result = session.execute(query.limit(per_page).offset((number - 1) * per_page))
    items = list(result.scalars() if scalars else result)
    return Page(items, number, per_page, total)


def page_number(value: str | None) -> int:
    """A page number from a query string: anything odd is page 1 (never a 500)."""
    number = bounded_int(value or 1, 1, MAX_PAGE_NUMBER)
    return number if number is not None else 1
