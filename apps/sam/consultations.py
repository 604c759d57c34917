"""The rules of consultations (SPEC §7, issue 12): life cycle, amendments ("avis rectificatifs"),
tender documents (DCE), registrations for alerts ("retraits"), questions and answers, audit.

Nothing here knows Flask (STYLE §3): functions take explicit arguments (the session, the actor,
the time), return models, raise `SamError` with a French message, flush but never commit. The
views send the alert mails to the `Withdrawal` rows these functions return.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session, object_session, selectinload

from apps.sam import search
from apps.sam.models import (
    AWARDED,
    CANCELLED,
    CLOSED,
    DRAFT,
    LOT_OPEN,
    PUBLISHED,
    UNITS,
    UNSUCCESSFUL,
    Amendment,
    AuditEvent,
    Consultation,
    DceDocument,
    Lot,
    Question,
    Withdrawal,
)
from shared import N_, OFFICE, PDF, ZIP, DomainError, paris, read_upload, size_label, store


class SamError(DomainError):
    """A rule of SAM refused the action."""


class NotAllowed(SamError):
    """The consultation's state does not allow this action now."""


class InvalidInput(SamError):
    """The data breaks a rule (dates, duplicates, file type or size)."""


@dataclass(frozen=True)
class Actor:
    """Who acts: the IdP's `sub`, a printable name and the structure they act for."""

    sub: str
    name: str
    email: str = ""
    structure_id: str = ""
    structure_siret: str = ""
    structure_name: str = ""


@dataclass
class ConsultationData:
    reference: str
    title: str
    description: str
    device: str
    question_deadline: datetime
    response_deadline: datetime
    signature_required: bool = False


@dataclass
class LotData:
    number: int
    title: str
    unit: str
    place: str
    volume: int


FIELD_LABELS = {
    "reference": "Référence", "title": "Intitulé", "description": "Description", "device": "Dispositif",
    "question_deadline": "Date limite des questions", "response_deadline": "Date limite de remise des offres",
    "signature_required": "Signature électronique des actes d'engagement exigée",
}


# ---------------------------------------------------------------- audit

def audit(consultation: Consultation, actor: Actor, action: str, detail: str = "", *, now: datetime) -> AuditEvent:
    """Record a buyer action on the consultation (shown on its page to its buyers)."""
    event = AuditEvent(actor=actor.name or actor.email or actor.sub, actor_sub=actor.sub, action=action,
                       detail=detail, at=now)
    consultation.events.append(event)
    return event


def _show(name: str, value: object) -> str:
    if isinstance(value, datetime):
        return paris(value)
    if isinstance(value, bool):
        return "oui" if value else "non"
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "…"


def _changes(consultation: Consultation, data: ConsultationData) -> list[str]:
    """"Intitulé : « avant » → « après »" for each field `data` changes."""
    lines = []
    for name, label in FIELD_LABELS.items():
        before, after = getattr(consultation, name), getattr(data, name)
        if before != after:
            lines.append(f"{label} : « {_show(name, before)} » → « {_show(name, after)} »")
    return lines


def _apply(consultation: Consultation, data: ConsultationData) -> None:
    for name in FIELD_LABELS:
        setattr(consultation, name, getattr(data, name))


# ---------------------------------------------------------------- drafts

def _check_dates(data: ConsultationData) -> None:
    if data.question_deadline > data.response_deadline:
        raise InvalidInput(N_("La date limite des questions doit précéder la date limite de remise des offres."),
                           "question_deadline")


def _check_reference(session: Session, reference: str, consultation_id: int | None = None) -> None:
    found = session.scalar(select(Consultation.id).where(Consultation.reference == reference))
    if found is not None and found != consultation_id:
        raise InvalidInput(N_("Cette référence est déjà celle d'une autre consultation."), "reference")


