"""Training offers and their moderation (SPEC §9, issue 14 §3-4, seed 004): the domain core.

An offer is one LHEO *formation* (title, objectives, results, content, certification, domain
codes) with its *actions* (place, public, entry mode, accessibility, …) and their *sessions*
(dates, registration address, recruitment state, exactly one contact). It is edited as one
JSON document; each change an editor saves lands in the offer's open *pending* version (opened
by the first save after a decision); the published version stays public until a moderator
publishes the pending one, or returns it with a comment.

Functions take explicit arguments, raise `CatalogueError` with a French message, flush but
never commit, and know nothing of Flask (STYLE §3).
"""

from __future__ import annotations

import copy
import secrets
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from apps.catalogue import referential
from apps.catalogue.models import Contact, Offer, OfferVersion, Organisation
from shared import N_, DomainError, ascii_digits, check_version, utcnow

ENTRY_MODES = {"fixes": N_("Entrées et sorties à dates fixes"), "permanentes": N_("Entrées et sorties permanentes")}
RECRUITMENT = {"1": N_("Ouvert"), "2": N_("Fermé"), "3": N_("Suspendu")}  # LHEO dict-etat-recrutement
TEACHING = {"0": N_("En présentiel"), "1": N_("Mixte (présentiel et à distance)"), "2": N_("Entièrement à distance")}
PATHS = {"1": N_("En groupe"), "2": N_("Individualisé"), "3": N_("Modularisé"), "4": N_("Mixte")}  # LHEO dict-type-parcours
LEVELS = {  # LHEO dict-niveaux
    "0": N_("Information non communiquée"), "1": N_("Sans niveau spécifique"), "2": N_("Niveau VI (illettrisme, analphabétisme)"),
    "3": N_("Niveau V bis (préqualification)"), "4": N_("Niveau V (CAP, BEP)"), "5": N_("Niveau IV (baccalauréat, BP, BT)"),
    "6": N_("Niveau III (BTS, DUT)"), "7": N_("Niveau II (licence, maîtrise)"), "8": N_("Niveau I (supérieur à la maîtrise)"),
}
PUBLICS = {  # Formacode V10 codes of public visé (LHEO code-public-vise, ref="V10")
    "83056": N_("Tout public"), "80006": N_("Demandeur d'emploi"), "80009": N_("Demandeur d'emploi moins de 26 ans"),
    "80003": N_("Demandeur d'emploi plus de 26 ans"), "80005": N_("Bénéficiaire du revenu de solidarité active"),
    "81020": N_("Handicapé"), "81024": N_("Jeune"), "82044": N_("Salarié"), "82045": N_("Salarié en reconversion"),
    "82027": N_("Public dans le cadre du contrat d'apprentissage"),
    "82029": N_("Public dans le cadre du contrat de professionnalisation"), "82055": N_("Agent de la fonction publique"),
    "81050": N_("Particulier, individuel"),
}
DECISIONS = {"pending": N_("En attente de validation"), "published": N_("Publiée"), "returned": N_("Renvoyée pour correction"),
             "replaced": N_("Remplacée avant décision")}
STATUSES = {"pending": N_("En attente de validation"), "returned": N_("Renvoyée pour correction"), "published": N_("Publiée"),
            "draft": N_("Brouillon")}
ONE_CONTACT = N_("Indiquez un et un seul contact pour cette session : choisissez un interlocuteur ou saisissez-en un.")


class CatalogueError(DomainError):
    """A refusal of the Catalogue's rules."""


class Invalid(CatalogueError):
    pass


class NotFound(CatalogueError):
    pass


# ---------------------------------------------------------------- what the forms and the API collect

@dataclass
class FormationData:
    title: str
    objectives: str
    content: str
    expected_results: str = ""
    prerequisites: str = ""
    certifying: bool = False
    certification_key: str = ""
    formacodes: list[str] = field(default_factory=list)
    romes: list[str] = field(default_factory=list)
    nsf: list[str] = field(default_factory=list)
    entry_level: str = "0"
    path: str = "1"
    keywords: str = ""


