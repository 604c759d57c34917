"""REPERNET's domain core (STYLE §3): explicit arguments, flush never commit, domain errors.
Nothing here knows Flask."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from stdnum.exceptions import ValidationError
from stdnum.fr import siret as siret_number

from apps.repernet import idp_api
from apps.repernet.models import LegalDocument, StructureRecord
from apps.repernet.reference import DOCUMENT_KINDS, LEGAL_CATEGORIES, required_documents
from shared import (
    JPEG,
    N_,
    PDF,
    PNG,
    ApiConflict,
    ApiInvalid,
    DomainError,
    ServiceClient,
    accepted_label,
    read_upload,
    store,
    utcnow,
)


class RegistryError(DomainError):
    """A refusal of REPERNET's rules."""


class InvalidInput(RegistryError):
    pass


class Conflict(RegistryError):
    pass


def clean_siret(value: str) -> str:
    """14 digits with a valid Luhn key (python-stdnum); spaces allowed.

    :raises InvalidInput: with a French message.
    """
    try:
        return str(siret_number.validate(value or ""))
    except ValidationError:
        raise InvalidInput(N_("Le SIRET doit comporter 14 chiffres et être valide (clé de contrôle)."), "siret") from None


@dataclass
class RecordData:
    """What the registration and edit forms collect (legal identity, address, representative)."""

    raison_sociale: str
    legal_category: str
    ape_code: str
    address: str
    postal_code: str
    city: str
    rep_first_name: str
    rep_last_name: str
    rep_title: str
    rep_email: str
    sigle: str = ""
    commercial_name: str = ""
    address_complement: str = ""
    rep_phone: str = ""


@dataclass
class Registration:
    siret: str
    is_siege: bool
    domain: str
    subdomain: str
    action: str
    record: RecordData
    admin_first_name: str
    admin_last_name: str
    admin_email: str


def find_record(session: Session, siret: str) -> StructureRecord | None:
    return session.scalar(select(StructureRecord).where(StructureRecord.siret == siret))


def register(session: Session, api: ServiceClient, data: Registration, *, actor: str) -> StructureRecord:
    """Register a structure: check it, create it at the IdP with its account admin's e-mail
    (the IdP mails the admin), keep REPERNET's own record (SPEC §8).

    :param actor: the registrant's `sub`.
    :raises InvalidInput: bad SIRET, no siège for an établissement, refused by the IdP.
    :raises Conflict: the SIRET is already registered here or at the IdP.
    :raises shared.ApiUnavailable: the IdP did not answer.
    """
    siret = clean_siret(data.siret)
    if find_record(session, siret) is not None:
        raise Conflict(N_("Cette structure (SIRET déjà enregistré) existe déjà dans REPERNET."), "siret")
    parent = None
    if not data.is_siege:
        parent = session.scalar(select(StructureRecord).where(StructureRecord.siren == siret[:9],
                                                              StructureRecord.is_siege.is_(True)))
        if parent is None:
            raise InvalidInput(N_("Le siège de cette entreprise (SIREN %(siren)s) n'est pas encore enregistré : "
                                  "enregistrez d'abord le siège social."), "is_siege", siren=siret[:9])
    record = StructureRecord(siret=siret, siren=siret[:9], is_siege=data.is_siege, parent=parent,
                             domain=data.domain, subdomain=data.subdomain, action=data.action,
                             admin_first_name=data.admin_first_name, admin_last_name=data.admin_last_name,
                             admin_email=data.admin_email.strip().lower(), created_by=actor,
                             **asdict(data.record))
    session.add(record)
    session.flush()
    payload = {"siret": siret, "name": record.raison_sociale, "kind": "organisme", "city": record.city,
               "postal_code": record.postal_code, "admin_email": record.admin_email}
    if parent is not None:
        payload["parent_siret"] = parent.siret
    try:
        created = idp_api.create_structure(api, payload)
    except ApiConflict:
        raise Conflict(N_("Une structure avec ce SIRET existe déjà sur le portail : rattachez-vous à elle "
                          "depuis le portail plutôt que de la créer."), "siret") from None
    except ApiInvalid as exc:
        if exc.detail:
            raise InvalidInput(N_("Le portail a refusé ces informations : %(detail)s."), detail=exc.detail) from None
        raise InvalidInput(N_("Le portail a refusé ces informations : données invalides.")) from None
    record.idp_structure_id = str(created.get("id") or "") or None
    return record


def create_record(session: Session, siret: str, data: RecordData, *, actor: str) -> StructureRecord:
    """A record for a structure that exists at the IdP but not yet here (created elsewhere)."""
    record = StructureRecord(siret=siret, siren=siret[:9], is_siege=True, created_by=actor, **asdict(data))
    session.add(record)
    session.flush()
    return record


