"""Organisation records (seed 004, "Modification de votre fiche organisme"): the domain core.

Editors change identification and "Infos OF" directly (each save is in the history); the SIRET,
the activity declaration number (NDA), the attachments and the contacts are read-only for them:
a change is a request ("demande particulière") a moderator handles. Once a year the organisation
attests "J'ai vérifié ma fiche"; a reminder goes out when the attestation is more than a year old.
The siège/établissement link comes from the IdP's service API (`structures:read`), cached.

Explicit arguments, flush never commit, no Flask (STYLE §3).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from apps.catalogue import referential
from apps.catalogue.models import ChangeRequest, Contact, Organisation, RecordEvent
from apps.catalogue.offers import Invalid, check_postal_code
from shared import N_, ApiUnavailable, ServiceClient, ascii_digits, check_version, utcnow

TOPICS = {"identification": N_("Identification (SIRET, numéro de déclaration d'activité)"),
          "rattachement": N_("Structures de rattachement"), "interlocuteurs": N_("Interlocuteurs")}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ATTESTATION_DAYS = 365


@dataclass
class IdentificationData:
    name: str
    sigle: str = ""
    address: str = ""
    postal_code: str = ""
    city: str = ""
    phone: str = ""
    email: str = ""
    website: str = ""


LABELS = {"name": "Raison sociale", "sigle": "Sigle", "address": "Adresse", "postal_code": "Code postal",
          "city": "Ville", "phone": "Téléphone", "email": "Courriel", "website": "Site web",
          "potential": "Potentiel de formation", "certification_keys": "Certifications préparées",
          "comment": "Commentaire divers"}


def find(session: Session, siret: str) -> Organisation | None:
    return session.scalar(select(Organisation).where(Organisation.siret == siret))


def ensure(session: Session, siret: str, name: str, structure_id: str = "") -> Organisation:
    """The record of a structure, created with its name when missing (its first editor's visit or
    SAM's first award: the Carif-Oref completes it)."""
    organisation = find(session, siret)
    if organisation is None:
        organisation = Organisation(siret=siret, name=name or f"Organisme {siret}", structure_id=structure_id,
                                    certification_keys=[])
        session.add(organisation)
        session.flush()
    elif structure_id and not organisation.structure_id:
        organisation.structure_id = structure_id
    return organisation


def _record(session: Session, organisation: Organisation, actor: str, summary: str,
            changes: list[list[str]] | None = None) -> None:
    session.add(RecordEvent(organisation_id=organisation.id, actor=actor, summary=summary, changes=changes or []))


def _changes(organisation: Organisation, values: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, value in values.items():
        before = getattr(organisation, name)
        if before != value:
            rows.append([LABELS.get(name, name), _text(name, before), _text(name, value)])
    return rows


def _text(name: str, value: Any) -> str:
    if name == "certification_keys":
        found = [referential.certification(item["key"]) for item in value or []]
        return ", ".join(c.label for c in found if c) or "—"
    return str(value) if value not in (None, "") else "—"


def update_identification(session: Session, organisation: Organisation, data: IdentificationData, *, actor: str,
                          expected_version: Any) -> list[list[str]]:
    """Change the editable identification fields (raison sociale, address, phone, mail, web).

    :returns: the changes made (empty: nothing changed, nothing is recorded — seed 004: "Vous ne
        pouvez enregistrer votre fiche organisme que si vous avez effectué des modifications").
    :raises StaleVersion: prepared from another version (409). :raises Invalid: a bad postal code or mail.
    """
    check_version(organisation, expected_version)
    values = {k: v.strip() for k, v in asdict(data).items()}
    if not values["name"]:
        raise Invalid(N_("La raison sociale est obligatoire."), "name")
    if values["postal_code"]:
        check_postal_code(values["postal_code"], "postal_code")
    if values["email"] and not EMAIL.match(values["email"]):
        raise Invalid(N_("Saisissez une adresse e-mail valide."), "email")
    return _apply(session, organisation, values, actor, "Identification modifiée")


def update_potential(session: Session, organisation: Organisation, potential: str, certifications: Iterable[tuple[str, str]],
                     *, actor: str, expected_version: Any) -> list[list[str]]:
    """Change the training potential and the certifications prepared (each with its comment).

    :raises Invalid: a certification not in the referential.
    """
    check_version(organisation, expected_version)
    items = []
    for key, comment in certifications:
        if referential.certification(key) is None:
            raise Invalid(N_("Cette certification n'est pas dans le référentiel."), "certifications")
        items.append({"key": key, "comment": comment.strip()[:500]})
    return _apply(session, organisation, {"potential": potential.strip(), "certification_keys": items}, actor,
                  "Infos OF modifiées")


def _apply(session: Session, organisation: Organisation, values: dict[str, Any], actor: str,
           summary: str) -> list[list[str]]:
    changes = _changes(organisation, values)
    if not changes:
        return []
    for name, value in values.items():
        setattr(organisation, name, value)
    _record(session, organisation, actor, summary, changes)
    session.flush()
    return changes


def attest_checked(session: Session, organisation: Organisation, *, actor: str, comment: str,
                   expected_version: Any, now: datetime) -> None:
    """"J'ai vérifié ma fiche": the proof the organisation validated what is published about it."""
    check_version(organisation, expected_version)
    organisation.checked_at, organisation.checked_by, organisation.reminded_at = now, actor, None
    if comment.strip() != organisation.comment:
        organisation.comment = comment.strip()
    _record(session, organisation, actor, "Fiche vérifiée (attestation annuelle)")
    session.flush()


def attestation_due(organisation: Organisation, now: datetime) -> bool:
    """True when the record was never checked, or more than a year ago."""
    return organisation.checked_at is None or now - organisation.checked_at > timedelta(days=ATTESTATION_DAYS)


def reminders_due(session: Session, now: datetime) -> list[Organisation]:
    """Records whose attestation is more than a year old (or missing), with a mail address, not
    reminded in the last 30 days: the yearly reminder goes to each once a month at most."""
    year_ago, month_ago = now - timedelta(days=ATTESTATION_DAYS), now - timedelta(days=30)
    query = (select(Organisation)
             .where(or_(Organisation.checked_at.is_(None), Organisation.checked_at < year_ago))
             .where(or_(Organisation.reminded_at.is_(None), Organisation.reminded_at < month_ago))
             .where(Organisation.email != "")
             .order_by(Organisation.id))
    return list(session.scalars(query))


def mark_reminded(organisations: Iterable[Organisation], now: datetime) -> None:
    for organisation in organisations:
        organisation.reminded_at = now


def request_change(session: Session, organisation: Organisation, topic: str, text: str, *, actor: str,
                   email: str) -> ChangeRequest:
    """A "demande particulière" on read-only data; a moderator handles it.

    :raises Invalid: unknown topic, empty text.
    """
    if topic not in TOPICS:
        raise Invalid(N_("Choisissez l'objet de la demande."), "topic")
    if not text.strip():
        raise Invalid(N_("Décrivez la modification demandée."), "text")
    request = ChangeRequest(organisation_id=organisation.id, topic=topic, text=text.strip()[:4000], requested_by=actor,
                            requested_email=email)
    session.add(request)
    _record(session, organisation, actor, f"Demande particulière : {TOPICS[topic]}")
    session.flush()
    return request


def decide_request(session: Session, request: ChangeRequest, *, accept: bool, answer: str, actor: str,
                   siret: str = "", nda: str = "") -> None:
    """A moderator handles a request; accepting an identification request may set the NDA (and
    the SIRET, which must stay the IdP's: only a SIRET unused by another record).

    :raises Invalid: already handled, a refusal without an answer, a malformed NDA or SIRET.
    """
    if request.status != "pending":
        raise Invalid(N_("Cette demande a déjà été traitée."))
    if not accept and not answer.strip():
        raise Invalid(N_("Expliquez le refus à l'organisme."), "answer")
    organisation = request.organisation
    changes: list[list[str]] = []
    if accept and nda.strip():
        if not ascii_digits(nda.strip(), 11):
            raise Invalid(N_("Le numéro de déclaration d'activité comporte 11 chiffres."), "nda")
        changes.append(["Numéro de déclaration d'activité", organisation.nda or "—", nda.strip()])
        organisation.nda = nda.strip()
    if accept and siret.strip() and siret.strip() != organisation.siret:
        if not ascii_digits(siret.strip(), 14):
            raise Invalid(N_("Le SIRET comporte 14 chiffres."), "siret")
        if find(session, siret.strip()) is not None:
            raise Invalid(N_("Une autre fiche porte déjà ce SIRET."), "siret")
        changes.append(["SIRET", organisation.siret, siret.strip()])
        organisation.siret = siret.strip()
    request.status = "done" if accept else "refused"
    request.decided_by, request.decided_at, request.answer = actor, utcnow(), answer.strip()
    _record(session, organisation, actor, f"Demande particulière {'traitée' if accept else 'refusée'}", changes)
    session.flush()


def add_contact(session: Session, organisation: Organisation, *, last_name: str, first_name: str = "",
                civility: str = "", function: str = "", phone: str = "", email: str = "", actor: str) -> Contact:
    """A moderator records an interlocuteur.

    :raises Invalid: no name, or neither phone nor mail.
    """
    if not last_name.strip():
        raise Invalid(N_("Le nom de l'interlocuteur est obligatoire."), "last_name")
    if not (phone.strip() or email.strip()):
        raise Invalid(N_("Indiquez un téléphone ou un courriel."), "phone")
    if email.strip() and not EMAIL.match(email.strip()):
        raise Invalid(N_("Saisissez une adresse e-mail valide."), "email")
    contact = Contact(last_name=last_name.strip(), first_name=first_name.strip(), civility=civility.strip(),
                      function=function.strip(), phone=phone.strip(), email=email.strip())
    organisation.contacts.append(contact)
    _record(session, organisation, actor, f"Interlocuteur ajouté : {contact.full_name}")
    session.flush()
    return contact


# ---------------------------------------------------------------- siège and établissements (IdP)

def refresh_links(session: Session, api: ServiceClient, siege: Organisation, now: datetime,
                  ttl: timedelta) -> list[Organisation]:
    """The établissements of a siège: records of the same SIREN whose IdP structure names it as its
    siège. Each record's link is asked of the IdP at most once per `ttl`; when the IdP does not
    answer, the last known link is kept (the page still works)."""
    candidates = session.scalars(select(Organisation).where(Organisation.siret.like(f"{siege.siret[:9]}%"))
                                 .where(Organisation.siret != siege.siret)).all()
    for organisation in candidates:
        if organisation.links_checked_at is not None and now - organisation.links_checked_at < ttl:
            continue
        try:
            found = api.json("GET", f"/structures/{organisation.siret}", missing_ok=True)
        except ApiUnavailable:
            continue
        organisation.parent_siret = str((found or {}).get("parent_siret") or "")
        if found and found.get("id"):
            organisation.structure_id = str(found["id"])
        organisation.links_checked_at = now
    session.flush()
    return [o for o in candidates if o.parent_siret == siege.siret]


def refresh_own_link(session: Session, api: ServiceClient, organisation: Organisation, now: datetime,
                     ttl: timedelta) -> None:
    """The record's own siège, asked of the IdP at most once per `ttl` (kept when it does not answer)."""
    if organisation.links_checked_at is not None and now - organisation.links_checked_at < ttl:
        return
    try:
        found = api.json("GET", f"/structures/{organisation.siret}", missing_ok=True)
    except ApiUnavailable:
        return
    organisation.parent_siret = str((found or {}).get("parent_siret") or "")
    organisation.links_checked_at = now
    session.flush()


def establishments(session: Session, organisation: Organisation) -> list[Organisation]:
    """The known établissements of a siège (as last read from the IdP)."""
    return list(session.scalars(select(Organisation).where(Organisation.parent_siret == organisation.siret)
                                .order_by(Organisation.name)))
