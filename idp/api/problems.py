"""RFC 9457 problem details, the service API's error format (SPEC §4.8): raised in a view, and
answered the same way by the request guard (`idp.guard`) for what it refuses before any view runs.
The document is built by the shell's `problem()`, as every service's problems are."""

from __future__ import annotations

from typing import Any

from flask import Response
from werkzeug.http import HTTP_STATUS_CODES

from shared.web import problem

# The API's French wording of the HTTP errors werkzeug raises (routing, body size...), where it
# differs from the shell's (which speaks of pages): a service client reads of tokens and resources.
# Any other status takes the shell's wording (ERRORS).
API_WORDING = {
    400: ("Requête invalide", "La requête est mal formée."),
    401: ("Authentification requise", "Un jeton d'accès est requis."),
    403: ("Accès refusé", "Ce jeton ne permet pas cette opération."),
    404: ("Ressource introuvable", "Aucune ressource de l'API à cette adresse."),
    405: ("Méthode non permise", "Cette méthode HTTP n'est pas permise sur cette ressource."),
    406: ("Format non disponible", "L'API ne répond qu'en JSON."),
    413: ("Requête trop volumineuse", "Le corps de la requête dépasse la taille permise."),
    503: ("Service indisponible", "Le service est momentanément indisponible ; réessayez plus tard."),
}


class Problem(Exception):
    """An RFC 9457 problem: raised anywhere in a view, answered as application/problem+json.

    A werkzeug error passed as is (English `name` as title) gets the French wording of its status.
    """

    def __init__(self, status: int, title: str, detail: str = "", *, errors: list[dict[str, str]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        api_title, api_detail = API_WORDING.get(status, ("", ""))
        if title == HTTP_STATUS_CODES.get(status):
            title, detail = api_title, api_detail
        detail = detail or api_detail
        super().__init__(detail)
        # Left empty, title and detail are the shell's (`problem()`).
        self.status, self.title, self.detail, self.errors, self.headers = status, title, detail, errors, headers or {}


def problem_response(problem_: Problem) -> Response:
    """RFC 9457 §3: type, title, status, detail (+ `errors`, one per field, for 422)."""
    extra: dict[str, Any] = {"errors": problem_.errors} if problem_.errors else {}
    return problem(problem_.status, problem_.detail or None, problem_.title or None, headers=problem_.headers, **extra)
