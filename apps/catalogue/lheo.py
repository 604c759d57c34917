"""The LHEO 2.3 export of the published offers (issue 14 §7, `GET /lheo.xml`).

Written from LHEO 2.3's published definition (lheo/lheo-schema, `definition/lheo-gml.xml`):
root `lheo` in the namespace `http://lheo.gouv.fr/2.3`, `offres > formation > action > session`,
elements in the definition's order, dates as `AAAAMMJJ`, the LHEO code lists (dict-niveaux,
dict-type-parcours, dict-modalites-es, dict-etat-recrutement, public visé Formacode V10).

Streamed: the offers are read by pages of `BATCH` (keyset on the id, one short transaction each)
and each formation is serialised and yielded on its own, so memory stays flat whatever the size.
LHEO 2.3 has no contact element in a session: the first session's contact is the formation's
`contact-formation`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from apps.catalogue.referential import FORMACODE_VERSION  # the bundled codes' version, one place

NAMESPACE = "http://lheo.gouv.fr/2.3"
BATCH = 200
PUBLIC_VERSION = "V10"  # the public-visé codes of offers.PUBLICS (hand-picked, not from the referential)
UNKNOWN_NDA = "00000000000"  # numero-activite is mandatory (11 characters); unknown until the Carif-Oref sets it


@dataclass
class Published:
    """One published offer as the export reads it."""

    offer_id: int
    updated: datetime
    document: dict[str, Any]
    organisation: dict[str, str]


def _el(name: str, value: Any, limit: int, **attrs: str) -> str:
    text = " ".join(str(value).split()) if limit <= 250 else str(value).strip()
    text = text[:limit]
    if not text:
        return ""
    attributes = "".join(f" {k}={quoteattr(v)}" for k, v in attrs.items())
    return f"<{name}{attributes}>{escape(text)}</{name}>"


def _day(value: str | date | datetime) -> str:
    if isinstance(value, str):
        value = date.fromisoformat(value)
    return value.strftime("%Y%m%d")


def _address(lines: list[str], postal_code: str, city: str) -> str:
    kept = [line for line in lines if line.strip()][:4] or [city]
    return ("<adresse>" + "".join(_el("ligne", line, 50) for line in kept) + _el("codepostal", postal_code, 5)
            + _el("ville", city, 50) + "</adresse>")


def _coordinates(name: str = "", phone: str = "", email: str = "", address: str = "") -> str:
    parts = [_el("nom", name, 50), address]
    if phone.strip():
        parts.append("<telfixe>" + _el("numtel", phone, 25) + "</telfixe>")
    parts.append(_el("courriel", email, 160))
    return "<coordonnees>" + "".join(parts) + "</coordonnees>"


def _session(item: dict[str, Any]) -> str:
    return (f"<session numero={quoteattr(item['key'])}>"
            f"<periode><debut>{_day(item['start'])}</debut><fin>{_day(item['end'])}</fin></periode>"
            "<adresse-inscription>" + _address([item["registration_address"]], item["registration_postal_code"],
                                               item["registration_city"]) + "</adresse-inscription>"
            + _el("etat-recrutement", item["recruitment"], 1) + "</session>")


def _action(action: dict[str, Any], formation: dict[str, Any]) -> str:
    place = _address([action.get("place_name", ""), action["address"]], action["postal_code"], action["city"])
    parts = [
        _el("rythme-formation", action.get("rhythm") or "Non précisé", 3000),
        *(_el("code-public-vise", code, 5, ref=PUBLIC_VERSION) for code in action["publics"][:10]),
        _el("info-public-vise", action.get("public_info", ""), 3000),
        _el("niveau-entree-obligatoire", "1" if action.get("entry_level_required") else "0", 1),
        _el("modalites-alternance", "Sans objet", 3000),
        _el("modalites-enseignement", action.get("teaching_mode", "0"), 1),
        _el("conditions-specifiques", formation.get("prerequisites") or "Aucune", 3000),
        _el("prise-en-charge-frais-possible", "1" if action.get("funders") else "0", 1),
        f"<lieu-de-formation><coordonnees>{place}</coordonnees></lieu-de-formation>",
        _el("modalites-entrees-sorties", "1" if action["entry_mode"] == "permanentes" else "0", 1),
        *(_session(item) for item in action["sessions"]),
        _el("restauration", action.get("catering", ""), 250),
        _el("hebergement", action.get("accommodation", ""), 250),
        _el("transport", action.get("transport", ""), 250),
        _el("acces-handicapes", action.get("accessibility", ""), 250),
    ]
    return f"<action numero={quoteattr(action['key'])}>" + "".join(parts) + "</action>"


def formation_xml(item: Published) -> str:
    """One `<formation>` element (the caller checked it has actions with sessions)."""
    doc, org = item.document, item.organisation
    f = doc["formation"]
    first_contact = next((s["contact"] for a in doc["actions"] for s in a["sessions"] if s.get("contact")), None)
    contact = first_contact or {"name": org["name"], "phone": org["phone"], "email": org["email"]}
    certification = f.get("certification") or {}
    certification_xml = ""
    if certification.get("rncp") or certification.get("certifinfo"):
        certification_xml = ("<certification>" + _el("code-RNCP", certification.get("rncp", "").removeprefix("RNCP"), 6)
                             + _el("code-CERTIFINFO", certification.get("certifinfo", ""), 6) + "</certification>")
    domain = ("<domaine-formation>"
              + "".join(_el("code-FORMACODE", c, 5, ref=FORMACODE_VERSION) for c in f.get("formacodes", [])[:5])
              + "".join(_el("code-NSF", c, 3) for c in f.get("nsf", [])[:3])
              + "".join(_el("code-ROME", c, 5, ref="V3") for c in f.get("romes", [])[:5]) + "</domaine-formation>")
    results = f.get("expected_results") or certification.get("label") or "Attestation de fin de formation"
    org_address = (_address([org["address"]], org["postal_code"], org["city"])
                   if org["address"] and len(org["postal_code"]) == 5 and org["city"] else "")
    responsible = (
        "<organisme-formation-responsable>"
        + _el("numero-activite", org["nda"] if len(org["nda"]) == 11 else UNKNOWN_NDA, 11)
        + f"<SIRET-organisme-formation>{_el('SIRET', org['siret'], 14)}</SIRET-organisme-formation>"
        + _el("nom-organisme", org["sigle"] or org["name"], 250) + _el("raison-sociale", org["name"], 250)
        + "<coordonnees-organisme>" + _coordinates(address=org_address, phone=org["phone"], email=org["email"])
        + "</coordonnees-organisme>"
        + "<contact-organisme>" + _coordinates(org["name"], org["phone"], org["email"]) + "</contact-organisme>"
        + "</organisme-formation-responsable>")
    return (
        f"<formation numero=\"{item.offer_id}\" datemaj=\"{_day(item.updated)}\">"
        + domain + _el("intitule-formation", f["title"], 255) + _el("objectif-formation", f["objectives"], 3000)
        + _el("resultats-attendus", results, 3000) + _el("contenu-formation", f["content"], 3000)
        + _el("certifiante", "1" if f.get("certifying") else "0", 1)
        + "<contact-formation>" + _coordinates(contact.get("name", ""), contact.get("phone", ""), contact.get("email", ""))
        + "</contact-formation>"
        + _el("parcours-de-formation", f.get("path", "1"), 1) + _el("code-niveau-entree", f.get("entry_level", "0"), 1)
        + certification_xml
        + "".join(_action(a, f) for a in doc["actions"] if a["sessions"])
        + responsible + "</formation>\n")


def exportable(item: Published) -> bool:
    """LHEO wants at least one action with a session in a formation."""
    return any(a["sessions"] for a in item.document["actions"])


def stream(fetch: Callable[[int], list[Published]], first: list[Published] | None = None) -> Iterator[str]:
    """The document, piece by piece; `fetch(after_id)` returns the next page of published offers
    (`first`: the first page, read before the response starts so a database outage is still a 503)."""
    yield f'<?xml version="1.0" encoding="UTF-8"?>\n<lheo xmlns="{NAMESPACE}">\n<offres>\n'
    last = 0
    while True:
        batch, first = (first, None) if first is not None else (fetch(last), None)
        if not batch:
            break
        for item in batch:
            if exportable(item):
                yield formation_xml(item)
        last = batch[-1].offer_id
    yield "</offres>\n</lheo>\n"
