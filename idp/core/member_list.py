"""The members page of "Gérer ma structure": search, sort, one page (SPEC §4.3).

Three queries per page whatever the structure's size: the count, the page (the page's membership
ids from one index of the structure's memberships, then those 25 memberships and their users by
primary key), and the page's grants in one ``IN`` query, never one query per member.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from idp.models import AccessGrant, Membership, User
from shared.paging import MAX_PER_PAGE, Page

SORTS = ("name", "email", "last_login", "role")
PER_PAGE = 25
MAX_QUERY = 100


@dataclass(frozen=True)
class MemberRow:
    membership: Membership
    user: User
    grants: list[AccessGrant]


def _matching(structure_id: uuid.UUID, text: str) -> Select[tuple[int]]:
    """Ids of the structure's memberships whose names or login e-mail contain every word."""
    query = select(Membership.id).where(Membership.structure_id == structure_id)
    for word in text.lower().split()[:5]:
        query = query.where(Membership.sort_key.contains(word, autoescape=True))
    return query


def _order(sort: str) -> tuple[Any, ...]:
    """The ORDER BY of a sort, on memberships' columns only (their copies of the account)."""
    if sort == "email":
        return (Membership.user_email, Membership.id)
    if sort == "last_login":  # most recent first, never-logged-in last
        return (Membership.last_login_at.desc().nulls_last(), Membership.sort_key, Membership.id)
    if sort == "role":
        return (Membership.role, Membership.sort_key, Membership.id)  # "admin" before "member"
    return (Membership.sort_key, Membership.id)


def members_page(session: Session, structure_id: uuid.UUID, *, text: str = "", sort: str = "name",
                 number: int = 1, per_page: int = PER_PAGE) -> Page[MemberRow]:
    """One page of the members list, each row with its grants: three statements.

    Search, every order and the count run on memberships alone (their copies of the account:
    `sort_key`, `user_email`, `last_login_at`, each with a ``(structure_id, …)`` index) and only the
    page's 25 users are read, so the cost follows the structure's size, never the number of
    accounts on the platform (bench/SCALE.md).

    :param text: words that must each appear in the name or the login e-mail (case-insensitive).
    :param sort: one of SORTS; anything else sorts by name.
    """
    per_page = min(max(per_page, 1), MAX_PER_PAGE)
    number = max(number, 1)
    matching = _matching(structure_id, text[:MAX_QUERY])
    total = session.scalar(select(func.count()).select_from(matching.subquery())) or 0
    order = _order(sort)
    page_ids = matching.order_by(*order).limit(per_page).offset((number - 1) * per_page)
    rows = (select(Membership, User).join(User, Membership.user_id == User.id)
            .where(Membership.id.in_(page_ids)).order_by(*order))
    items = session.execute(rows).all()
    ids = [membership.id for membership, _ in items]
    grants: dict[int, list[AccessGrant]] = defaultdict(list)
    if ids:
        for grant in session.scalars(select(AccessGrant).where(AccessGrant.membership_id.in_(ids))
                                     .order_by(AccessGrant.role_id)):
            grants[grant.membership_id].append(grant)
    return Page([MemberRow(membership, user, grants[membership.id]) for membership, user in items],
                number, per_page, total)
