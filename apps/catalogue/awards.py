"""SAM's awarded offers, received as pending actions (SPEC §7 "Flux vers le CARIF-OREF", §9).

The contract of `POST /api/v1/actions` (scope `catalogue:write`, `Content-Type: application/json`)::

    {
      "award_id": "sam-award-42",          # required, 1-200 chars: the sender's id of the award;
                                           #   the same id twice (from the same client) creates one offer
      "siret": "12345678200010",           # required: the winner's SIRET (14 digits, Luhn-valid)
      "organisation_name": "Formation Plus",  # optional: names the record when it must be created
      "title": "Maçon",                    # required, ≤ 255: the training's title (the lot's)
      "objectives": "…",                   # required, ≤ 3000
      "content": "…",                      # required, ≤ 3000
      "prerequisites": "…",                # optional, ≤ 3000
      "expected_results": "…",             # optional, ≤ 3000
      "accessibility": "…",                # optional, ≤ 250: access for people with disabilities
      "formacode": "22403",                # optional: a Formacode of the referential (or "formacodes": [...], ≤ 5)
      "hours": 420,                        # optional: duration in hours (1-10000)
      "consultation": "2027-AO-012",       # optional: the consultation's reference (kept in the keywords)
      "contact": {"name": "…", "phone": "…", "email": "…"},   # required: the sessions' one contact
                                           #   (name, and a phone or an e-mail)
      "sites": [                           # required, 1-20 delivery sites: one action each
        {"name": "Centre de Lyon",         # optional
         "address": "1 rue …",             # required, ≤ 200
         "postal_code": "69003",           # required, 5 digits
         "city": "Lyon",                   # required, ≤ 100
         "sessions": [                     # required, 1-50 per site
           {"start": "2027-01-11", "end": "2027-06-30"}   # ISO dates, end ≥ start
         ]}
      ]
    }

Answers: `201 Created` with `{"id", "status": "pending", "award_id", "siret", "created": true}` and
`Location`; the same `award_id` again: `200` with the same offer (`"created": false`), whatever the
body. Errors are RFC 9457 problems: 415 (not JSON), 400 (malformed JSON), 422 with
`errors: [{"field", "message"}]`; 401 / 403 for the token (no token, wrong audience, no scope).

The offer is created for the winner's organisation record (created when missing), pending
moderation: it is public only once a moderator publishes it. Its sessions are registered at
the site's address, recruitment open.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from stdnum.exceptions import ValidationError
from stdnum.fr import siret as siret_number

from apps.catalogue import organisations, referential
from apps.catalogue.models import Offer
from apps.catalogue.offers import create_offer as create
from apps.catalogue.offers import new_key
from shared import FIRST_DAY, LAST_DAY, DayOutOfRange, ascii_digits, parse_day, strip_control

MAX_SITES, MAX_SESSIONS = 20, 50


class InvalidAward(Exception):
    """The body breaks the contract: `errors` lists each field and its French message."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(e["message"] for e in errors))
        self.errors = errors


@dataclass
class Received:
    offer: Offer
    created: bool


def _text(body: dict[str, Any], name: str, errors: list[dict[str, str]], limit: int, required: bool = False,
          prefix: str = "") -> str:
    value = body.get(name)
    label = f"{prefix}{name}"
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors.append({"field": label, "message": f"Le champ « {label} » est obligatoire."})
        return ""
    if not isinstance(value, str):
        errors.append({"field": label, "message": f"Le champ « {label} » doit être un texte."})
        return ""
    value = strip_control(value)  # as the forms do: no NUL (PostgreSQL refuses it) nor other control characters
    if len(value) > limit:
        errors.append({"field": label, "message": f"Le champ « {label} » dépasse {limit} caractères."})
        return ""
    return value.strip()


def _date(value: Any, field: str, errors: list[dict[str, str]]) -> date | None:
    try:
        if isinstance(value, str):  # anything else (a number, null, a list) is not a date either
            return parse_day(value)
    except DayOutOfRange:
        errors.append({"field": field, "message": f"« {field} » doit être une date entre le "
                                                  f"{FIRST_DAY:%d/%m/%Y} et le {LAST_DAY:%d/%m/%Y}."})
        return None
    except ValueError:
        pass
    errors.append({"field": field, "message": f"« {field} » doit être une date AAAA-MM-JJ."})
    return None


