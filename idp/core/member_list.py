"""The members page of "Gérer ma structure": search, sort, one page (SPEC §4.3).

Three queries per page whatever the structure's size: the count, the page (memberships joined to
their users through the ``(structure_id, status, role)`` index and the users' primary key), and the
page's grants in one ``IN`` query, never one query per member.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from idp.core.paging import MAX_PER_PAGE, Page
from idp.models import AccessGrant, Membership, User

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


def _order(sort: str) -> tuple[tuple[Any, ...], bool]:
    """The ORDER BY of a sort, and whether it needs the users' columns."""
    if sort == "email":
        return (User.email, Membership.id), True
    if sort == "last_login":  # most recent first, never-logged-in last
        return (Membership.last_login_at.desc().nulls_last(), Membership.sort_key, Membership.id), False
    if sort == "role":
        return (Membership.role, Membership.sort_key, Membership.id), False  # "admin" before "member"
    return (Membership.sort_key, Membership.id), False


def members_page(session: Session, structure_id: uuid.UUID, *, text: str = "", sort: str = "name",
                 number: int = 1, per_page: int = PER_PAGE) -> Page[MemberRow]:
    """One page of the members list, each row with its grants: three statements.

    Search, the name, last-login and role orders and the count run on memberships alone (`Membership.sort_key`,
    the ``(structure_id, sort_key, id)`` index) and only the page's 25 users are read, so the cost
    follows the structure's size, never the number of accounts on the platform (bench/SCALE.md).
    The e-mail order needs the users' columns, for this structure's members only.

    :param text: words that must each appear in the name or the login e-mail (case-insensitive).
    :param sort: one of SORTS; anything else sorts by name.
    """
    per_page = min(max(per_page, 1), MAX_PER_PAGE)
    number = max(number, 1)
    matching = _matching(structure_id, text[:MAX_QUERY])
    total = session.scalar(select(func.count()).select_from(matching.subquery())) or 0
    order, needs_users = _order(sort)
    rows = select(Membership, User).join(User, Membership.user_id == User.id)
    offset = (number - 1) * per_page
    if needs_users:
        rows = rows.where(Membership.id.in_(matching)).order_by(*order).limit(per_page).offset(offset)
    else:
        page_ids = matching.order_by(*order).limit(per_page).offset(offset)
        rows = rows.where(Membership.id.in_(page_ids)).order_by(*order)
    items = session.execute(rows).all()
    ids = [membership.id for membership, _ in items]
    grants: dict[int, list[AccessGrant]] = defaultdict(list)
    if ids:
        for grant in session.scalars(select(AccessGrant).where(AccessGrant.membership_id.in_(ids))
                                     .order_by(AccessGrant.role_id)):
            grants[grant.membership_id].append(grant)
    return Page([MemberRow(membership, user, grants[membership.id]) for membership, user in items],
                number, per_page, total)
