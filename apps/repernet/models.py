"""REPERNET's own tables (its own database: it never reads the IdP's)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared import BigId, Versioned, make_db, utcnow

db = make_db()


class StructureRecord(Versioned, db.Model):
    """A structure's registration: legal identity, address, legal representative, account admin."""

    __tablename__ = "structure_records"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    siret: Mapped[str] = mapped_column(String(14), unique=True)
    siren: Mapped[str] = mapped_column(String(9), index=True)
    is_siege: Mapped[bool] = mapped_column(default=True)
    parent_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("structure_records.id"))
    domain: Mapped[str] = mapped_column(String(120), default="")
    subdomain: Mapped[str] = mapped_column(String(120), default="")
    action: Mapped[str] = mapped_column(String(200), default="")
    raison_sociale: Mapped[str] = mapped_column(String(200))
    sigle: Mapped[str] = mapped_column(String(60), default="")
    commercial_name: Mapped[str] = mapped_column(String(200), default="")
    legal_category: Mapped[str] = mapped_column(String(4))
    ape_code: Mapped[str] = mapped_column(String(6))
    address: Mapped[str] = mapped_column(String(200))
    address_complement: Mapped[str] = mapped_column(String(200), default="")
    postal_code: Mapped[str] = mapped_column(String(5))
    city: Mapped[str] = mapped_column(String(100))
    rep_first_name: Mapped[str] = mapped_column(String(100))
    rep_last_name: Mapped[str] = mapped_column(String(100))
    rep_title: Mapped[str] = mapped_column(String(100))
    rep_email: Mapped[str] = mapped_column(String(254))
    rep_phone: Mapped[str] = mapped_column(String(20), default="")
    admin_first_name: Mapped[str] = mapped_column(String(100), default="")
    admin_last_name: Mapped[str] = mapped_column(String(100), default="")
    admin_email: Mapped[str] = mapped_column(String(254), default="")
    idp_structure_id: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(64), default="")  # the IdP `sub` of the registrant
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    reviewed_at: Mapped[datetime | None] = mapped_column()
    reviewed_by: Mapped[str] = mapped_column(String(200), default="")

    parent: Mapped[StructureRecord | None] = relationship(remote_side=[id])
    documents: Mapped[list[LegalDocument]] = relationship(back_populates="record", cascade="all, delete-orphan")

    @property
    def name(self) -> str:
        return self.raison_sociale


class LegalDocument(db.Model):
    """The current file of one required document of a structure (a replacement overwrites it)."""

    __tablename__ = "legal_documents"
    __table_args__ = (UniqueConstraint("record_id", "kind"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    record_id: Mapped[int] = mapped_column(BigId, ForeignKey("structure_records.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(60))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_name: Mapped[str] = mapped_column(String(200))
    issued_on: Mapped[date | None] = mapped_column()
    expires_on: Mapped[date | None] = mapped_column()
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)
    uploaded_by: Mapped[str] = mapped_column(String(200), default="")
    reviewed_at: Mapped[datetime | None] = mapped_column()
    reviewed_by: Mapped[str] = mapped_column(String(200), default="")
    note: Mapped[str] = mapped_column(Text, default="")

    record: Mapped[StructureRecord] = relationship(back_populates="documents")