def parse(body: Any) -> dict[str, Any]:
    """The checked contents of a request body (see the module's contract).

    :raises InvalidAward: every problem found, each with its field.
    """
    if not isinstance(body, dict):
        raise InvalidAward([{"field": "", "message": "Le corps doit être un objet JSON."}])
    errors: list[dict[str, str]] = []
    out: dict[str, Any] = {
        "award_id": _text(body, "award_id", errors, 200, required=True),
        "organisation_name": _text(body, "organisation_name", errors, 250),
        "title": _text(body, "title", errors, 255, required=True),
        "objectives": _text(body, "objectives", errors, 3000, required=True),
        "content": _text(body, "content", errors, 3000, required=True),
        "prerequisites": _text(body, "prerequisites", errors, 3000),
        "expected_results": _text(body, "expected_results", errors, 3000),
        "accessibility": _text(body, "accessibility", errors, 250),
        "consultation": _text(body, "consultation", errors, 100),
    }
    raw_siret = body.get("siret")
    try:
        out["siret"] = str(siret_number.validate(raw_siret if isinstance(raw_siret, str) else ""))
    except ValidationError:
        errors.append({"field": "siret", "message": "Le SIRET doit comporter 14 chiffres et être valide."})
    codes = body.get("formacodes", [body["formacode"]] if body.get("formacode") else [])
    if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
        errors.append({"field": "formacodes", "message": "« formacodes » est une liste de codes."})
        codes = []
    known, unknown = referential.clean_codes("formacode", codes, 5)
    if unknown:
        errors.append({"field": "formacodes", "message": f"Formacode inconnu du référentiel : {', '.join(unknown)}."})
    out["formacodes"] = known
    hours = body.get("hours")
    if hours is not None and (not isinstance(hours, int) or isinstance(hours, bool) or not 0 < hours <= 10000):
        errors.append({"field": "hours", "message": "« hours » est un nombre d'heures entre 1 et 10 000."})
        hours = None
    out["hours"] = hours
    contact = body.get("contact")
    if not isinstance(contact, dict):
        errors.append({"field": "contact", "message": "Le contact des sessions est obligatoire (un et un seul)."})
        contact = {}
    out["contact"] = {"contact_id": None, "function": "",
                      "name": _text(contact, "name", errors, 100, required=True, prefix="contact."),
                      "phone": _text(contact, "phone", errors, 25, prefix="contact."),
                      "email": _text(contact, "email", errors, 254, prefix="contact.")}
    if contact and not (out["contact"]["phone"] or out["contact"]["email"]):
        errors.append({"field": "contact", "message": "Le contact a un téléphone ou un courriel."})
    out["sites"] = _sites(body.get("sites"), errors)
    if errors:
        raise InvalidAward(errors)
    return out


def _sites(value: Any, errors: list[dict[str, str]]) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value or len(value) > MAX_SITES:
        errors.append({"field": "sites", "message": f"« sites » est une liste de 1 à {MAX_SITES} lieux."})
        return []
    sites = []
    for i, site in enumerate(value):
        prefix = f"sites[{i}]."
        if not isinstance(site, dict):
            errors.append({"field": f"sites[{i}]", "message": "Chaque lieu est un objet."})
            continue
        item = {"name": _text(site, "name", errors, 200, prefix=prefix),
                "address": _text(site, "address", errors, 200, required=True, prefix=prefix),
                "postal_code": _text(site, "postal_code", errors, 5, required=True, prefix=prefix),
                "city": _text(site, "city", errors, 100, required=True, prefix=prefix), "sessions": []}
        if item["postal_code"] and not ascii_digits(item["postal_code"], 5):
            errors.append({"field": f"{prefix}postal_code", "message": "Le code postal comporte 5 chiffres."})
        sessions = site.get("sessions")
        if not isinstance(sessions, list) or not sessions or len(sessions) > MAX_SESSIONS:
            errors.append({"field": f"{prefix}sessions",
                           "message": f"Chaque lieu a de 1 à {MAX_SESSIONS} sessions."})
            sessions = []
        for j, raw in enumerate(sessions):
            where = f"{prefix}sessions[{j}]"
            raw = raw if isinstance(raw, dict) else {}
            start, end = _date(raw.get("start"), f"{where}.start", errors), _date(raw.get("end"), f"{where}.end", errors)
            if start and end and end < start:
                errors.append({"field": f"{where}.end", "message": "La fin d'une session suit son début."})
            if start and end:
                item["sessions"].append((start, end))
        sites.append(item)
    return sites


def receive(session: Session, body: Any, *, client_id: str, client_name: str = "SAM") -> Received:
    """Create the pending offer of an award, or find the one already created for its id.

    :raises InvalidAward: the body breaks the contract.
    """
    data = parse(body)
    existing = session.scalar(select(Offer).where(Offer.source_client == client_id,
                                                  Offer.source_ref == data["award_id"]))
    if existing is not None:
        return Received(existing, False)
    organisation = organisations.ensure(session, data["siret"], data["organisation_name"])
    formation = {
        "title": data["title"], "objectives": data["objectives"], "content": data["content"],
        "expected_results": data["expected_results"], "prerequisites": data["prerequisites"], "certifying": False,
        "certification": None, "formacodes": data["formacodes"], "romes": [], "nsf": [], "entry_level": "0",
        "path": "1", "keywords": data["consultation"],
    }
    actions = []
    for site in data["sites"]:
        actions.append({
            "key": new_key(), "place_name": site["name"], "address": site["address"], "postal_code": site["postal_code"],
            "city": site["city"], "publics": ["80006"], "public_info": "", "entry_mode": "fixes", "rhythm": "",
            "teaching_mode": "0", "hours": data["hours"], "entry_level_required": False,
            "accessibility": data["accessibility"], "transport": "", "accommodation": "", "catering": "",
            "funders": "Collectivité territoriale - conseil régional",
            "sessions": [{"key": new_key(), "start": start.isoformat(), "end": end.isoformat(),
                          "registration_address": site["address"], "registration_postal_code": site["postal_code"],
                          "registration_city": site["city"], "recruitment": "1", "contact": dict(data["contact"])}
                         for start, end in site["sessions"]],
        })
    offer = create(session, organisation, formation, actor=f"{client_name} ({client_id})",
                   source=(client_id, data["award_id"]), actions=actions)
    return Received(offer, True)