def create_consultation(session: Session, data: ConsultationData, *, actor: Actor, now: datetime) -> Consultation:
    """A new draft owned by the actor's (buyer) structure.

    :raises InvalidInput: duplicate reference, question deadline after the response deadline.
    """
    _check_dates(data)
    _check_reference(session, data.reference)
    consultation = Consultation(status=DRAFT, structure_id=actor.structure_id, structure_siret=actor.structure_siret,
                                structure_name=actor.structure_name, created_at=now, updated_at=now)
    _apply(consultation, data)
    session.add(consultation)
    session.flush()
    audit(consultation, actor, "Création du brouillon", f"Référence {data.reference}", now=now)
    search.reindex(session, consultation)
    return consultation


def _require_draft(consultation: Consultation, message: str) -> None:
    """:param message: "… n'est possible que sur un brouillon …", marked N_."""
    if consultation.status != DRAFT:
        raise NotAllowed(message)


def update_draft(session: Session, consultation: Consultation, data: ConsultationData, *, actor: Actor,
                 now: datetime) -> Consultation:
    """Edit a draft (no history beyond the audit trail: nobody has seen it yet).

    :raises NotAllowed: the consultation is no longer a draft.
    :raises InvalidInput: see `create_consultation`.
    """
    _require_draft(consultation, N_("La modification directe n'est possible que sur un brouillon : après publication, publiez un avis rectificatif."))
    _check_dates(data)
    _check_reference(session, data.reference, consultation.id)
    changes = _changes(consultation, data)
    _apply(consultation, data)
    consultation.updated_at = now
    audit(consultation, actor, "Modification du brouillon", "\n".join(changes) or "Aucun changement", now=now)
    search.reindex(session, consultation)
    return consultation


def _check_lot(consultation: Consultation, data: LotData, lot: Lot | None = None) -> None:
    if data.unit not in UNITS:
        raise InvalidInput(N_("Choisissez une unité d'œuvre : FORP, HSTA ou HGRO."), "unit")
    if not 0 < data.number <= 999:
        raise InvalidInput(N_("Le numéro de lot est compris entre 1 et 999."), "number")
    if data.volume < 0:
        raise InvalidInput(N_("Le volume estimé ne peut pas être négatif."), "volume")
    if any(other.number == data.number and other is not lot for other in consultation.lots):
        raise InvalidInput(N_("Le lot n° %(number)d existe déjà dans cette consultation."), "number", number=data.number)


def _lot_line(lot: Lot | LotData) -> str:
    return f"Lot {lot.number} « {lot.title} » ({lot.unit}, {lot.place or 'lieu non précisé'}, volume {lot.volume})"


def add_lot(session: Session, consultation: Consultation, data: LotData, *, actor: Actor, now: datetime) -> Lot:
    """Add a lot to a draft.

    :raises NotAllowed: not a draft. :raises InvalidInput: duplicate number, unknown unit.
    """
    _require_draft(consultation, N_("L'ajout d'un lot n'est possible que sur un brouillon : après publication, publiez un avis rectificatif."))
    _check_lot(consultation, data)
    lot = Lot(number=data.number, title=data.title, unit=data.unit, place=data.place, volume=data.volume)
    consultation.lots.append(lot)
    consultation.lots.sort(key=lambda x: x.number)
    audit(consultation, actor, "Ajout d'un lot", _lot_line(data), now=now)
    search.reindex(session, consultation)
    return lot


def update_lot(session: Session, consultation: Consultation, lot: Lot, data: LotData, *, actor: Actor,
               now: datetime) -> Lot:
    """Change a lot of a draft."""
    _require_draft(consultation, N_("La modification d'un lot n'est possible que sur un brouillon : après publication, publiez un avis rectificatif."))
    _check_lot(consultation, data, lot)
    before = _lot_line(lot)
    lot.number, lot.title, lot.unit, lot.place, lot.volume = data.number, data.title, data.unit, data.place, data.volume
    consultation.lots.sort(key=lambda x: x.number)
    audit(consultation, actor, "Modification d'un lot", f"{before} → {_lot_line(lot)}", now=now)
    search.reindex(session, consultation)
    return lot


def remove_lot(session: Session, consultation: Consultation, lot: Lot, *, actor: Actor, now: datetime) -> None:
    """Remove a lot from a draft."""
    _require_draft(consultation, N_("La suppression d'un lot n'est possible que sur un brouillon : après publication, publiez un avis rectificatif."))
    consultation.lots.remove(lot)
    audit(consultation, actor, "Suppression d'un lot", _lot_line(lot), now=now)
    search.reindex(session, consultation)


