"""The Catalogue's API for the other services (SPEC §7, §9): SAM sends its awarded offers here.

`POST /api/v1/actions` — the contract is in `apps.catalogue.awards` (its module docstring).
"""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request, url_for
from sqlalchemy.exc import IntegrityError

from apps.catalogue import awards
from apps.catalogue.models import Offer, db
from shared import json_body, problem, require_bearer

bp = Blueprint("catalogue_api", __name__, url_prefix="/api/v1")


def _body(offer: Offer, created: bool) -> Response:
    response = jsonify({"id": offer.id, "status": offer.status, "award_id": offer.source_ref,
                        "siret": offer.organisation.siret, "created": created})
    response.status_code = 201 if created else 200
    response.headers["Location"] = url_for("catalogue_api.action", offer_id=offer.id, _external=True)
    return response


@bp.post("/actions")
@require_bearer("catalogue:write")
def receive_action() -> Response:
    """Receive an awarded offer as a pending action (idempotent by the sender's award id)."""
    if request.mimetype != "application/json":
        return problem(415)
    body = json_body()
    if body is None:
        return problem(400, "Le corps n'est pas un JSON valide (UTF-8, chaque champ une seule fois).")
    client_id = str(g.service_claims.get("client_id") or g.service_claims.get("sub") or "")
    try:
        received = awards.receive(db.session, body, client_id=client_id)
        db.session.commit()
    except awards.InvalidAward as exc:
        db.session.rollback()
        return problem(422, "Certaines données de l'offre sont invalides.", errors=exc.errors)
    except IntegrityError:
        # The same award id sent twice at once: the other request created it.
        db.session.rollback()
        received = awards.receive(db.session, body, client_id=client_id)
    return _body(received.offer, received.created)


@bp.get("/actions/<int:offer_id>")
@require_bearer("catalogue:write")
def action(offer_id: int) -> Response:
    """The status of an offer this client sent (pending, returned, published)."""
    client_id = str(g.service_claims.get("client_id") or g.service_claims.get("sub") or "")
    offer = db.session.get(Offer, offer_id) if offer_id < 2**63 else None
    if offer is None or offer.source_client != client_id:
        return problem(404)
    return _body(offer, False)