def update_record(record: StructureRecord, data: RecordData) -> StructureRecord:
    """Change a record's legal identity, address and representative (version checked by the caller,
    and again by the database through the version column)."""
    for key, value in asdict(data).items():
        setattr(record, key, value)
    record.reviewed_at = None  # changed since the review: to be reviewed again
    record.reviewed_by = ""
    return record


# ---------------------------------------------------------------- legal documents

ACCEPTED = (PDF, PNG, JPEG)
ACCEPTED_TYPES = accepted_label(ACCEPTED)


def add_months(day: date, months: int) -> date:
    """The same day `months` later (the last day of the month when it has fewer days)."""
    import calendar

    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass
class DocumentStatus:
    kind: str
    label: str
    document: LegalDocument | None
    status: str  # manquant | expiré | fourni | examiné

    @property
    def label_status(self) -> str:
        """In French: the templates show it translated (`_(s.label_status)`)."""
        return {"manquant": N_("Manquant"), "expiré": N_("Expiré"), "fourni": N_("Fourni"),
                "examiné": N_("Examiné")}[self.status]


def document_statuses(record: StructureRecord, today: date) -> list[DocumentStatus]:
    """Each required document of the record's legal category, with what is missing or expired."""
    current = {d.kind: d for d in record.documents}
    statuses = []
    for kind in required_documents(record.legal_category):
        doc = current.get(kind.code)
        if doc is None:
            status = "manquant"
        elif doc.expires_on is not None and doc.expires_on < today:
            status = "expiré"
        elif doc.reviewed_at is not None:
            status = "examiné"
        else:
            status = "fourni"
        statuses.append(DocumentStatus(kind.code, kind.label, doc, status))
    return statuses


def store_document(session: Session, files_dir: Path, record: StructureRecord, kind: str, filename: str,
                   stream: IO[bytes], *, issued_on: date | None, today: date, max_bytes: int,
                   actor: str) -> LegalDocument:
    """Store (or replace) a legal document: size and type checked, SHA-256 computed, the file
    written to disk under its hash, then the row updated.

    :raises InvalidInput: unknown or not required document, bad date.
    :raises shared.UploadRefused: empty, too big, or not of an accepted type (by content).
    """
    if kind not in {k.code for k in required_documents(record.legal_category)}:
        raise InvalidInput(N_("Cette pièce n'est pas demandée pour cette catégorie juridique."), "file")
    document_kind = DOCUMENT_KINDS[kind]
    if document_kind.valid_months is not None and issued_on is None:
        raise InvalidInput(N_("Indiquez la date de délivrance de ce document."), "issued_on")
    if issued_on is not None and issued_on > today:
        raise InvalidInput(N_("La date de délivrance ne peut pas être dans le futur."), "issued_on")
    upload = read_upload(stream, filename, max_bytes=max_bytes, accepted=ACCEPTED)
    storage_name = f"{kind}-{upload.sha256}.{upload.extension}"
    store(files_dir / str(record.id), storage_name, upload.content)
    document = next((d for d in record.documents if d.kind == kind), None)
    if document is None:
        document = LegalDocument(kind=kind)
        record.documents.append(document)
    document.filename = upload.filename
    document.content_type = upload.content_type
    document.size = upload.size
    document.sha256 = upload.sha256
    document.storage_name = storage_name
    document.issued_on = issued_on
    document.expires_on = (add_months(issued_on, document_kind.valid_months)
                           if issued_on and document_kind.valid_months else None)
    document.uploaded_at = utcnow()
    document.uploaded_by = actor
    document.reviewed_at = None
    document.reviewed_by = ""
    session.flush()
    return document


def mark_reviewed(record: StructureRecord, reviewer: str) -> StructureRecord:
    """An instructeur marks the record and its current documents as reviewed."""
    now = utcnow()
    record.reviewed_at, record.reviewed_by = now, reviewer
    for document in record.documents:
        document.reviewed_at, document.reviewed_by = now, reviewer
    return record


def legal_category_label(code: str) -> str:
    """In French (the API's); pages translate it."""
    return LEGAL_CATEGORIES.get(code, (N_("Catégorie inconnue"), ()))[0]


def record_summary(record: StructureRecord, today: date) -> dict[str, Any]:
    statuses = document_statuses(record, today)
    return {"record": record, "missing": sum(s.status == "manquant" for s in statuses),
            "expired": sum(s.status == "expiré" for s in statuses), "total": len(statuses)}
