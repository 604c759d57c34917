"""The members page of "Gérer ma structure": search, sort, one page (SPEC §4.3).

Three queries per page whatever the structure's size: the count, the page (memberships joined to
their users through the ``(structure_id, status, role)`` index and the users' primary key), and the
page's grants in one ``IN`` query, never one query per member.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from idp.core.paging import Page, paginate
from idp.models import AccessGrant, Membership, User

SORTS = ("name", "email", "last_login", "role")
PER_PAGE = 25
MAX_QUERY = 100


@dataclass(frozen=True)
class MemberRow:
    membership: Membership
    user: User
    grants: list[AccessGrant]


def members_query(structure_id: uuid.UUID, text: str = "", sort: str = "name") -> Select[tuple[Membership, User]]:
    """Memberships of one structure with their users, filtered on name or e-mail, in a stable order.

    Search and the name order use `Membership.sort_key` (names and login e-mail, lower-cased) and
    its ``(structure_id, sort_key, id)`` index: the cost follows the structure's size, never the
    number of accounts on the platform.

    :param text: words that must each appear in the name or the login e-mail (case-insensitive).
    :param sort: one of SORTS; anything else sorts by name.
    """
    query = (select(Membership, User).join(User, Membership.user_id == User.id)
             .where(Membership.structure_id == structure_id))
    for word in text.lower().split()[:5]:
        query = query.where(Membership.sort_key.contains(word, autoescape=True))
    if sort == "email":
        order = (User.email,)
    elif sort == "last_login":
        # Most recent first, never-logged-in last (NULLS LAST is not portable: an explicit key).
        order = (User.last_login_at.is_(None), User.last_login_at.desc(), Membership.sort_key)
    elif sort == "role":
        order = (Membership.role, Membership.sort_key)  # "admin" sorts before "member"
    else:
        order = (Membership.sort_key,)
    return query.order_by(*order, Membership.id)


def _count_query(structure_id: uuid.UUID, text: str) -> Select[tuple[int]]:
    """The count on memberships alone (an index-only scan without a search)."""
    query = select(func.count()).select_from(Membership).where(Membership.structure_id == structure_id)
    for word in text.lower().split()[:5]:
        query = query.where(Membership.sort_key.contains(word, autoescape=True))
    return query


def members_page(session: Session, structure_id: uuid.UUID, *, text: str = "", sort: str = "name",
                 number: int = 1, per_page: int = PER_PAGE) -> Page[MemberRow]:
    """One page of the members list, each row with its grants (roles eagerly joined)."""
    text = text[:MAX_QUERY]
    page = paginate(session, members_query(structure_id, text, sort), number, per_page, scalars=False,
                    count=_count_query(structure_id, text))
    ids = [membership.id for membership, _ in page.items]
    grants: dict[int, list[AccessGrant]] = defaultdict(list)
    if ids:
        for grant in session.scalars(select(AccessGrant).where(AccessGrant.membership_id.in_(ids))
                                     .order_by(AccessGrant.role_id)):
            grants[grant.membership_id].append(grant)
    rows = [MemberRow(membership, user, grants[membership.id]) for membership, user in page.items]
    return Page(rows, page.number, page.per_page, page.total)
