"""Links between usagers and legacy shared accounts of the old portal (SPEC §4.6, §5.2 legacy_ids)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Select, String, UniqueConstraint, or_, select
from sqlalchemy.orm import Mapped, mapped_column

from idp.models.base import Base, utcnow
from idp.models.structures import JoinRequest, JoinStatus

# How a usager linked the legacy account (LegacyLink.method).
PASSWORD, MAIL, REQUEST = "password", "mail", "request"


class LegacyLink(Base):
    """A usager linked to a legacy account id (several usagers may link the same shared account).

    `method`: ``password`` (bound as the entry), ``mail`` (the signed link sent to the entry's mail),
    ``request`` (a join request, counted once its request is accepted).
    """

    __tablename__ = "legacy_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    structure_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("structures.id", ondelete="CASCADE"), index=True)
    legacy_id: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(16))
    join_request_id: Mapped[int | None] = mapped_column(ForeignKey("join_requests.id", ondelete="SET NULL"),
                                                        index=True)
    linked_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("user_id", "legacy_id"),
        # legacy_ids(user, structure): one indexed query per token (SPEC §5.2).
        Index("ix_legacy_links_user_structure", "user_id", "structure_id"),
    )


def counted_links(user_id: Any) -> Select[tuple[uuid.UUID, str]]:
    """(structure_id, legacy_id) of a usager's links that count in `legacy_ids` (SPEC §5.2): a link
    made through a join request counts once that request was accepted."""
    return (select(LegacyLink.structure_id, LegacyLink.legacy_id)
            .outerjoin(JoinRequest, JoinRequest.id == LegacyLink.join_request_id)
            .where(LegacyLink.user_id == user_id,
                   or_(LegacyLink.method != REQUEST, JoinRequest.status == JoinStatus.ACCEPTED)))
