"""RFC 9457 problem details, the service API's error format (SPEC §4.8): raised in a view, and
answered the same way by the request guard (`idp.guard`) for what it refuses before any view runs."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from werkzeug.http import HTTP_STATUS_CODES

PROBLEM = "application/problem+json"

# French wording of the HTTP errors werkzeug raises (routing, body size...), by status.
HTTP_PROBLEMS = {
    400: ("Requête invalide", "La requête est mal formée."),
    401: ("Authentification requise", "Un jeton d'accès est requis."),
    403: ("Accès refusé", "Ce jeton ne permet pas cette opération."),
    404: ("Ressource introuvable", "Aucune ressource de l'API à cette adresse."),
    405: ("Méthode non permise", "Cette méthode HTTP n'est pas permise sur cette ressource."),
    406: ("Format non disponible", "L'API ne répond qu'en JSON."),
    413: ("Requête trop volumineuse", "Le corps de la requête dépasse la taille permise."),
    415: ("Type de contenu non pris en charge", "Envoyez du JSON (Content-Type: application/json)."),
    429: ("Trop de requêtes", "Trop de requêtes : réessayez dans un instant."),
    500: ("Erreur interne", "Une erreur inattendue s'est produite ; réessayez plus tard."),
    503: ("Service indisponible", "Le service est momentanément indisponible ; réessayez plus tard."),
}


class Problem(Exception):
    """An RFC 9457 problem: raised anywhere in a view, answered as application/problem+json.

    A werkzeug error passed as is (English `name` as title) gets the French wording of its status.
    """

    def __init__(self, status: int, title: str, detail: str = "", *, errors: list[dict[str, str]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        french_title, french_detail = HTTP_PROBLEMS.get(status, (f"Erreur {status}", f"Erreur HTTP {status}."))
        if title == HTTP_STATUS_CODES.get(status):
            title, detail = french_title, french_detail
        detail = detail or french_detail
        super().__init__(detail)
        self.status, self.title, self.detail, self.errors, self.headers = status, title, detail, errors, headers or {}


def problem_response(problem: Problem) -> Response:
    """RFC 9457 §3: type, title, status, detail (+ `errors`, one per field, for 422)."""
    body: dict[str, Any] = {"type": "about:blank", "title": problem.title, "status": problem.status,
                            "detail": problem.detail}
    if problem.errors:
        body["errors"] = problem.errors
    response = jsonify(body)
    response.status_code = problem.status
    response.mimetype = PROBLEM
    response.headers.update(problem.headers)
    return response
