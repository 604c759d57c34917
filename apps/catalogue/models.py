"""The Catalogue's own tables (its own database: it never reads the IdP's).

- `Organisation`: the organisation record of a structure (seed 004, "fiche organisme"), keyed by
  its SIRET as the IdP names it; `Contact` ("interlocuteurs"), `ChangeRequest` (SIRET / NDA and
  other read-only data: a request a moderator handles), `RecordEvent` (the record's history).
- `Offer`: one LHEO *formation* with its *actions* and *sessions*, edited as one document
  (`document`, JSON); every change is an `OfferVersion` a moderator publishes or returns.
- `PublicAction` / `PublicSession`: what the public search reads, rebuilt from the published
  version only (a pending change is never public).
- `Offer.source_client` + `source_ref`: SAM's award id (idempotency of `POST /api/v1/actions`).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared import Versioned, make_db, utcnow

db = make_db()


class Organisation(Versioned, db.Model):
    """An organisation record ("fiche organisme"): identification, administrative information,
    contacts, training potential, yearly check."""

    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    siret: Mapped[str] = mapped_column(String(14), unique=True)
    structure_id: Mapped[str] = mapped_column(String(64), default="")  # the IdP's id, once known
    parent_siret: Mapped[str] = mapped_column(String(14), default="", index=True)  # its siège (IdP)
    links_checked_at: Mapped[datetime | None] = mapped_column()
    nda: Mapped[str] = mapped_column(String(11), default="")  # numéro de déclaration d'activité
    # Identification (editable by its editors)
    name: Mapped[str] = mapped_column(String(250))
    sigle: Mapped[str] = mapped_column(String(60), default="")
    address: Mapped[str] = mapped_column(String(200), default="")
    postal_code: Mapped[str] = mapped_column(String(5), default="")
    city: Mapped[str] = mapped_column(String(100), default="")
    phone: Mapped[str] = mapped_column(String(25), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    website: Mapped[str] = mapped_column(String(200), default="")
    # Infos OF
    potential: Mapped[str] = mapped_column(Text, default="")
    certification_keys: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [{"key", "comment"}]
    # Historique
    checked_at: Mapped[datetime | None] = mapped_column()
    checked_by: Mapped[str] = mapped_column(String(200), default="")
    reminded_at: Mapped[datetime | None] = mapped_column()
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    contacts: Mapped[list[Contact]] = relationship(back_populates="organisation", cascade="all, delete-orphan",
                                                   order_by="Contact.id")
    offers: Mapped[list[Offer]] = relationship(back_populates="organisation")


class Contact(db.Model):
    """An "interlocuteur" of an organisation (maintained by the Carif-Oref; editors ask for changes)."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    civility: Mapped[str] = mapped_column(String(10), default="")
    last_name: Mapped[str] = mapped_column(String(100))
    first_name: Mapped[str] = mapped_column(String(100), default="")
    function: Mapped[str] = mapped_column(String(100), default="")
    phone: Mapped[str] = mapped_column(String(25), default="")
    email: Mapped[str] = mapped_column(String(254), default="")

    organisation: Mapped[Organisation] = relationship(back_populates="contacts")

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.civility, self.first_name, self.last_name) if p)


class ChangeRequest(db.Model):
    """A "demande particulière": a change of read-only data (SIRET, NDA, attachments, contacts)."""

    __tablename__ = "change_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    topic: Mapped[str] = mapped_column(String(30))  # identification, rattachement, interlocuteurs
    text: Mapped[str] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_email: Mapped[str] = mapped_column(String(254), default="")
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(10), default="pending", index=True)  # pending / done / refused
    decided_by: Mapped[str] = mapped_column(String(200), default="")
    decided_at: Mapped[datetime | None] = mapped_column()
    answer: Mapped[str] = mapped_column(Text, default="")

    organisation: Mapped[Organisation] = relationship()


class RecordEvent(db.Model):
    """One line of an organisation record's history (who, when, what changed)."""

    __tablename__ = "record_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(String(200))
    changes: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [[label, before, after]]


