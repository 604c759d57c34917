"""The rules of responses ("plis", issue 13, SPEC §7): candidature and offers per lot (draft →
validated), attachments, generated documents, PAdES signatures, sealed submission with its
receipt, withdrawal, opening after the deadline, admissibility, award and the flow to the Catalogue.

Nothing here knows Flask (STYLE §3): functions take explicit arguments (session, files folder,
actor, time), return models, raise `SamError` subclasses with French messages, flush but never
commit. Every time is passed in (`now`): the views read SAM's clock, the tests move it.

Sealing (issue 13 §5): until the deadline no function here hands a response's content to a buyer;
`opened_responses` refuses before the deadline and before the opening is recorded.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from apps.sam import documents, signing
from apps.sam.consultations import (
    Actor,
    InvalidInput,
    NotAllowed,
    SamError,
    audit,
    check_decidable,
    decide_lot,
)
from apps.sam.models import (
    AWARDED,
    CLOSED,
    FORM_DRAFT,
    FORM_VALIDATED,
    LOT_OPEN,
    PUBLISHED,
    RESPONSE_PREPARING,
    RESPONSE_SUBMITTED,
    Attachment,
    CatalogueDispatch,
    Consultation,
    GeneratedDocument,
    Lot,
    Offer,
    Submission,
    TenderResponse,
)
from shared import (
    N_,
    OFFICE,
    PDF,
    ZIP,
    UploadRefused,
    ascii_digits,
    download_name,
    read_upload,
    store,
)


class Incomplete(SamError):
    """"Valider" found missing fields or attachments: `missing` lists them (in the page's language)."""

    def __init__(self, missing: list[str]) -> None:
        super().__init__(N_("Le formulaire reste en brouillon : %(missing)s."), missing=" ; ".join(missing))
        self.missing = missing


# Attachments (seed 003, FAQ "Quelles sont les pièces à déposer…"): code → (label, required).
CANDIDATURE_ATTACHMENTS = {
    "pouvoir": (N_("Pouvoir de la personne habilitée à engager le candidat"), True),
    "qualiopi": (N_("Certification Qualiopi (ou devis en cours)"), True),
    "habilitation": (N_("Lettre d'habilitation du mandataire par chaque co-traitant"), False),  # required for a group
    "bilan": (N_("Bilan DREETS (année N-1 ou N-2)"), False),
}
OFFER_ATTACHMENTS = {
    "annexe": (N_("Annexe technique"), True),
    "cv": (N_("CV de l'équipe pédagogique"), False),
}
MAX_ROWS = 5  # members, sites, sessions shown in a form
ACCEPTED = (PDF, ZIP, *OFFICE)  # attachments: types read from the content (shell's upload path)
SOLO, GROUP = "seul", "groupement"


# ---------------------------------------------------------------- data of the forms

@dataclass
class Site:
    name: str = ""
    address: str = ""
    postal_code: str = ""
    city: str = ""


@dataclass
class Member:
    name: str = ""
    siret: str = ""
    share: str = ""


@dataclass
class SessionDates:
    site: int = 1
    start: str = ""  # ISO dates
    end: str = ""


@dataclass
class CandidatureData:
    legal_name: str = ""
    legal_category: str = ""
    ape_code: str = ""
    address: str = ""
    postal_code: str = ""
    city: str = ""
    representative: str = ""
    representative_title: str = ""
    signatory: str = ""
    signatory_title: str = ""
    email: str = ""
    phone: str = ""
    group_kind: str = SOLO
    members: list[Member] = field(default_factory=list)
    lead: int = 0
    sites: list[Site] = field(default_factory=list)


@dataclass
class OfferData:
    formacode: str = ""
    objectives: str = ""
    prerequisites: str = ""
    content: str = ""
    hours: int | None = None
    headcount: int | None = None
    unit_price_cents: int | None = None
    accessibility: str = ""
    sites: list[Site] = field(default_factory=list)
    sessions: list[SessionDates] = field(default_factory=list)
    contact_name: str = ""
    contact_phone: str = ""
    contact_email: str = ""


CANDIDATURE_FIELDS = ("legal_name", "legal_category", "ape_code", "address", "postal_code", "city", "representative",
                      "representative_title", "signatory", "signatory_title", "email", "phone", "group_kind", "lead")
OFFER_FIELDS = ("formacode", "objectives", "prerequisites", "content", "hours", "headcount", "unit_price_cents",
                "accessibility", "contact_name", "contact_phone", "contact_email")


def loads(text: str) -> list[dict[str, Any]]:
    try:
        value = json.loads(text or "[]")
    except ValueError:
        return []
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _dump(rows: list[Any]) -> str:
    return json.dumps([asdict(r) for r in rows if any(str(v).strip() for k, v in asdict(r).items() if k != "site")],
                      ensure_ascii=False, sort_keys=True)


def sites_of(obj: TenderResponse | Offer) -> list[Site]:
    return [Site(**{k: str(v) for k, v in row.items() if k in Site.__dataclass_fields__}) for row in loads(obj.sites)]


def members_of(response: TenderResponse) -> list[Member]:
    return [Member(**{k: str(v) for k, v in row.items() if k in Member.__dataclass_fields__})
            for row in loads(response.members)]


def sessions_of(offer: Offer) -> list[SessionDates]:
    out = []
    for row in loads(offer.sessions):
        try:
            site = int(row.get("site", 1))
        except (TypeError, ValueError):
            site = 1
        out.append(SessionDates(site=site, start=str(row.get("start", "")), end=str(row.get("end", ""))))
    return out


def candidature_data(response: TenderResponse) -> CandidatureData:
    data = CandidatureData(**{name: getattr(response, name) for name in CANDIDATURE_FIELDS})
    data.members, data.sites = members_of(response), sites_of(response)
    return data


def offer_data(offer: Offer) -> OfferData:
    data = OfferData(**{name: getattr(offer, name) for name in OFFER_FIELDS})
    data.sites, data.sessions = sites_of(offer), sessions_of(offer)
    return data


# ---------------------------------------------------------------- the response and its state

def find_response(session: Session, consultation: Consultation, siret: str) -> TenderResponse | None:
    return session.scalar(select(TenderResponse).where(TenderResponse.consultation_id == consultation.id,
                                                       TenderResponse.structure_siret == siret))


def _require_open(consultation: Consultation, now: datetime) -> None:
    if consultation.state(now) != PUBLISHED:
        if consultation.state(now) == CLOSED:
            raise NotAllowed(N_("La date limite de remise des offres est passée : la réponse ne peut plus être modifiée "
                             "ni déposée."))
        raise NotAllowed(N_("Cette consultation n'est pas ouverte aux réponses."))


def require_editable(response: TenderResponse, now: datetime) -> None:
    """:raises NotAllowed: the response is submitted (immutable) or the deadline has passed."""
    _require_open(response.consultation, now)
    if response.is_submitted:
        raise NotAllowed(N_("La réponse est déposée : elle ne peut plus être modifiée. Retirez-la avant la date limite "
                         "pour la modifier puis la déposer à nouveau."))


def start_response(session: Session, consultation: Consultation, actor: Actor, *, prefill: dict[str, str],
                   source: str, now: datetime) -> TenderResponse:
    """The structure's response to the consultation, created on first use with its candidature
    prefilled (`prefill`: REPERNET's record or the claims; `source` says which).

    :raises NotAllowed: the consultation is not open to responses.
    """
    found = find_response(session, consultation, actor.structure_siret)
    if found is not None:
        return found
    _require_open(consultation, now)
    response = TenderResponse(consultation_id=consultation.id, structure_id=actor.structure_id,
                              structure_siret=actor.structure_siret, structure_name=actor.structure_name,
                              created_at=now, updated_at=now, updated_by=actor.name, prefilled_from=source,
                              legal_name=actor.structure_name, email=actor.email)
    limits = {c.name: getattr(c.type, "length", None) for c in TenderResponse.__table__.columns}
    for name, value in prefill.items():
        if name in CANDIDATURE_FIELDS and name not in ("group_kind", "lead") and value:
            setattr(response, name, str(value)[:limits.get(name) or 200])
    if prefill.get("site_address"):
        response.sites = _dump([Site(name="Siège", address=prefill["site_address"][:200],
                                     postal_code=prefill.get("postal_code", "")[:5], city=prefill.get("city", "")[:100])])
    session.add(response)
    session.flush()
    return response


def _touch(response: TenderResponse, actor: Actor, now: datetime) -> None:
    response.updated_at, response.updated_by = now, actor.name  # the UPDATE bumps the version


def save_candidature(session: Session, files_dir: Path, response: TenderResponse, data: CandidatureData, *,
                     actor: Actor, now: datetime) -> TenderResponse:
    """Save the candidature (the seed's "Enregistrer"): it returns to draft.

    :raises NotAllowed: submitted or past the deadline. :raises InvalidInput: a group's lead is not a member.
    """
    require_editable(response, now)
    if data.group_kind not in (SOLO, GROUP):
        raise InvalidInput(N_("Choisissez : candidat seul ou groupement."), "group_kind")
    members = [m for m in data.members if m.name.strip() or m.siret.strip() or m.share.strip()]
    if data.group_kind == GROUP and not 0 <= data.lead <= len(members):
        raise InvalidInput(N_("Le mandataire doit être le candidat ou l'un des membres saisis."), "lead")
    for name in CANDIDATURE_FIELDS:
        if name not in ("group_kind", "lead"):
            setattr(response, name, getattr(data, name).strip())
    response.group_kind = data.group_kind
    response.members = _dump(members if data.group_kind == GROUP else [])
    response.lead = data.lead if data.group_kind == GROUP else 0
    response.sites = _dump(data.sites)
    response.candidature_status = FORM_DRAFT
    _touch(response, actor, now)
    session.flush()
    refresh_documents(session, files_dir, response, now=now)
    return response


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _site_problems(sites: list[Site], what: str) -> list[str]:
    if not sites:
        return [_("%(what)s : au moins un site de réalisation", what=what)]
    problems = []
    for i, site in enumerate(sites, start=1):
        if not (site.address.strip() and site.city.strip()):
            problems.append(_("%(what)s : adresse et ville du site n° %(number)d", what=what, number=i))
        if not ascii_digits(site.postal_code.strip(), 5):
            problems.append(_("%(what)s : code postal (5 chiffres) du site n° %(number)d", what=what, number=i))
    return problems


def _attachment_problems(present: set[str], kinds: dict[str, tuple[str, bool]], extra: tuple[str, ...] = ()) -> list[str]:
    return [_("Pièce jointe manquante : %(label)s", label=_(label)) for code, (label, required) in kinds.items()
            if (required or code in extra) and code not in present]


def candidature_missing(response: TenderResponse) -> list[str]:
    """What "Valider" would refuse, in the page's language (empty: complete)."""
    labels = {"legal_name": N_("Dénomination du candidat"), "address": N_("Adresse du siège"),
              "city": N_("Ville du siège"), "representative": N_("Représentant légal"),
              "representative_title": N_("Qualité du représentant légal"), "signatory": N_("Signataire habilité"),
              "signatory_title": N_("Qualité du signataire"), "email": N_("Courriel"), "phone": N_("Téléphone")}
    missing = [_(label) for name, label in labels.items() if not getattr(response, name).strip()]
    if not ascii_digits(response.postal_code or "", 5):
        missing.append(_("Code postal du siège (5 chiffres)"))
    if response.email and not _EMAIL.match(response.email):
        missing.append(_("Courriel valide"))
    if response.group_kind == GROUP:
        members = members_of(response)
        if not members:
            missing.append(_("Membres du groupement : au moins un co-traitant"))
        for i, member in enumerate(members, start=1):
            if not member.name.strip():
                missing.append(_("Nom du membre n° %(number)d", number=i))
            if not ascii_digits(member.siret.strip(), 14):
                missing.append(_("SIRET (14 chiffres) du membre n° %(number)d", number=i))
            if not member.share.strip():
                missing.append(_("Répartition des prestations du membre n° %(number)d", number=i))
    missing += _site_problems(sites_of(response), _("Sites de réalisation"))
    present = {a.kind for a in response.attachments if a.offer_id is None}
    missing += _attachment_problems(present, CANDIDATURE_ATTACHMENTS,
                                    ("habilitation",) if response.group_kind == GROUP else ())
    return missing


def validate_candidature(session: Session, files_dir: Path, response: TenderResponse, *, actor: Actor,
                         now: datetime) -> TenderResponse:
    """"Valider": every mandatory field and attachment present → validated, and the DC1 generated.

    :raises Incomplete: what is missing. :raises NotAllowed: submitted or past the deadline.
    """
    require_editable(response, now)
    missing = candidature_missing(response)
    if missing:
        raise Incomplete(missing)
    response.candidature_status = FORM_VALIDATED
    _touch(response, actor, now)
    session.flush()
    refresh_documents(session, files_dir, response, now=now)
    return response


# ---------------------------------------------------------------- offers

def add_offer(session: Session, response: TenderResponse, lot: Lot, *, actor: Actor, now: datetime) -> Offer:
    """An offer on `lot`, once the candidature is validated (seed 003: "il faut que le dossier de
    candidature soit préalablement validé"); its sites and contact start from the candidature's.

    :raises NotAllowed: candidature not validated, an offer on this lot exists, lot not of this consultation.
    """
    require_editable(response, now)
    if response.candidature_status != FORM_VALIDATED:
        raise NotAllowed(N_("Validez d'abord la candidature : une offre ne peut être créée qu'ensuite."))
    if lot.consultation_id != response.consultation_id:
        raise NotAllowed(N_("Ce lot n'appartient pas à cette consultation."))
    if any(o.lot_id == lot.id for o in response.offers):
        raise NotAllowed(N_("Votre réponse comporte déjà une offre sur le lot n° %(number)d (une seule par lot)."), number=lot.number)
    offer = Offer(lot_id=lot.id, lot=lot, sites=response.sites, contact_name=response.signatory,
                  contact_email=response.email, contact_phone=response.phone, created_at=now, updated_at=now,
                  updated_by=actor.name)
    response.offers.append(offer)
    _touch(response, actor, now)
    session.flush()
    return offer


def save_offer(session: Session, files_dir: Path, offer: Offer, data: OfferData, *, actor: Actor,
               now: datetime) -> Offer:
    """Save an offer: it returns to draft.

    :raises NotAllowed: submitted or past the deadline. :raises InvalidInput: negative numbers.
    """
    require_editable(offer.response, now)
    for name, label in (("hours", "La durée"), ("headcount", "L'effectif"), ("unit_price_cents", "Le prix")):
        value = getattr(data, name)
        if value is not None and value < 0:
            raise InvalidInput(f"{label} ne peut pas être négatif.", name)
    for name in OFFER_FIELDS:
        value = getattr(data, name)
        setattr(offer, name, value.strip() if isinstance(value, str) else value)
    offer.sites = _dump(data.sites)
    offer.sessions = _dump(data.sessions)
    offer.status = FORM_DRAFT
    offer.updated_at, offer.updated_by = now, actor.name
    session.flush()
    refresh_documents(session, files_dir, offer.response, now=now)
    return offer


def offer_missing(offer: Offer) -> list[str]:
    """What "Valider" would refuse on an offer, in the page's language."""
    missing = []
    if not ascii_digits(offer.formacode or "", 5):
        missing.append(_("Formacode (5 chiffres)"))
    for name, label in (("objectives", N_("Objectifs de la formation")), ("content", N_("Contenu de la formation")),
                        ("accessibility", N_("Accessibilité aux personnes en situation de handicap")),
                        ("contact_name", N_("Nom du contact des sessions"))):
        if not getattr(offer, name).strip():
            missing.append(_(label))
    if not (offer.contact_phone.strip() or offer.contact_email.strip()):
        missing.append(_("Téléphone ou courriel du contact"))
    if not offer.hours:
        missing.append(_("Durée en heures par stagiaire"))
    if not offer.headcount:
        missing.append(_("Effectif prévu"))
    if offer.unit_price_cents is None:
        missing.append(_("Prix unitaire par unité d'œuvre (%(unit)s)", unit=offer.lot.unit))
    sites = sites_of(offer)
    missing += _site_problems(sites, _("Sites"))
    sessions = sessions_of(offer)
    if not sessions:
        missing.append(_("Sessions prévues : au moins une session"))
    for i, s in enumerate(sessions, start=1):
        try:
            start, end = date.fromisoformat(s.start), date.fromisoformat(s.end)
        except ValueError:
            missing.append(_("Dates de début et de fin de la session n° %(number)d", number=i))
            continue
        if end < start:
            missing.append(_("Session n° %(number)d : la fin doit suivre le début", number=i))
        if not 1 <= s.site <= len(sites):
            missing.append(_("Session n° %(number)d : site de réalisation", number=i))
    present = {a.kind for a in offer.response.attachments if a.offer_id == offer.id}
    missing += _attachment_problems(present, OFFER_ATTACHMENTS)
    return missing


def validate_offer(session: Session, files_dir: Path, offer: Offer, *, actor: Actor, now: datetime) -> Offer:
    """"Valider" an offer → validated and its acte d'engagement generated.

    :raises Incomplete: what is missing. :raises NotAllowed: candidature not validated, submitted, late.
    """
    require_editable(offer.response, now)
    if offer.response.candidature_status != FORM_VALIDATED:
        raise NotAllowed(N_("Validez d'abord la candidature."))
    missing = offer_missing(offer)
    if missing:
        raise Incomplete(missing)
    offer.status = FORM_VALIDATED
    offer.updated_at, offer.updated_by = now, actor.name
    session.flush()
    refresh_documents(session, files_dir, offer.response, now=now)
    return offer


def remove_offer(session: Session, files_dir: Path, offer: Offer, *, actor: Actor, now: datetime) -> None:
    """Remove an offer (and its attachments and acte d'engagement)."""
    response = offer.response
    require_editable(response, now)
    for attachment in [a for a in response.attachments if a.offer_id == offer.id]:
        response.attachments.remove(attachment)
    for document in [d for d in response.documents if d.offer_id == offer.id]:
        response.documents.remove(document)
    response.offers.remove(offer)
    _touch(response, actor, now)
    session.flush()
    refresh_documents(session, files_dir, response, now=now)


# ---------------------------------------------------------------- files

def response_folder(files_dir: Path, response: TenderResponse) -> Path:
    return files_dir / "responses" / str(response.id)


def _store(folder: Path, content: bytes, extension: str) -> tuple[str, str]:
    """Write `content` under its SHA-256 (the shell's atomic write; content-addressed, never overwritten)."""
    digest = hashlib.sha256(content).hexdigest()
    name = f"{digest}.{extension}"
    store(folder, name, content)
    return digest, name


def store_attachment(session: Session, files_dir: Path, response: TenderResponse, offer: Offer | None, kind: str,
                     filename: str, stream: IO[bytes], *, max_bytes: int, actor: Actor, now: datetime) -> Attachment:
    """Join (or replace) a file of `kind`: the form it belongs to returns to draft.

    :raises NotAllowed: submitted or late. :raises InvalidInput: unknown kind, empty, too big, bad type.
    """
    require_editable(response, now)
    kinds = OFFER_ATTACHMENTS if offer is not None else CANDIDATURE_ATTACHMENTS
    if kind not in kinds:
        raise InvalidInput(N_("Choisissez le type de pièce."), "kind")
    try:
        upload = read_upload(stream, filename, max_bytes=max_bytes, accepted=ACCEPTED)
    except UploadRefused as exc:
        raise InvalidInput(exc.message, "file") from exc
    digest, storage_name = _store(response_folder(files_dir, response), upload.content, upload.extension)
    offer_id = offer.id if offer is not None else None
    for old in [a for a in response.attachments if a.offer_id == offer_id and a.kind == kind]:
        response.attachments.remove(old)
    attachment = Attachment(offer_id=offer_id, kind=kind, filename=upload.filename, content_type=upload.content_type,
                            size=upload.size, sha256=digest, storage_name=storage_name, uploaded_at=now,
                            uploaded_by=actor.name)
    response.attachments.append(attachment)
    if offer is not None:
        offer.status = FORM_DRAFT
    else:
        response.candidature_status = FORM_DRAFT
    _touch(response, actor, now)
    session.flush()
    refresh_documents(session, files_dir, response, now=now)
    return attachment


def remove_attachment(session: Session, files_dir: Path, response: TenderResponse, attachment: Attachment, *,
                      actor: Actor, now: datetime) -> None:
    """Remove a file: its form returns to draft."""
    require_editable(response, now)
    offer = next((o for o in response.offers if o.id == attachment.offer_id), None)
    response.attachments.remove(attachment)
    if offer is not None:
        offer.status = FORM_DRAFT
    else:
        response.candidature_status = FORM_DRAFT
    _touch(response, actor, now)
    session.flush()
    refresh_documents(session, files_dir, response, now=now)


# ---------------------------------------------------------------- generated documents

def _candidate(response: TenderResponse) -> dict[str, str]:
    return {name: getattr(response, name) for name in (
        "legal_name", "address", "postal_code", "city", "representative", "representative_title", "signatory",
        "signatory_title", "email", "phone")} | {"siret": response.structure_siret}


def _base(response: TenderResponse) -> dict[str, Any]:
    c = response.consultation
    return {"reference": c.reference, "title": c.title, "buyer": c.structure_name, "candidate": _candidate(response),
            "group_kind": response.group_kind, "members": [asdict(m) for m in members_of(response)],
            "lead": response.lead}


def dc1_data(response: TenderResponse) -> dict[str, Any]:
    lots = sorted((o.lot for o in response.offers if o.status == FORM_VALIDATED), key=lambda lot: lot.number)
    return _base(response) | {"lots": [{"number": lot.number, "title": lot.title} for lot in lots]}


def ae_data(offer: Offer) -> dict[str, Any]:
    lot = offer.lot
    return _base(offer.response) | {
        "lot": {"number": lot.number, "title": lot.title, "unit": lot.unit, "unit_label": lot.unit_label},
        "unit_price": f"{offer.unit_price} par {lot.unit}", "hours": offer.hours, "headcount": offer.headcount,
        "sessions": sorted(({"start": s.start, "end": s.end} for s in sessions_of(offer)), key=lambda s: s["start"]),
    }


def canonical(value: Any) -> bytes:
    """The canonical serialisation hashed by receipts and documents: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str).encode()


def _generate(session: Session, files_dir: Path, response: TenderResponse, kind: str, offer: Offer | None,
              data: dict[str, Any], now: datetime) -> None:
    source = hashlib.sha256(canonical(data)).hexdigest()
    offer_id = offer.id if offer is not None else None
    found = next((d for d in response.documents if d.kind == kind and d.offer_id == offer_id), None)
    if found is not None and found.source_sha256 == source:
        return
    content = documents.lettre_de_candidature(data) if kind == "dc1" else documents.acte_d_engagement(data)
    digest, storage_name = _store(response_folder(files_dir, response), content, "pdf")
    reference = response.consultation.reference
    # Through the shell's file-name rule: the reference may hold what a header cannot carry.
    filename = download_name(f"DC1 - {reference}" if kind == "dc1"
                             else f"Acte d'engagement - {reference} - lot {data['lot']['number']}", "pdf")
    if found is None:
        found = GeneratedDocument(kind=kind, offer_id=offer_id)
        response.documents.append(found)
    # New data, new document: a signature of the previous one no longer applies.
    found.filename, found.sha256, found.storage_name, found.source_sha256 = filename, digest, storage_name, source
    found.generated_at = now
    found.signed_sha256 = found.signed_storage_name = found.signed_by = ""
    found.signed_at = None


def refresh_documents(session: Session, files_dir: Path, response: TenderResponse, *, now: datetime) -> None:
    """Generate what the validated forms call for, regenerate what their data changed, and drop the
    documents of forms back in draft (issue 13 §2)."""
    wanted: set[tuple[str, int | None]] = set()
    if response.candidature_status == FORM_VALIDATED:
        wanted.add(("dc1", None))
        _generate(session, files_dir, response, "dc1", None, dc1_data(response), now)
        for offer in response.offers:
            if offer.status == FORM_VALIDATED:
                wanted.add(("ae", offer.id))
                _generate(session, files_dir, response, "ae", offer, ae_data(offer), now)
    for document in list(response.documents):
        if (document.kind, document.offer_id) not in wanted:
            response.documents.remove(document)
    session.flush()


def refresh_after_amendment(session: Session, files_dir: Path, consultation: Consultation, *, now: datetime) -> int:
    """After an "avis rectificatif", regenerate the documents of the responses in preparation: their DC1
    and actes d'engagement name the consultation and its lots (issue 13 §2). A submitted response is
    left as its receipt sealed it (§4). Returns how many responses were looked at.
    """
    preparing = list(session.scalars(select(TenderResponse).where(
        TenderResponse.consultation_id == consultation.id, TenderResponse.status == RESPONSE_PREPARING)))
    for response in preparing:
        refresh_documents(session, files_dir, response, now=now)
    return len(preparing)


def document_path(files_dir: Path, response: TenderResponse, document: GeneratedDocument, signed: bool = False) -> Path:
    return response_folder(files_dir, response) / (document.signed_storage_name if signed else document.storage_name)


def attachment_path(files_dir: Path, response: TenderResponse, attachment: Attachment) -> Path:
    return response_folder(files_dir, response) / attachment.storage_name


def sign_document(session: Session, files_dir: Path, document: GeneratedDocument, signer: Any, *, actor: Actor,
                  now: datetime) -> GeneratedDocument:
    """Sign a generated document (PAdES); the signed PDF is kept beside the original.

    :raises NotAllowed: submitted or late. :raises signing.SigningFailed: the signature failed.
    """
    response = document.response
    require_editable(response, now)
    path = document_path(files_dir, response, document)
    if not path.is_file():
        raise NotAllowed(N_("Le document à signer est introuvable : validez à nouveau le formulaire pour le régénérer."))
    original = path.read_bytes()
    signed = signing.sign_pdf(original, signer, name=actor.name, reason=f"Signature de : {document.filename}",
                              location=response.city)
    digest, storage_name = _store(response_folder(files_dir, response), signed, "pdf")
    document.signed_sha256, document.signed_storage_name = digest, storage_name
    document.signed_at, document.signed_by = now, actor.name
    _touch(response, actor, now)
    session.flush()
    return document


# ---------------------------------------------------------------- submission and receipts

def _files(files_dir: Path, response: TenderResponse) -> list[dict[str, Any]]:
    offers = {o.id: o for o in response.offers}
    out = []
    for a in response.attachments:
        where = f"offre lot {offers[a.offer_id].lot.number}" if a.offer_id in offers else "candidature"
        out.append({"role": f"pièce jointe ({where}) : {a.kind}", "name": a.filename, "sha256": a.sha256,
                    "size": a.size, "path": a.storage_name})
    for d in response.documents:
        out.append({"role": "document généré", "name": d.filename, "sha256": d.sha256, "path": d.storage_name,
                    "size": document_path(files_dir, response, d).stat().st_size
                    if document_path(files_dir, response, d).is_file() else 0})
        if d.is_signed:
            out.append({"role": "document signé", "name": d.filename.replace(".pdf", " - signé.pdf"),
                        "sha256": d.signed_sha256, "path": d.signed_storage_name,
                        "size": document_path(files_dir, response, d, signed=True).stat().st_size
                        if document_path(files_dir, response, d, signed=True).is_file() else 0})
    return sorted(out, key=lambda f: (f["role"], f["name"], f["sha256"]))


def content_of(files_dir: Path, response: TenderResponse) -> dict[str, Any]:
    """Everything a submission seals: the forms and the hashes of its files."""
    offers = []
    for offer in sorted(response.offers, key=lambda o: o.lot.number):
        # The lot by its id: an "avis rectificatif" may retitle a lot after a submission without
        # making the sealed response look changed.
        offers.append({"lot_id": offer.lot_id, "status": offer.status, **{n: getattr(offer, n) for n in OFFER_FIELDS},
                       "sites": loads(offer.sites), "sessions": loads(offer.sessions)})
    return {
        "consultation": response.consultation.reference, "siret": response.structure_siret,
        "candidature": {**{n: getattr(response, n) for n in CANDIDATURE_FIELDS},
                        "members": loads(response.members), "sites": loads(response.sites)},
        "offers": offers, "files": _files(files_dir, response),
    }


def manifest_of(files_dir: Path, response: TenderResponse, submitted_at: datetime, number: int) -> str:
    content = content_of(files_dir, response)
    return canonical({"submission": number, "submitted_at": submitted_at.isoformat(), "response": content}).decode()


def submission_problems(response: TenderResponse, files_dir: Path, roots: list[Any]) -> list[str]:
    """Why the response cannot be submitted yet (in the page's language; empty when it can)."""
    problems = []
    if response.candidature_status != FORM_VALIDATED:
        problems.append(_("la candidature n'est pas validée"))
    if not response.offers:
        problems.append(_("la réponse ne comporte aucune offre"))
    for offer in sorted(response.offers, key=lambda o: o.lot.number):
        if offer.status != FORM_VALIDATED:
            problems.append(_("l'offre sur le lot n° %(number)d n'est pas validée", number=offer.lot.number))
    if response.consultation.signature_required:
        for document in response.documents:
            if document.kind != "ae":
                continue
            if not document.is_signed:
                problems.append(_("« %(name)s » n'est pas signé", name=document.filename))
                continue
            path = document_path(files_dir, response, document, signed=True)
            check = signing.verify_pdf(path.read_bytes() if path.is_file() else b"", roots)
            if not check.valid:
                problems.append(_("la signature de « %(name)s » n'est pas valide", name=document.filename))
    return problems


def submit(session: Session, files_dir: Path, response: TenderResponse, *, actor: Actor, now: datetime,
           roots: list[Any]) -> Submission:
    """Submit before the deadline: the response becomes immutable and gets its receipt.

    :raises NotAllowed: late, already submitted, or incomplete (the message says what is missing).
    """
    _require_open(response.consultation, now)
    if response.is_submitted:
        raise NotAllowed(N_("La réponse est déjà déposée."))
    problems = submission_problems(response, files_dir, roots)
    if problems:
        raise NotAllowed(N_("La réponse ne peut pas être déposée : %(problems)s."), problems=" ; ".join(problems))
    number = len(response.submissions) + 1
    manifest = manifest_of(files_dir, response, now, number)
    submission = Submission(number=number, submitted_at=now, submitted_by=actor.name, submitted_by_email=actor.email,
                            manifest=manifest, digest=hashlib.sha256(manifest.encode()).hexdigest())
    response.submissions.insert(0, submission)
    response.status = RESPONSE_SUBMITTED
    _touch(response, actor, now)
    session.flush()
    return submission


def withdraw(session: Session, response: TenderResponse, *, actor: Actor, now: datetime) -> Submission:
    """Withdraw the submitted response before the deadline (its receipt stays in the history).

    :raises NotAllowed: nothing submitted, or late.
    """
    _require_open(response.consultation, now)
    current = response.current_submission
    if not response.is_submitted or current is None:
        raise NotAllowed(N_("La réponse n'est pas déposée."))
    current.withdrawn_at, current.withdrawn_by = now, actor.name
    response.status = RESPONSE_PREPARING
    _touch(response, actor, now)
    session.flush()
    return current


@dataclass
class ReceiptCheck:
    """Whether a response still matches its receipt: `problems` names what differs."""

    matches: bool
    problems: list[str]


def check_receipt(files_dir: Path, response: TenderResponse, submission: Submission) -> ReceiptCheck:
    """Recompute the sealed content from the database and the stored files' bytes, and compare."""
    problems = []
    if hashlib.sha256(submission.manifest.encode()).hexdigest() != submission.digest:
        problems.append(_("l'accusé de réception ne correspond plus à son empreinte"))
    try:
        sealed = json.loads(submission.manifest)["response"]
    except (ValueError, KeyError, TypeError):
        return ReceiptCheck(False, [_("l'accusé de réception est illisible")])
    folder = response_folder(files_dir, response)
    for item in sealed.get("files", []):
        path = folder / str(item.get("path", ""))
        actual = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        if actual != item.get("sha256"):
            problems.append(_("le fichier « %(name)s » a changé ou manque", name=item.get("name")))
    if canonical(content_of(files_dir, response)) != canonical(sealed) and not problems:
        problems.append(_("les formulaires ne correspondent plus au pli déposé"))
    return ReceiptCheck(not problems, problems)


def receipt_pdf(response: TenderResponse, submission: Submission) -> bytes:
    sealed = json.loads(submission.manifest)["response"]
    return documents.receipt({
        "reference": response.consultation.reference, "title": response.consultation.title,
        "candidate": response.legal_name or response.structure_name, "siret": response.structure_siret,
        "number": submission.number, "submitted_at": submission.submitted_at, "submitted_by": submission.submitted_by,
        "digest": submission.digest, "files": sealed.get("files", []),
    })


# ---------------------------------------------------------------- the buyer's side

def submitted_count(session: Session, consultation: Consultation) -> int:
    """The number of submitted responses: all a buyer may know before the deadline."""
    return session.scalar(select(func.count(TenderResponse.id)).where(
        TenderResponse.consultation_id == consultation.id, TenderResponse.status == RESPONSE_SUBMITTED)) or 0


def can_open(consultation: Consultation, now: datetime) -> bool:
    return consultation.published_at is not None and consultation.response_deadline <= now


def open_responses(session: Session, consultation: Consultation, *, actor: Actor, now: datetime) -> Consultation:
    """"Ouverture des plis": once the deadline has passed; recorded in the audit trail.

    :raises NotAllowed: before the deadline, or already opened.
    """
    if not can_open(consultation, now):
        raise NotAllowed(N_("Les plis restent scellés jusqu'à la date limite de remise des offres."))
    if consultation.opened_at is not None:
        raise NotAllowed(N_("Les plis sont déjà ouverts."))
    consultation.opened_at, consultation.opened_by = now, actor.name
    audit(consultation, actor, "Ouverture des plis", f"{submitted_count(session, consultation)} pli(s) déposé(s)", now=now)
    session.flush()
    return consultation


def opened_responses(session: Session, consultation: Consultation, now: datetime) -> list[TenderResponse]:
    """The submitted responses, for the buyer, only after the deadline and the opening.

    :raises NotAllowed: sealed (before the deadline or before the opening).
    """
    if not can_open(consultation, now) or consultation.opened_at is None:
        raise NotAllowed(N_("Les plis sont scellés."))
    return list(session.scalars(select(TenderResponse).where(
        TenderResponse.consultation_id == consultation.id, TenderResponse.status == RESPONSE_SUBMITTED)
        .order_by(TenderResponse.structure_name, TenderResponse.id)))


def set_admissibility(session: Session, consultation: Consultation, offer: Offer, admissible: bool, reason: str, *,
                      actor: Actor, now: datetime) -> Offer:
    """Mark an opened offer admissible or not, with a reason.

    :raises NotAllowed: not opened, lot decided. :raises InvalidInput: no reason.
    """
    opened_responses(session, consultation, now)
    if offer.lot.status != LOT_OPEN:
        raise NotAllowed(N_("Le lot n° %(number)d est déjà décidé."), number=offer.lot.number)
    if not reason.strip():
        raise InvalidInput(N_("Indiquez le motif de la décision d'admissibilité."), "reason")
    offer.admissible, offer.admissibility_reason = admissible, reason.strip()
    audit(consultation, actor, "Analyse d'une offre",
          f"Lot {offer.lot.number}, {offer.response.structure_name} : {'admissible' if admissible else 'non admissible'}"
          f" — {reason.strip()}", now=now)
    session.flush()
    return offer


def award(session: Session, consultation: Consultation, lot: Lot, offer: Offer, *, actor: Actor,
          now: datetime) -> CatalogueDispatch:
    """Award the lot to an admissible offer; the winning offer is queued for the Catalogue.

    :raises NotAllowed: not opened, offer not admissible or of another lot, lot decided.
    """
    opened_responses(session, consultation, now)
    if offer.lot_id != lot.id or not offer.response.is_submitted:
        raise NotAllowed(N_("Cette offre ne porte pas sur ce lot."))
    if offer.admissible is not True:
        raise NotAllowed(N_("Seule une offre déclarée admissible peut être retenue."))
    decide_lot(session, consultation, lot, AWARDED, offer.response.legal_name or offer.response.structure_name,
               actor=actor, now=now)
    offer.awarded = True
    dispatch = CatalogueDispatch(award_id=f"sam-award-{lot.id}", offer_id=offer.id,
                                 payload=canonical(catalogue_payload(offer)).decode(), next_attempt_at=now,
                                 created_at=now)
    session.add(dispatch)
    session.flush()
    return dispatch


def decide_without_award(session: Session, consultation: Consultation, lot: Lot, outcome: str, awardee: str, *,
                         actor: Actor, now: datetime) -> Lot:
    """The consultation page's decision (issue 12): a lot that received offers is awarded from the
    analysis of the responses (admissibility, then award: the Catalogue flow follows), never by a
    free-text awardee; declaring it unsuccessful stays possible.

    :raises NotAllowed: an award by name on a lot with submitted offers; see `decide_lot`.
    """
    # Sealed until the deadline (issue 13 §5): refuse before looking at the lot's offers, so the
    # answer before the deadline is the same whether the lot received any.
    check_decidable(consultation, lot, now)
    if outcome == AWARDED and candidates_of(session, lot):
        raise NotAllowed(N_("Le lot n° %(number)d a reçu des offres : attribuez-le depuis l'analyse des plis "
                            "(ouverture, admissibilité, attribution)."), number=lot.number)
    return decide_lot(session, consultation, lot, outcome, awardee, actor=actor, now=now)


def candidates_of(session: Session, lot: Lot) -> list[Offer]:
    """Every submitted offer on the lot (each candidate hears the outcome)."""
    return list(session.scalars(select(Offer).join(TenderResponse).where(
        Offer.lot_id == lot.id, TenderResponse.status == RESPONSE_SUBMITTED).order_by(Offer.id)))


def catalogue_payload(offer: Offer) -> dict[str, Any]:
    """The winning offer's public fields, in the Catalogue's contract (apps/catalogue awards)."""
    response = offer.response
    sites = sites_of(offer)
    sessions = sessions_of(offer)
    out_sites = []
    for number, site in enumerate(sites, start=1):
        dates = [{"start": s.start, "end": s.end} for s in sessions if s.site == number]
        if dates:
            out_sites.append({"name": site.name, "address": site.address, "postal_code": site.postal_code,
                              "city": site.city, "sessions": dates})
    payload: dict[str, Any] = {
        "award_id": f"sam-award-{offer.lot_id}", "siret": response.structure_siret,
        "organisation_name": response.legal_name or response.structure_name, "title": offer.lot.title,
        "objectives": offer.objectives, "content": offer.content, "prerequisites": offer.prerequisites,
        "accessibility": offer.accessibility, "formacode": offer.formacode, "hours": offer.hours,
        "consultation": response.consultation.reference,
        "contact": {"name": offer.contact_name, "phone": offer.contact_phone, "email": offer.contact_email},
        "sites": out_sites,
    }
    return payload


def outcome_recipients(session: Session, lot: Lot) -> list[tuple[str, str, Offer]]:
    """(e-mail, name, offer) of each candidate on the lot: the candidature's e-mail and the submitter's."""
    out = []
    for offer in candidates_of(session, lot):
        response = offer.response
        emails = {response.email.lower()} if response.email else set()
        current = response.current_submission
        if current is not None and current.submitted_by_email:
            emails.add(current.submitted_by_email.lower())
        out.extend((email, response.legal_name or response.structure_name, offer) for email in sorted(emails))
    return out
