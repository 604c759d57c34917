"""REPERNET's API for the other services (SPEC §8, issue 13): SAM reads a candidate's legal
identity and address to prefill its candidature, with a client_credentials token (scope
`repernet:read`, audience `repernet`).

`GET /api/v1/structures/<siret>` → 200 with the record below, or a 404 problem when REPERNET holds
no record for that SIRET. Legal documents are not part of it.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from apps.repernet import registry
from apps.repernet.models import db
from shared import ascii_digits, problem, require_bearer

bp = Blueprint("repernet_api", __name__, url_prefix="/api/v1")


@bp.get("/structures/<siret>")
@require_bearer("repernet:read")
def structure(siret: str) -> Response:
    """A structure's legal identity, head-office address and legal representative."""
    record = registry.find_record(db.session, siret) if ascii_digits(siret, 14) else None
    if record is None:
        return problem(404, "REPERNET ne connaît aucune structure avec ce SIRET.")
    return jsonify({
        "siret": record.siret, "siren": record.siren, "is_siege": record.is_siege,
        "raison_sociale": record.raison_sociale, "sigle": record.sigle, "commercial_name": record.commercial_name,
        "legal_category": record.legal_category,
        "legal_category_label": registry.legal_category_label(record.legal_category),
        "ape_code": record.ape_code, "address": record.address, "address_complement": record.address_complement,
        "postal_code": record.postal_code, "city": record.city,
        "legal_representative": {"first_name": record.rep_first_name, "last_name": record.rep_last_name,
                                 "title": record.rep_title},
        "updated_at": record.updated_at.isoformat(),
    })
