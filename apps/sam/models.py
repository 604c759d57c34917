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

from shared import N_, BigId, OwnedByStructure, Versioned, make_db, utcnow

db = make_db()

ID = BigId  # the shell's 64-bit keys: an id from a URL never overflows a PostgreSQL lookup

# Labels are French (stored in audit texts); pages show them translated, `_(label)`.
# Units of work of a lot (SPEC §7): hours of training per trainee, per group, or a package.
UNITS = {
    "FORP": N_("Forfait de parcours (FORP)"),
    "HSTA": N_("Heure stagiaire (HSTA)"),
    "HGRO": N_("Heure groupe (HGRO)"),
}

# Stored statuses; `closed` is computed from the deadline (see `Consultation.state`).
DRAFT, PUBLISHED, CANCELLED, AWARDED, UNSUCCESSFUL = "draft", "published", "cancelled", "awarded", "unsuccessful"
CLOSED = "closed"
STATE_LABELS = {
    DRAFT: N_("Brouillon"),
    PUBLISHED: N_("En cours"),
    CLOSED: N_("Clôturée"),
    AWARDED: N_("Attribuée"),
    UNSUCCESSFUL: N_("Infructueuse"),
    CANCELLED: N_("Annulée"),
}
LOT_OPEN = "open"
LOT_LABELS = {LOT_OPEN: N_("En cours"), AWARDED: N_("Attribué"), UNSUCCESSFUL: N_("Infructueux")}


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
    # Issue 13: the actes d'engagement must be signed to submit; the opening of the responses.
    signature_required: Mapped[bool] = mapped_column(default=False)
    opened_at: Mapped[datetime | None] = mapped_column()
    opened_by: Mapped[str] = mapped_column(String(200), default="")
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


# ---------------------------------------------------------------- responses (issue 13)

# A form (candidature, offer) is a draft until "Valider" finds nothing missing (seed 003, FAQ).
FORM_DRAFT, FORM_VALIDATED = "draft", "validated"
FORM_LABELS = {FORM_DRAFT: N_("Brouillon"), FORM_VALIDATED: N_("Validé")}
# A response is being prepared, or submitted (sealed until the deadline, immutable).
RESPONSE_PREPARING, RESPONSE_SUBMITTED = "preparing", "submitted"
RESPONSE_LABELS = {RESPONSE_PREPARING: N_("En préparation"), RESPONSE_SUBMITTED: N_("Déposée")}