@dataclass
class ActionData:
    address: str
    postal_code: str
    city: str
    place_name: str = ""
    publics: list[str] = field(default_factory=lambda: ["83056"])
    public_info: str = ""
    entry_mode: str = "fixes"
    rhythm: str = ""
    teaching_mode: str = "0"
    hours: int | None = None
    entry_level_required: bool = False
    accessibility: str = ""
    transport: str = ""
    accommodation: str = ""
    catering: str = ""
    funders: str = ""


@dataclass
class ContactData:
    name: str
    function: str = ""
    phone: str = ""
    email: str = ""

    def filled(self) -> bool:
        return any(v.strip() for v in (self.name, self.function, self.phone, self.email))


@dataclass
class SessionData:
    start: date
    end: date
    registration_address: str
    registration_postal_code: str
    registration_city: str
    recruitment: str = "1"
    contact_ids: list[str] = field(default_factory=list)
    new_contact: ContactData | None = None


def new_key() -> str:
    return secrets.token_hex(4)


# ---------------------------------------------------------------- the document

def formation_part(data: FormationData) -> dict[str, Any]:
    """The formation part of a document, checked: known codes, a certification from the referential.

    :raises Invalid: an unknown certification or code, or a certifying offer without certification.
    """
    certification = None
    if data.certification_key:
        found = referential.certification(data.certification_key)
        if found is None:
            raise Invalid(N_("Cette certification n'est pas dans le référentiel."), "certification_key")
        certification = {"key": found.key, "label": found.label, "rncp": found.rncp, "certifinfo": found.certifinfo,
                         "level": found.level}
    if data.certifying and certification is None:
        raise Invalid(N_("Une formation certifiante prépare une certification : choisissez-la dans le référentiel."),
                      "certification_key")
    codes: dict[str, list[str]] = {}
    for kind, values, limit in (("formacode", data.formacodes, 5), ("rome", data.romes, 5), ("nsf", data.nsf, 3)):
        known, unknown = referential.clean_codes(kind, values, limit)
        if unknown:
            message = (N_("Codes %(kind)s inconnus du référentiel : %(codes)s.") if len(unknown) > 1
                       else N_("Code %(kind)s inconnu du référentiel : %(codes)s."))
            raise Invalid(message, f"{kind}s" if kind != "nsf" else "nsf", kind=referential.KINDS[kind],
                          codes=", ".join(unknown))
        codes[kind] = known
    if data.entry_level not in LEVELS:
        raise Invalid(N_("Niveau d'entrée inconnu."), "entry_level")
    if data.path not in PATHS:
        raise Invalid(N_("Type de parcours inconnu."), "path")
    return {
        "title": data.title.strip(), "objectives": data.objectives.strip(), "content": data.content.strip(),
        "expected_results": data.expected_results.strip(), "prerequisites": data.prerequisites.strip(),
        "certifying": bool(data.certifying and certification), "certification": certification,
        "formacodes": codes["formacode"], "romes": codes["rome"], "nsf": codes["nsf"],
        "entry_level": data.entry_level, "path": data.path, "keywords": data.keywords.strip(),
    }


def apply_certification(data: FormationData, key: str) -> FormationData:
    """Picking a certification fills the title (its official label) and the domain codes (seed 004)."""
    found = referential.certification(key)
    if found is None:
        raise Invalid(N_("Cette certification n'est pas dans le référentiel."), "certification_key")
    data.certification_key = found.key
    data.certifying = True
    data.title = found.label
    data.formacodes = list(dict.fromkeys([*found.formacodes, *data.formacodes]))[:5]
    data.romes = list(dict.fromkeys([*found.romes, *data.romes]))[:5]
    data.nsf = list(dict.fromkeys([*found.nsf, *data.nsf]))[:3]
    return data


def formation_data(doc: dict[str, Any]) -> FormationData:
    """The form values of a document's formation part."""
    f = doc["formation"]
    return FormationData(
        title=f["title"], objectives=f["objectives"], content=f["content"], expected_results=f.get("expected_results", ""),
        prerequisites=f.get("prerequisites", ""), certifying=f.get("certifying", False),
        certification_key=(f.get("certification") or {}).get("key", ""), formacodes=list(f.get("formacodes", [])),
        romes=list(f.get("romes", [])), nsf=list(f.get("nsf", [])), entry_level=f.get("entry_level", "0"),
        path=f.get("path", "1"), keywords=f.get("keywords", ""))