class Offer(Versioned, db.Model):
    """A training offer: one LHEO formation with its actions and sessions (the editable document)."""

    __tablename__ = "offers"
    __table_args__ = (UniqueConstraint("source_client", "source_ref"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    title: Mapped[str] = mapped_column(String(255))  # the document's title, for lists
    pending_version_id: Mapped[int | None] = mapped_column(Integer)
    published_version_id: Mapped[int | None] = mapped_column(Integer)
    returned: Mapped[bool] = mapped_column(Boolean, default=False)  # the last decision was a return
    source_client: Mapped[str | None] = mapped_column(String(100))  # the API client that sent it (SAM)
    source_ref: Mapped[str | None] = mapped_column(String(200))  # its award id
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    organisation: Mapped[Organisation] = relationship(back_populates="offers")
    versions: Mapped[list[OfferVersion]] = relationship(back_populates="offer", order_by="OfferVersion.number",
                                                        cascade="all, delete-orphan")

    @property
    def status(self) -> str:
        """pending (a change awaits the Carif-Oref), returned, published, or draft (never sent)."""
        if self.pending_version_id:
            return "pending"
        if self.returned:
            return "returned"
        return "published" if self.published_version_id else "draft"


class OfferVersion(db.Model):
    """One version of an offer: the document as submitted, and the moderator's decision."""

    __tablename__ = "offer_versions"
    __table_args__ = (UniqueConstraint("offer_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("offers.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    submitted_by: Mapped[str] = mapped_column(String(200))
    submitted_email: Mapped[str] = mapped_column(String(254), default="")
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    decision: Mapped[str] = mapped_column(String(10), default="pending", index=True)  # pending/published/returned/replaced
    decided_by: Mapped[str] = mapped_column(String(200), default="")
    decided_at: Mapped[datetime | None] = mapped_column()
    comment: Mapped[str] = mapped_column(Text, default="")

    offer: Mapped[Offer] = relationship(back_populates="versions")


class PublicAction(db.Model):
    """A published action, as the public search and the offer page read it."""

    __tablename__ = "public_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("offers.id", ondelete="CASCADE"), index=True)
    action_key: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(255))
    organisation_name: Mapped[str] = mapped_column(String(250))
    summary: Mapped[str] = mapped_column(Text, default="")
    certifying: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    entry_mode: Mapped[str] = mapped_column(String(12), default="fixes", index=True)
    city: Mapped[str] = mapped_column(String(100), default="")
    city_folded: Mapped[str] = mapped_column(String(100), default="", index=True)
    postal_code: Mapped[str] = mapped_column(String(5), default="", index=True)
    department: Mapped[str] = mapped_column(String(3), default="", index=True)
    search_text: Mapped[str] = mapped_column(Text, default="")  # folded words (text.index_text)
    # The start of its next session (one ending today or later) as of `SearchDay.day`; None: not
    # current. Kept here so the search sorts and counts on one indexed column (issue 14 §5).
    next_start: Mapped[date | None] = mapped_column(Date, index=True)

    sessions: Mapped[list[PublicSession]] = relationship(back_populates="action", cascade="all, delete-orphan",
                                                         order_by="PublicSession.start")


class PublicSession(db.Model):
    """A published session's dates (the search's "current" and its sort by next start)."""

    __tablename__ = "public_sessions"
    __table_args__ = (Index("ix_public_sessions_action_end_start", "action_id", "end", "start"),
                      Index("ix_public_sessions_end_start", "end", "start"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    action_id: Mapped[int] = mapped_column(ForeignKey("public_actions.id", ondelete="CASCADE"))
    start: Mapped[date] = mapped_column(Date)
    end: Mapped[date] = mapped_column(Date)

    action: Mapped[PublicAction] = relationship(back_populates="sessions")


class SearchDay(db.Model):
    """The day `PublicAction.next_start` was computed for (recomputed on the first search of a day)."""

    __tablename__ = "search_day"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
