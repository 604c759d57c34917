"""SAM's own tables (its own database: it never reads the IdP's).

A consultation belongs to the buyer structure that created it (`OwnedByStructure`: the IdP's id,
SIRET and name of the structure, as the claims name it). Its life cycle (SPEC §7, issue 12):
`draft → published → closed → awarded / unsuccessful`, or `cancelled`. "Closed" is never stored:
a published consultation whose response deadline has passed is closed for every reader at once
(`Consultation.state(now)`, `closed_clause(now)`), so no scheduler is needed for correctness.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared import OwnedByStructure, Versioned, make_db, utcnow

db = make_db()

# 64-bit ids (the shell's `parse_id` accepts any of them: PostgreSQL must not overflow on a lookup);
# SQLite keeps its INTEGER PRIMARY KEY, which is 64-bit already.
ID = BigInteger().with_variant(Integer(), "sqlite")

# Units of work of a lot (SPEC §7): hours of training per trainee, per group, or a package.
UNITS = {
    "FORP": "Forfait de parcours (FORP)",
    "HSTA": "Heure stagiaire (HSTA)",
    "HGRO": "Heure groupe (HGRO)",
}

# Stored statuses; `closed` is computed from the deadline (see `Consultation.state`).
DRAFT, PUBLISHED, CANCELLED, AWARDED, UNSUCCESSFUL = "draft", "published", "cancelled", "awarded", "unsuccessful"
CLOSED = "closed"
STATE_LABELS = {
    DRAFT: "Brouillon",
    PUBLISHED: "En cours",
    CLOSED: "Clôturée",
    AWARDED: "Attribuée",
    UNSUCCESSFUL: "Infructueuse",
    CANCELLED: "Annulée",
}
LOT_OPEN = "open"
LOT_LABELS = {LOT_OPEN: "En cours", AWARDED: "Attribué", UNSUCCESSFUL: "Infructueux"}


class Consultation(OwnedByStructure, Versioned, db.Model):
    """A call for tenders published by a Région buyer structure."""

    __tablename__ = "consultations"
    __table_args__ = (Index("ix_consultations_listing", "status", "response_deadline"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    reference: Mapped[str] = mapped_column(String(40), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    device: Mapped[str] = mapped_column(String(120), index=True)  # "dispositif"
    status: Mapped[str] = mapped_column(String(16), default=DRAFT)
    question_deadline: Mapped[datetime] = mapped_column()
    response_deadline: Mapped[datetime] = mapped_column()
    published_at: Mapped[datetime | None] = mapped_column(index=True)
    cancelled_at: Mapped[datetime | None] = mapped_column()
    cancel_reason: Mapped[str] = mapped_column(Text, default="")
    # What the keyword search reads (reference, title, description, lot titles): kept by `search.reindex`.
    search_text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    lots: Mapped[list[Lot]] = relationship(back_populates="consultation", cascade="all, delete-orphan",
                                           order_by="Lot.number")
    amendments: Mapped[list[Amendment]] = relationship(cascade="all, delete-orphan", order_by="Amendment.id")
    documents: Mapped[list[DceDocument]] = relationship(cascade="all, delete-orphan",
                                                        order_by="DceDocument.number.desc()")
    questions: Mapped[list[Question]] = relationship(cascade="all, delete-orphan", order_by="Question.id")
    events: Mapped[list[AuditEvent]] = relationship(cascade="all, delete-orphan", order_by="AuditEvent.id.desc()")

    def state(self, now: datetime) -> str:
        """The state every reader sees at `now`: a published consultation past its deadline is closed."""
        if self.status == PUBLISHED and self.response_deadline <= now:
            return CLOSED
        return self.status

    def state_label(self, now: datetime) -> str:
        return STATE_LABELS[self.state(now)]

    @property
    def is_public(self) -> bool:
        """Published once (a cancelled draft stays private; a cancelled published one stays listed)."""
        return self.published_at is not None

    def accepts_questions(self, now: datetime) -> bool:
        return self.state(now) == PUBLISHED and now < self.question_deadline

    @property
    def current_document(self) -> DceDocument | None:
        return self.documents[0] if self.documents else None

    @property
    def answered_questions(self) -> list[Question]:
        return [q for q in self.questions if q.answered_at is not None]


class Lot(db.Model):
    """One lot of a consultation: its own unit of work, place and estimated volume."""

    __tablename__ = "lots"
    __table_args__ = (UniqueConstraint("consultation_id", "number"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ID, ForeignKey("consultations.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    unit: Mapped[str] = mapped_column(String(4))
    place: Mapped[str] = mapped_column(String(120), default="")
    volume: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default=LOT_OPEN)
    awardee: Mapped[str] = mapped_column(String(200), default="")
    decided_at: Mapped[datetime | None] = mapped_column()

    consultation: Mapped[Consultation] = relationship(back_populates="lots")

    @property
    def unit_label(self) -> str:
        return UNITS.get(self.unit, self.unit)

    @property
    def status_label(self) -> str:
        return LOT_LABELS.get(self.status, self.status)


class Amendment(db.Model):
    """An "avis rectificatif": published after the consultation, kept in its visible history."""

    __tablename__ = "amendments"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ID, ForeignKey("consultations.id", ondelete="CASCADE"), index=True)
    published_at: Mapped[datetime] = mapped_column(default=utcnow)
    reason: Mapped[str] = mapped_column(Text)
    changes: Mapped[str] = mapped_column(Text, default="")
    previous_deadline: Mapped[datetime] = mapped_column()
    new_deadline: Mapped[datetime] = mapped_column()
    actor: Mapped[str] = mapped_column(String(200), default="")


class DceDocument(db.Model):
    """One version of the tender documents (DCE): every version stays downloadable with its hash."""

    __tablename__ = "dce_documents"
    __table_args__ = (UniqueConstraint("consultation_id", "number"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ID, ForeignKey("consultations.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)  # version 1, 2, …
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(120))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_name: Mapped[str] = mapped_column(String(200))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)
    uploaded_by: Mapped[str] = mapped_column(String(200), default="")


class Withdrawal(db.Model):
    """A "retrait" of the DCE by a logged-in person for a structure: registers the structure for
    change alerts (seed 003, étape 3: the downloaders receive the platform's alert mails)."""

    __tablename__ = "withdrawals"
    __table_args__ = (UniqueConstraint("consultation_id", "structure_siret", "person_sub"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ID, ForeignKey("consultations.id", ondelete="CASCADE"), index=True)
    structure_id: Mapped[str] = mapped_column(String(64), default="")
    structure_siret: Mapped[str] = mapped_column(String(14))
    structure_name: Mapped[str] = mapped_column(String(200), default="")
    person_sub: Mapped[str] = mapped_column(String(64))
    person_email: Mapped[str] = mapped_column(String(254))
    person_name: Mapped[str] = mapped_column(String(200), default="")
    first_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_at: Mapped[datetime] = mapped_column(default=utcnow)


class Question(db.Model):
    """A question asked online; its answer is published to everyone without the asker's identity."""

    __tablename__ = "questions"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ID, ForeignKey("consultations.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    asked_at: Mapped[datetime] = mapped_column(default=utcnow)
    asker_sub: Mapped[str] = mapped_column(String(64))
    asker_email: Mapped[str] = mapped_column(String(254), default="")
    structure_siret: Mapped[str] = mapped_column(String(14), default="")
    structure_name: Mapped[str] = mapped_column(String(200), default="")
    answer: Mapped[str] = mapped_column(Text, default="")
    answered_at: Mapped[datetime | None] = mapped_column()
    answered_by: Mapped[str] = mapped_column(String(200), default="")


class AuditEvent(db.Model):
    """Who did what to a consultation, and when (shown to its buyers)."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ID, ForeignKey("consultations.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    actor_sub: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(60))
    detail: Mapped[str] = mapped_column(Text, default="")