class TenderResponse(OwnedByStructure, Versioned, db.Model):
    """A structure's response ("pli") to a consultation: its candidature (the fields below), its
    offers per lot, attachments, generated and signed documents, and its submissions."""

    __tablename__ = "tender_responses"
    __table_args__ = (UniqueConstraint("consultation_id", "structure_siret"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ID, ForeignKey("consultations.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=RESPONSE_PREPARING)
    candidature_status: Mapped[str] = mapped_column(String(16), default=FORM_DRAFT)
    # Candidature, tab "Candidat" (seed 003): identity prefilled from the claims and REPERNET.
    legal_name: Mapped[str] = mapped_column(String(200), default="")
    legal_category: Mapped[str] = mapped_column(String(120), default="")
    ape_code: Mapped[str] = mapped_column(String(6), default="")
    address: Mapped[str] = mapped_column(String(200), default="")
    postal_code: Mapped[str] = mapped_column(String(5), default="")
    city: Mapped[str] = mapped_column(String(100), default="")
    representative: Mapped[str] = mapped_column(String(200), default="")
    representative_title: Mapped[str] = mapped_column(String(100), default="")
    signatory: Mapped[str] = mapped_column(String(200), default="")
    signatory_title: Mapped[str] = mapped_column(String(100), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    phone: Mapped[str] = mapped_column(String(25), default="")
    prefilled_from: Mapped[str] = mapped_column(String(40), default="")  # "repernet" or "claims"
    # "seul" or "groupement"; members: [{"name", "siret", "share"}]; lead: 0 = the candidate, n = member n.
    group_kind: Mapped[str] = mapped_column(String(16), default="seul")
    members: Mapped[str] = mapped_column(Text, default="[]")
    lead: Mapped[int] = mapped_column(Integer, default=0)
    # Delivery sites: [{"name", "address", "postal_code", "city"}]
    sites: Mapped[str] = mapped_column(Text, default="[]")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(200), default="")

    consultation: Mapped[Consultation] = relationship()
    offers: Mapped[list[Offer]] = relationship(back_populates="response", cascade="all, delete-orphan",
                                               order_by="Offer.id")
    attachments: Mapped[list[Attachment]] = relationship(back_populates="response", cascade="all, delete-orphan",
                                                         order_by="Attachment.id")
    documents: Mapped[list[GeneratedDocument]] = relationship(back_populates="response", cascade="all, delete-orphan",
                                                              order_by="GeneratedDocument.id")
    submissions: Mapped[list[Submission]] = relationship(back_populates="response", cascade="all, delete-orphan",
                                                         order_by="Submission.id.desc()")

    @property
    def is_submitted(self) -> bool:
        return self.status == RESPONSE_SUBMITTED

    @property
    def current_submission(self) -> Submission | None:
        """The submission that counts: the last one, unless it was withdrawn."""
        last = self.submissions[0] if self.submissions else None
        return last if last is not None and last.withdrawn_at is None else None


class Offer(Versioned, db.Model):
    """An offer on one lot (seed 003, "Créer une offre"): one per lot and response."""

    __tablename__ = "offers"
    __table_args__ = (UniqueConstraint("response_id", "lot_id"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    response_id: Mapped[int] = mapped_column(ID, ForeignKey("tender_responses.id", ondelete="CASCADE"), index=True)
    lot_id: Mapped[int] = mapped_column(ID, ForeignKey("lots.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=FORM_DRAFT)
    formacode: Mapped[str] = mapped_column(String(5), default="")
    objectives: Mapped[str] = mapped_column(Text, default="")
    prerequisites: Mapped[str] = mapped_column(Text, default="")
    content: Mapped[str] = mapped_column(Text, default="")
    hours: Mapped[int | None] = mapped_column(Integer)  # hours per trainee
    headcount: Mapped[int | None] = mapped_column(Integer)
    unit_price_cents: Mapped[int | None] = mapped_column(BigInteger)  # per unit of work of the lot (FORP/HSTA/HGRO)
    accessibility: Mapped[str] = mapped_column(String(250), default="")
    sites: Mapped[str] = mapped_column(Text, default="[]")  # [{"name", "address", "postal_code", "city"}]
    sessions: Mapped[str] = mapped_column(Text, default="[]")  # [{"site": 1, "start": "2027-01-11", "end": "…"}]
    contact_name: Mapped[str] = mapped_column(String(100), default="")
    contact_phone: Mapped[str] = mapped_column(String(25), default="")
    contact_email: Mapped[str] = mapped_column(String(254), default="")
    # The buyer's analysis after the opening (issue 13 §6).
    admissible: Mapped[bool | None] = mapped_column()
    admissibility_reason: Mapped[str] = mapped_column(Text, default="")
    awarded: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(200), default="")

    response: Mapped[TenderResponse] = relationship(back_populates="offers")
    lot: Mapped[Lot] = relationship()

    @property
    def unit_price(self) -> str:
        """"1 234,50 €" (or "—")."""
        if self.unit_price_cents is None:
            return "—"
        euros, cents = divmod(self.unit_price_cents, 100)
        return f"{euros:,}".replace(",", " ") + f",{cents:02d} €"


class Attachment(db.Model):
    """A file joined to the candidature (offer_id empty) or to an offer, stored under its SHA-256."""

    __tablename__ = "response_attachments"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    response_id: Mapped[int] = mapped_column(ID, ForeignKey("tender_responses.id", ondelete="CASCADE"), index=True)
    offer_id: Mapped[int | None] = mapped_column(ID, ForeignKey("offers.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(120))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_name: Mapped[str] = mapped_column(String(200))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)
    uploaded_by: Mapped[str] = mapped_column(String(200), default="")

    response: Mapped[TenderResponse] = relationship(back_populates="attachments")


class GeneratedDocument(db.Model):
    """A PDF the platform generates from a validated form (DC1, acte d'engagement), regenerated
    when its data change (`source_sha256`), and its PAdES-signed version if signed."""

    __tablename__ = "generated_documents"
    __table_args__ = (UniqueConstraint("response_id", "kind", "offer_id"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    response_id: Mapped[int] = mapped_column(ID, ForeignKey("tender_responses.id", ondelete="CASCADE"), index=True)
    offer_id: Mapped[int | None] = mapped_column(ID, ForeignKey("offers.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "dc1" | "ae"
    filename: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    storage_name: Mapped[str] = mapped_column(String(200))
    source_sha256: Mapped[str] = mapped_column(String(64))
    generated_at: Mapped[datetime] = mapped_column(default=utcnow)
    signed_sha256: Mapped[str] = mapped_column(String(64), default="")
    signed_storage_name: Mapped[str] = mapped_column(String(200), default="")
    signed_at: Mapped[datetime | None] = mapped_column()
    signed_by: Mapped[str] = mapped_column(String(200), default="")

    response: Mapped[TenderResponse] = relationship(back_populates="documents")

    @property
    def is_signed(self) -> bool:
        return bool(self.signed_sha256)


class Submission(db.Model):
    """One submission of a response and its receipt ("accusé de réception"): server time and a
    SHA-256 over the canonical serialisation (`manifest`) of the response and its files' hashes."""

    __tablename__ = "submissions"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    response_id: Mapped[int] = mapped_column(ID, ForeignKey("tender_responses.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    submitted_at: Mapped[datetime] = mapped_column()
    submitted_by: Mapped[str] = mapped_column(String(200))
    submitted_by_email: Mapped[str] = mapped_column(String(254), default="")
    manifest: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(String(64))
    withdrawn_at: Mapped[datetime | None] = mapped_column()
    withdrawn_by: Mapped[str] = mapped_column(String(200), default="")

    response: Mapped[TenderResponse] = relationship(back_populates="submissions")


class SigningKey(db.Model):
    """The demo certification authority (`kind="ca"`) and the certificates it issued to
    signataires (`kind="signer"`, by IdP `sub`). Demo and tests only: in production a signataire
    uploads their own PKCS#12 for the operation and it is never stored."""

    __tablename__ = "signing_keys"
    __table_args__ = (UniqueConstraint("kind", "owner_sub"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    owner_sub: Mapped[str] = mapped_column(String(64), default="")
    owner_name: Mapped[str] = mapped_column(String(200), default="")
    certificate_pem: Mapped[str] = mapped_column(Text)
    key_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CatalogueDispatch(db.Model):
    """A durable queue of awarded offers to send to the Catalogue (SPEC §7): one row per award,
    retried with backoff until the Catalogue answers; `award_id` makes the sending idempotent."""

    __tablename__ = "catalogue_dispatches"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    award_id: Mapped[str] = mapped_column(String(200), unique=True)
    offer_id: Mapped[int] = mapped_column(ID, ForeignKey("offers.id", ondelete="CASCADE"), index=True)
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | sent | rejected
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    remote_id: Mapped[str] = mapped_column(String(64), default="")
    sent_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