# ---------------------------------------------------------------- publication, amendments, cancellation

def publish(session: Session, consultation: Consultation, *, actor: Actor, now: datetime) -> Consultation:
    """Publish a draft: it appears in the public list at once.

    :raises NotAllowed: not a draft, no lot, deadlines already passed.
    """
    _require_draft(consultation, N_("La publication n'est possible que sur un brouillon : après publication, publiez un avis rectificatif."))
    if not consultation.lots:
        raise NotAllowed(N_("Ajoutez au moins un lot avant de publier la consultation."))
    if consultation.response_deadline <= now or consultation.question_deadline <= now:
        raise NotAllowed(N_("Les dates limites sont passées : reportez-les avant de publier la consultation."))
    consultation.status = PUBLISHED
    consultation.published_at = now
    audit(consultation, actor, "Publication", f"Date limite de remise des offres : {paris(consultation.response_deadline)}",
          now=now)
    session.flush()
    return consultation


def minimum_deadline(now: datetime, min_days: int) -> datetime:
    """The earliest response deadline an amendment published at `now` may leave (issue 12 §2)."""
    return now + timedelta(days=min_days)


def deadline_must_move(consultation: Consultation, now: datetime, min_days: int) -> bool:
    """True when an amendment now must push the deadline back (fewer than `min_days` days left)."""
    return consultation.response_deadline < minimum_deadline(now, min_days)


def amend(session: Session, consultation: Consultation, data: ConsultationData, reason: str, *, actor: Actor,
          now: datetime, min_days: int) -> Amendment:
    """Publish an "avis rectificatif": the new values, with their reason, in the visible history.

    An amendment must leave at least `min_days` days before the response deadline: when fewer are
    left, the deadline must be pushed back at least that far.

    :raises NotAllowed: the consultation is not published and open.
    :raises InvalidInput: no reason, nothing changed, deadline too close, dates out of order.
    """
    if consultation.state(now) != PUBLISHED:
        raise NotAllowed(N_("Un avis rectificatif ne peut être publié que sur une consultation en cours."))
    if not reason.strip():
        raise InvalidInput(N_("Indiquez le motif de l'avis rectificatif."), "reason")
    _check_dates(data)
    _check_reference(session, data.reference, consultation.id)
    if data.reference != consultation.reference:
        raise InvalidInput(N_("La référence d'une consultation publiée ne change pas."), "reference")
    floor = minimum_deadline(now, min_days)
    if data.response_deadline < floor:
        raise InvalidInput(
            N_("Un avis rectificatif doit laisser au moins %(days)d jours avant la date limite de remise des "
               "offres : reportez-la au %(date)s au plus tôt."), "response_deadline", days=min_days, date=paris(floor))
    changes = _changes(consultation, data)
    if not changes:
        raise InvalidInput(N_("L'avis rectificatif ne modifie rien : changez au moins un champ."))
    amendment = Amendment(published_at=now, reason=reason.strip(), changes="\n".join(changes),
                          previous_deadline=consultation.response_deadline, new_deadline=data.response_deadline,
                          actor=actor.name)
    consultation.amendments.append(amendment)
    _apply(consultation, data)
    consultation.updated_at = now
    audit(consultation, actor, "Avis rectificatif", f"Motif : {amendment.reason}\n{amendment.changes}", now=now)
    search.reindex(session, consultation)
    return amendment