def action_part(data: ActionData, key: str, sessions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An action, checked.

    :raises Invalid: an unknown entry mode, public or teaching mode, a bad postal code.
    """
    if data.entry_mode not in ENTRY_MODES:
        raise Invalid(N_("Choisissez la modalité d'entrée : dates fixes ou entrées permanentes."), "entry_mode")
    unknown = [p for p in data.publics if p not in PUBLICS]
    if unknown or not data.publics:
        raise Invalid(N_("Choisissez au moins un public visé dans la liste."), "publics")
    if data.teaching_mode not in TEACHING:
        raise Invalid(N_("Modalité d'enseignement inconnue."), "teaching_mode")
    check_postal_code(data.postal_code, "postal_code")
    if data.hours is not None and not 0 < data.hours <= 10000:
        raise Invalid(N_("La durée en heures doit être comprise entre 1 et 10 000."), "hours")
    return {
        "key": key, "place_name": data.place_name.strip(), "address": data.address.strip(),
        "postal_code": data.postal_code.strip(), "city": data.city.strip(), "publics": list(dict.fromkeys(data.publics))[:10],
        "public_info": data.public_info.strip(), "entry_mode": data.entry_mode, "rhythm": data.rhythm.strip(),
        "teaching_mode": data.teaching_mode, "hours": data.hours, "entry_level_required": data.entry_level_required,
        "accessibility": data.accessibility.strip(), "transport": data.transport.strip(),
        "accommodation": data.accommodation.strip(), "catering": data.catering.strip(), "funders": data.funders.strip(),
        "sessions": sessions or [],
    }


def action_data(action: dict[str, Any]) -> ActionData:
    names = ActionData.__dataclass_fields__
    return ActionData(**{k: action[k] for k in names if k in action})


def check_postal_code(value: str, field_name: str) -> None:
    value = value.strip()
    if not ascii_digits(value, 5):  # not "²²²²²"
        raise Invalid(N_("Le code postal comporte 5 chiffres."), field_name)


def resolve_contact(organisation: Organisation, contact_ids: list[str], new: ContactData | None) -> dict[str, Any]:
    """The session's contact: exactly one, an interlocuteur of the organisation or one typed in
    (seed 004: "Le contact pour la session est obligatoire (1 et 1 seul contact)").

    :raises Invalid: none, or more than one.
    """
    chosen = [c for c in dict.fromkeys(i.strip() for i in contact_ids) if c]
    typed = new is not None and new.filled()
    if len(chosen) + int(typed) != 1:
        raise Invalid(ONE_CONTACT, "contact")
    if typed:
        assert new is not None
        if not new.name.strip() or not (new.phone.strip() or new.email.strip()):
            raise Invalid(N_("Pour un nouveau contact, indiquez son nom et un téléphone ou un courriel."), "contact")
        return {"contact_id": None, "name": new.name.strip(), "function": new.function.strip(),
                "phone": new.phone.strip(), "email": new.email.strip()}
    contact = next((c for c in organisation.contacts if str(c.id) == chosen[0]), None)
    if contact is None:
        raise Invalid(N_("Ce contact n'est pas un interlocuteur de l'organisme."), "contact")
    return contact_snapshot(contact)


def contact_snapshot(contact: Contact) -> dict[str, Any]:
    return {"contact_id": contact.id, "name": contact.full_name, "function": contact.function,
            "phone": contact.phone, "email": contact.email}


def session_part(organisation: Organisation, data: SessionData, key: str) -> dict[str, Any]:
    """A session, checked: dates in order, a registration address, a recruitment state, one contact.

    :raises Invalid: with the field concerned.
    """
    if data.end < data.start:
        raise Invalid(N_("La date de fin doit être postérieure ou égale à la date de début."), "end")
    if data.recruitment not in RECRUITMENT:
        raise Invalid(N_("État du recrutement inconnu."), "recruitment")
    check_postal_code(data.registration_postal_code, "registration_postal_code")
    contact = resolve_contact(organisation, data.contact_ids, data.new_contact)
    return {"key": key, "start": data.start.isoformat(), "end": data.end.isoformat(),
            "registration_address": data.registration_address.strip(),
            "registration_postal_code": data.registration_postal_code.strip(),
            "registration_city": data.registration_city.strip(), "recruitment": data.recruitment, "contact": contact}


def session_data(item: dict[str, Any]) -> SessionData:
    contact = item.get("contact") or {}
    ids = [str(contact["contact_id"])] if contact.get("contact_id") else []
    new = None if ids else ContactData(contact.get("name", ""), contact.get("function", ""), contact.get("phone", ""),
                                        contact.get("email", ""))
    return SessionData(start=date.fromisoformat(item["start"]), end=date.fromisoformat(item["end"]),
                       registration_address=item["registration_address"],
                       registration_postal_code=item["registration_postal_code"],
                       registration_city=item["registration_city"], recruitment=item["recruitment"],
                       contact_ids=ids, new_contact=new)


def find_action(doc: dict[str, Any], key: str) -> dict[str, Any]:
    """:raises NotFound: no such action in the document."""
    action = next((a for a in doc["actions"] if a["key"] == key), None)
    if action is None:
        raise NotFound(N_("Cette action n'existe pas."))
    return action


def find_session(action: dict[str, Any], key: str) -> dict[str, Any]:
    """:raises NotFound: no such session in the action."""
    found = next((s for s in action["sessions"] if s["key"] == key), None)
    if found is None:
        raise NotFound(N_("Cette session n'existe pas."))
    return found


def with_formation(doc: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    out["formation"] = part
    return out


def with_action(doc: dict[str, Any], data: ActionData, key: str | None = None) -> tuple[dict[str, Any], str]:
    """The document with a new action (no key) or an edited one; returns (document, action key)."""
    out = copy.deepcopy(doc)
    if key is None:
        key = new_key()
        out["actions"].append(action_part(data, key))
    else:
        action = find_action(out, key)
        action.update(action_part(data, key, action["sessions"]))
    return out, key


def without_action(doc: dict[str, Any], key: str) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    find_action(out, key)
    out["actions"] = [a for a in out["actions"] if a["key"] != key]
    return out


def with_session(doc: dict[str, Any], organisation: Organisation, action_key: str, data: SessionData,
                 key: str | None = None) -> tuple[dict[str, Any], str]:
    """The document with a new session (no key) or an edited one; returns (document, session key)."""
    out = copy.deepcopy(doc)
    action = find_action(out, action_key)
    if key is None:
        key = new_key()
        action["sessions"].append(session_part(organisation, data, key))
    else:
        existing = find_session(action, key)
        existing.update(session_part(organisation, data, key))
    action["sessions"].sort(key=lambda s: (s["start"], s["end"]))
    return out, key


def with_duplicate(doc: dict[str, Any], action_key: str, key: str) -> tuple[dict[str, Any], str]:
    """The document with a copy of a session (seed 004: duplicate, then set the new dates)."""
    out = copy.deepcopy(doc)
    action = find_action(out, action_key)
    copy_ = copy.deepcopy(find_session(action, key))
    copy_["key"] = new_key()
    action["sessions"].append(copy_)
    return out, copy_["key"]


def without_session(doc: dict[str, Any], action_key: str, key: str) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    action = find_action(out, action_key)
    find_session(action, key)
    action["sessions"] = [s for s in action["sessions"] if s["key"] != key]
    return out


def missing_parts(doc: dict[str, Any]) -> list[str]:
    """What keeps a document from being published (LHEO: a formation has actions, an action sessions)."""
    problems = []
    f = doc["formation"]
    for name, label in (("title", "l'intitulé"), ("objectives", "les objectifs"), ("content", "le contenu")):
        if not f.get(name):
            problems.append(f"La formation n'a pas {label}.")
    if not doc["actions"]:
        problems.append("La formation n'a aucune action : ajoutez-en une (lieu, public, modalités).")
    for number, action in enumerate(doc["actions"], 1):
        if not action["sessions"]:
            problems.append(f"L'action {number} ({action['city']}) n'a aucune session.")
        for session in action["sessions"]:
            if not session.get("contact"):
                problems.append(f"Une session de l'action {number} n'a pas de contact.")
    return problems


def new_document(formation: dict[str, Any]) -> dict[str, Any]:
    return {"formation": formation, "actions": []}


# ---------------------------------------------------------------- saving and moderating

def create_offer(session: Session, organisation: Organisation, formation: dict[str, Any], *, actor: str,
                 email: str = "", source: tuple[str, str] | None = None, actions: list[dict[str, Any]] | None = None) -> Offer:
    """A new offer whose first version is pending (the Carif-Oref validates before publication)."""
    doc = new_document(formation)
    doc["actions"] = actions or []
    offer = Offer(organisation=organisation, document=doc, title=formation["title"],
                  source_client=source[0] if source else None, source_ref=source[1] if source else None)
    session.add(offer)
    session.flush()
    _open_version(session, offer, actor=actor, email=email)
    return offer


def save_document(session: Session, offer: Offer, doc: dict[str, Any], *, actor: str, email: str,
                  expected_version: Any) -> bool:
    """Store an edited document in the offer's pending version, opening one when none is open.

    Seed 004: "Vous ne pouvez enregistrer que si vous avez fait des modifications" — a document
    equal to the current one is not stored (nor mailed about), unless the offer was returned: then
    sending it back as it is asks the moderator to look again.

    :returns: False when nothing was stored; True otherwise (each save is confirmed by mail).
    :raises StaleVersion: the form was prepared from another version of the offer (409).
    """
    check_version(offer, expected_version)
    if doc == offer.document and not offer.returned:
        return False
    offer.document = doc
    offer.title = doc["formation"]["title"]
    pending = session.get(OfferVersion, offer.pending_version_id) if offer.pending_version_id else None
    if pending is not None:
        pending.data = copy.deepcopy(doc)
        pending.submitted_by, pending.submitted_email, pending.submitted_at = actor, email or pending.submitted_email, utcnow()
        session.flush()
        return True
    _open_version(session, offer, actor=actor, email=email)
    return True


def _open_version(session: Session, offer: Offer, *, actor: str, email: str) -> OfferVersion:
    number = (session.scalar(select(func.max(OfferVersion.number)).where(OfferVersion.offer_id == offer.id)) or 0) + 1
    version = OfferVersion(offer_id=offer.id, number=number, data=copy.deepcopy(offer.document), submitted_by=actor,
                           submitted_email=email)
    session.add(version)
    session.flush()
    offer.pending_version_id = version.id
    offer.returned = False
    session.flush()
    return version


def pending_version(session: Session, offer: Offer) -> OfferVersion:
    """:raises Invalid: nothing awaits a decision."""
    version = session.get(OfferVersion, offer.pending_version_id) if offer.pending_version_id else None
    if version is None:
        raise Invalid(N_("Aucune modification de cette offre n'attend de décision."))
    return version


def publish(session: Session, offer: Offer, *, actor: str, expected_version: Any) -> OfferVersion:
    """Publish the pending version: it becomes the public one (the search index follows).

    :raises StaleVersion: the offer changed since the moderator opened it (409).
    :raises Invalid: nothing pending, or the document is incomplete (no action, no session, …).
    """
    check_version(offer, expected_version)
    version = pending_version(session, offer)
    problems = missing_parts(version.data)
    if problems:
        raise Invalid("Cette version ne peut pas être publiée : " + " ".join(problems))
    version.decision, version.decided_by, version.decided_at = "published", actor, utcnow()
    offer.published_version_id = version.id
    offer.pending_version_id = None
    offer.returned = False
    session.flush()
    return version


def return_for_correction(session: Session, offer: Offer, *, actor: str, comment: str,
                          expected_version: Any) -> OfferVersion:
    """Return the pending version with a comment; the published version (if any) stays public.

    :raises Invalid: no comment, or nothing pending.
    """
    check_version(offer, expected_version)
    if not comment.strip():
        raise Invalid(N_("Expliquez à l'organisme ce qu'il doit corriger."), "comment")
    version = pending_version(session, offer)
    version.decision, version.decided_by, version.decided_at = "returned", actor, utcnow()
    version.comment = comment.strip()
    offer.pending_version_id = None
    offer.returned = True
    session.flush()
    return version


def published_document(session: Session, offer: Offer) -> dict[str, Any] | None:
    version = session.get(OfferVersion, offer.published_version_id) if offer.published_version_id else None
    return version.data if version else None


# ---------------------------------------------------------------- history: field-by-field differences
# Computed when the history page is shown, in the page's language (nothing of it is stored).

FIELD_LABELS = {
    "title": N_("Intitulé"), "objectives": N_("Objectifs"), "content": N_("Contenu"), "expected_results": N_("Résultats attendus"),
    "prerequisites": N_("Prérequis"), "certifying": N_("Certifiante"), "certification": N_("Certification"),
    "formacodes": N_("Formacode"), "romes": N_("ROME"), "nsf": N_("NSF"), "entry_level": N_("Niveau d'entrée"), "path": N_("Parcours"),
    "keywords": N_("Mots-clés"), "place_name": N_("Lieu"), "address": N_("Adresse"), "postal_code": N_("Code postal"), "city": N_("Ville"),
    "publics": N_("Public visé"), "public_info": N_("Précisions sur le public"), "entry_mode": N_("Modalité d'entrée"),
    "rhythm": N_("Rythme"), "teaching_mode": N_("Enseignement"), "hours": N_("Durée (heures)"),
    "entry_level_required": N_("Niveau d'entrée obligatoire"), "accessibility": N_("Accessibilité"), "transport": N_("Transport"),
    "accommodation": N_("Hébergement"), "catering": N_("Restauration"), "funders": N_("Financeurs"), "start": N_("Début"),
    "end": N_("Fin"), "registration_address": N_("Adresse d'inscription"), "registration_postal_code": N_("Code postal d'inscription"),
    "registration_city": N_("Ville d'inscription"), "recruitment": N_("Recrutement"), "contact": N_("Contact"),
}


def _show(name: str, value: Any) -> str:
    if value in (None, "", [], {}):
        return "—"
    if isinstance(value, bool):
        return _("oui") if value else _("non")
    if name == "certification" and isinstance(value, dict):
        return str(value.get("label", ""))
    if name == "contact" and isinstance(value, dict):
        return ", ".join(str(value[k]) for k in ("name", "phone", "email") if value.get(k))
    if name in ("start", "end"):
        return date.fromisoformat(value).strftime("%d/%m/%Y")
    if name == "entry_mode":
        return _(ENTRY_MODES[value]) if value in ENTRY_MODES else value
    if name == "recruitment":
        return _(RECRUITMENT[value]) if value in RECRUITMENT else value
    if name == "publics":
        return ", ".join(_(PUBLICS[v]) if v in PUBLICS else v for v in value)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _label(name: str) -> str:
    return _(FIELD_LABELS[name]) if name in FIELD_LABELS else name


def _flatten(doc: dict[str, Any] | None) -> dict[str, tuple[str, str]]:
    """{stable path: (human label, shown value)} of a document."""
    out: dict[str, tuple[str, str]] = {}
    if not doc:
        return out
    for name, value in doc["formation"].items():
        out[f"f.{name}"] = (_("Formation › %(field)s", field=_label(name)), _show(name, value))
    for action in doc["actions"]:
        where = action.get("city") or action["key"]
        for name, value in action.items():
            if name in ("key", "sessions"):
                continue
            out[f"a.{action['key']}.{name}"] = (_("Action (%(place)s) › %(field)s", place=where, field=_label(name)),
                                                _show(name, value))
        for item in action["sessions"]:
            when = _show("start", item["start"])
            for name, value in item.items():
                if name == "key":
                    continue
                out[f"s.{item['key']}.{name}"] = (
                    _("Action (%(place)s) › Session du %(date)s › %(field)s", place=where, date=when, field=_label(name)),
                    _show(name, value))
    return out


def diff(before: dict[str, Any] | None, after: dict[str, Any]) -> list[tuple[str, str, str]]:
    """[(field, before, after)] for every field that differs (added and removed parts included)."""
    old, new = _flatten(before), _flatten(after)
    rows = []
    for path in list(dict.fromkeys([*new, *old])):
        label = (new.get(path) or old[path])[0]
        was, now = old.get(path, (label, "—"))[1], new.get(path, (label, "—"))[1]
        if was != now:
            rows.append((label, was, now))
    return rows


def history(offer: Offer) -> list[tuple[OfferVersion, list[tuple[str, str, str]]]]:
    """Every version, newest first, with its differences from the version before it."""
    rows = []
    previous: dict[str, Any] | None = None
    for version in offer.versions:
        rows.append((version, diff(previous, version.data)))
        previous = version.data
    return list(reversed(rows))