def amend_lot(session: Session, consultation: Consultation, lot: Lot, data: LotData, reason: str,
              new_deadline: datetime | None, *, actor: Actor, now: datetime, min_days: int) -> Amendment:
    """An "avis rectificatif" on one lot of a published consultation (same history, same
    minimum-notice rule as `amend`: when fewer than `min_days` days are left, `new_deadline` must
    push the response deadline back).

    :raises NotAllowed: the consultation is not published and open.
    :raises InvalidInput: no reason, nothing changed, deadline too close, lot rules.
    """
    if consultation.state(now) != PUBLISHED:
        raise NotAllowed(N_("Un avis rectificatif ne peut être publié que sur une consultation en cours."))
    if not reason.strip():
        raise InvalidInput(N_("Indiquez le motif de l'avis rectificatif."), "reason")
    _check_lot(consultation, data, lot)
    deadline = new_deadline or consultation.response_deadline
    floor = minimum_deadline(now, min_days)
    if deadline < floor:
        raise InvalidInput(
            N_("Un avis rectificatif doit laisser au moins %(days)d jours avant la date limite de remise des "
               "offres : reportez-la au %(date)s au plus tôt."), "response_deadline", days=min_days, date=paris(floor))
    if deadline < consultation.question_deadline:
        raise InvalidInput(N_("La date limite des questions doit précéder la date limite de remise des offres."),
                           "response_deadline")
    changes = []
    if _lot_line(lot) != _lot_line(data):
        changes.append(f"{_lot_line(lot)} → {_lot_line(data)}")
    if deadline != consultation.response_deadline:
        changes.append(f"{FIELD_LABELS['response_deadline']} : « {paris(consultation.response_deadline)} » → "
                       f"« {paris(deadline)} »")
    if not changes:
        raise InvalidInput(N_("L'avis rectificatif ne modifie rien : changez au moins un champ."))
    amendment = Amendment(published_at=now, reason=reason.strip(), changes="\n".join(changes),
                          previous_deadline=consultation.response_deadline, new_deadline=deadline, actor=actor.name)
    consultation.amendments.append(amendment)
    lot.number, lot.title, lot.unit, lot.place, lot.volume = data.number, data.title, data.unit, data.place, data.volume
    consultation.lots.sort(key=lambda x: x.number)
    consultation.response_deadline = deadline
    consultation.updated_at = now
    audit(consultation, actor, "Avis rectificatif", f"Motif : {amendment.reason}\n{amendment.changes}", now=now)
    search.reindex(session, consultation)
    return amendment


def cancel(session: Session, consultation: Consultation, reason: str, *, actor: Actor, now: datetime) -> Consultation:
    """Cancel a draft or a consultation not yet awarded (a published one stays listed as cancelled).

    :raises NotAllowed: already cancelled or decided. :raises InvalidInput: no reason.
    """
    if consultation.status not in (DRAFT, PUBLISHED):
        raise NotAllowed(N_("Cette consultation ne peut plus être annulée."))
    if not reason.strip():
        raise InvalidInput(N_("Indiquez le motif de l'annulation."), "reason")
    consultation.status = CANCELLED
    consultation.cancelled_at, consultation.cancel_reason = now, reason.strip()
    consultation.updated_at = now
    audit(consultation, actor, "Annulation", f"Motif : {reason.strip()}", now=now)
    session.flush()
    return consultation


def check_decidable(consultation: Consultation, lot: Lot, now: datetime) -> None:
    """A lot may be decided: its consultation is closed and the lot still open.

    :raises NotAllowed: the consultation is not closed, or the lot is already decided.
    """
    if consultation.state(now) != CLOSED:
        raise NotAllowed(N_("Un lot ne peut être attribué ou déclaré infructueux qu'une fois la consultation clôturée."))
    if lot.status != LOT_OPEN:
        raise NotAllowed(N_("Le lot n° %(number)d a déjà été attribué.") if lot.status == AWARDED
                         else N_("Le lot n° %(number)d a déjà été infructueux."), number=lot.number)


def decide_lot(session: Session, consultation: Consultation, lot: Lot, outcome: str, awardee: str, *, actor: Actor,
               now: datetime) -> Lot:
    """Award a lot or declare it unsuccessful once the consultation is closed; when every lot is
    decided the consultation is awarded (one lot awarded at least) or unsuccessful.

    :raises NotAllowed: see `check_decidable`.
    :raises InvalidInput: unknown outcome, awarded without an awardee.
    """
    check_decidable(consultation, lot, now)
    if outcome not in (AWARDED, UNSUCCESSFUL):
        raise InvalidInput(N_("Choisissez : attribuer le lot ou le déclarer infructueux."), "outcome")
    if outcome == AWARDED and not awardee.strip():
        raise InvalidInput(N_("Indiquez l'attributaire du lot."), "awardee")
    lot.status, lot.awardee, lot.decided_at = outcome, awardee.strip() if outcome == AWARDED else "", now
    detail = f"Lot {lot.number} attribué à {lot.awardee}" if outcome == AWARDED else f"Lot {lot.number} infructueux"
    audit(consultation, actor, "Décision sur un lot", detail, now=now)
    if all(other.status != LOT_OPEN for other in consultation.lots):
        consultation.status = AWARDED if any(o.status == AWARDED for o in consultation.lots) else UNSUCCESSFUL
        consultation.updated_at = now
    session.flush()
    return lot


# ---------------------------------------------------------------- tender documents (DCE)

ACCEPTED = (PDF, ZIP, *OFFICE)  # read from the content by the shell's upload path
ACCEPTED_TYPES = N_("PDF, ZIP ou document bureautique (Word, Excel, PowerPoint, OpenDocument)")


def store_dce(session: Session, files_dir: Path, consultation: Consultation, filename: str, stream: IO[bytes], *,
              max_bytes: int, actor: Actor, now: datetime) -> tuple[DceDocument, list[Withdrawal]]:
    """Store a new version of the DCE on disk under its SHA-256 (earlier versions stay downloadable).

    :returns: the new version, and the registrations to alert (none while the consultation is a draft).
    :raises NotAllowed: closed, cancelled or decided consultation.
    :raises shared.UploadRefused: empty, too big, or not an accepted type (by content).
    """
    if consultation.state(now) not in (DRAFT, PUBLISHED):
        raise NotAllowed(N_("Le DCE ne peut plus être modifié : la consultation n'est plus en cours."))
    upload = read_upload(stream, filename, max_bytes=max_bytes, accepted=ACCEPTED)
    storage_name = f"{upload.sha256}.{upload.extension}"
    store(files_dir / str(consultation.id), storage_name, upload.content)
    number = max((d.number for d in consultation.documents), default=0) + 1
    document = DceDocument(number=number, filename=upload.filename, content_type=upload.content_type,
                           size=upload.size, sha256=upload.sha256, storage_name=storage_name, uploaded_at=now,
                           uploaded_by=actor.name)
    consultation.documents.insert(0, document)
    audit(consultation, actor, "Dépôt du DCE" if number == 1 else "Remplacement du DCE",
          f"Version {number} : {document.filename} ({size_label(upload.size)}, SHA-256 {upload.sha256})", now=now)
    session.flush()
    return document, registrations(consultation) if consultation.status == PUBLISHED else []


def dce_path(files_dir: Path, consultation: Consultation, document: DceDocument) -> Path:
    return files_dir / str(consultation.id) / document.storage_name


# ---------------------------------------------------------------- registrations and alerts

def register_download(session: Session, consultation: Consultation, person: Actor, *, now: datetime) -> Withdrawal | None:
    """A logged-in download (or question) registers the person's structure for alerts; anonymous
    people and people without a current structure register nothing."""
    if not person.structure_siret or not consultation.is_public:
        return None
    found = session.scalar(select(Withdrawal).where(
        Withdrawal.consultation_id == consultation.id, Withdrawal.structure_siret == person.structure_siret,
        Withdrawal.person_sub == person.sub))
    if found is None:
        found = Withdrawal(consultation_id=consultation.id, structure_id=person.structure_id,
                           structure_siret=person.structure_siret, structure_name=person.structure_name,
                           person_sub=person.sub, first_at=now)
        session.add(found)
    found.person_email, found.person_name, found.last_at = person.email, person.name, now
    session.flush()
    return found


def registrations(consultation: Consultation) -> list[Withdrawal]:
    """Everyone to alert about this consultation: the downloaders of every registered structure."""
    session = object_session(consultation)
    assert session is not None
    rows = session.scalars(select(Withdrawal).where(Withdrawal.consultation_id == consultation.id)
                           .order_by(Withdrawal.id)).all()
    return [row for row in rows if row.person_email]


def registered_structures(session: Session, consultation: Consultation) -> list[tuple[str, str]]:
    """(SIRET, name) of the structures registered for this consultation's alerts."""
    rows = session.execute(select(Withdrawal.structure_siret, Withdrawal.structure_name)
                           .where(Withdrawal.consultation_id == consultation.id).distinct()
                           .order_by(Withdrawal.structure_name)).all()
    return [(siret, name) for siret, name in rows]


# ---------------------------------------------------------------- questions and answers

MAX_QUESTION = 4000


def ask(session: Session, consultation: Consultation, text: str, *, asker: Actor, now: datetime) -> Question:
    """A question on a published consultation until the question deadline; the asker's structure
    is registered for alerts (they will hear of the answer).

    :raises NotAllowed: not open for questions. :raises InvalidInput: empty or too long.
    """
    if not consultation.accepts_questions(now):
        raise NotAllowed(N_("Les questions sont closes pour cette consultation : la date limite des questions est passée."))
    text = text.strip()
    if not text:
        raise InvalidInput(N_("Saisissez votre question."), "text")
    if len(text) > MAX_QUESTION:
        raise InvalidInput(N_("%(num)d caractères au maximum."), "text", num=MAX_QUESTION)
    question = Question(text=text, asked_at=now, asker_sub=asker.sub, asker_email=asker.email,
                        structure_siret=asker.structure_siret, structure_name=asker.structure_name)
    consultation.questions.append(question)
    session.flush()
    register_download(session, consultation, asker, now=now)
    return question


def answer(session: Session, consultation: Consultation, question: Question, text: str, *, actor: Actor,
           now: datetime) -> list[Withdrawal]:
    """Publish (or correct) the buyer's answer; returns the registrations to alert.

    :raises NotAllowed: the consultation was cancelled. :raises InvalidInput: empty answer.
    """
    if consultation.status == CANCELLED:
        raise NotAllowed(N_("Cette consultation est annulée."))
    text = text.strip()
    if not text:
        raise InvalidInput(N_("Saisissez la réponse."), "answer")
    if len(text) > MAX_QUESTION:
        raise InvalidInput(N_("%(num)d caractères au maximum."), "answer", num=MAX_QUESTION)
    corrected = question.answered_at is not None
    question.answer, question.answered_at, question.answered_by = text, now, actor.name
    audit(consultation, actor, "Correction d'une réponse" if corrected else "Réponse à une question",
          f"Question n° {consultation.questions.index(question) + 1}", now=now)
    session.flush()
    return registrations(consultation)


# ---------------------------------------------------------------- the public list

def listing(session: Session, *, now: datetime, closed: bool = False, query: str = "", device: str = "") -> Select[tuple[Consultation]]:
    """Published consultations, current or closed (cancelled and decided ones are closed), by
    keyword and device, newest first."""
    stmt = select(Consultation).options(selectinload(Consultation.lots)).where(Consultation.published_at.is_not(None))
    if closed:
        stmt = stmt.where(or_(Consultation.status != PUBLISHED, Consultation.response_deadline <= now))
    else:
        stmt = stmt.where(Consultation.status == PUBLISHED, Consultation.response_deadline > now)
    if device:
        stmt = stmt.where(Consultation.device == device)
    keywords = search.matches(session, query)
    if keywords is not None:
        stmt = stmt.where(keywords)
    return stmt.order_by(Consultation.published_at.desc(), Consultation.id.desc())


def devices(session: Session) -> list[str]:
    """The devices of published consultations (the list's filter)."""
    return list(session.scalars(select(Consultation.device).where(Consultation.published_at.is_not(None))
                                .distinct().order_by(Consultation.device)))


def drafts_and_own(session: Session, structure_siret: str) -> list[Consultation]:
    """Every consultation of a buyer structure, newest first (its buyers' desk)."""
    return list(session.scalars(select(Consultation).where(Consultation.structure_siret == structure_siret)
                                .order_by(Consultation.created_at.desc(), Consultation.id.desc())))
