"""Endpoints of the service API (SPEC §4.8): JSON, client_credentials tokens with scopes, RFC 9457 errors.

REPERNET registers structures here. Only service tokens (client_credentials: no user, no
session) are accepted; each endpoint names the scope it needs.

    POST  /structures                  structures:write  201 + Location; 409 SIRET taken; 422 + errors
    GET   /structures?q=&page=&per_page=  structures:read   {"items", "page", "per_page", "total"}
    GET   /structures/<siret>          structures:read   ETag: "<version>"
    PATCH /structures/<siret>          structures:write  If-Match: "<version>" or "version": 412 if stale
    GET   /structures/<siret>/members  members:read      items {"sub", "email", ..., "role", "roles"}

401 `Bearer error="invalid_token"`, 403 `error="insufficient_scope"`; every error is
application/problem+json {"type", "title", "status", "detail"} in French.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from flask import Blueprint, Response, current_app, g, jsonify, request, url_for
from sqlalchemy import or_, select
from werkzeug.exceptions import HTTPException

from idp import web
from idp.api.problems import Problem, problem_response
from idp.core import structures as core
from idp.core.errors import AlreadyExists, Conflict, InvalidInput
from idp.core.security import Origin
from idp.extensions import client_ip, csrf, db, limiter
from idp.guard import MAX_ID
from idp.join.jobs import designate_admin
from idp.models import AccessGrant, Membership, Structure, StructureKind, User, utcnow
from idp.oidc.provider import find_client, issuer
from idp.oidc.tokens import access_token_revoked
from shared.bounds import ascii_digits, bounded_int
from shared.paging import paginate
from shared.web import json_body

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)

F = TypeVar("F", bound=Callable[..., Any])
# What each write accepts; anything else is a 422 "champ inconnu" (a typo must not pass silently).
CREATE_FIELDS = frozenset({"siret", "name", "kind", "city", "postal_code", "code", "parent_siret", "admin_email",
                           "searchable"})
UPDATE_FIELDS = (CREATE_FIELDS - {"siret"}) | {"version"}
MAX_PER_PAGE = 100
EMAIL_SHAPE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

@bp.errorhandler(Problem)
def _on_problem(problem: Problem) -> Response:
    db.session.rollback()
    return problem_response(problem)


@bp.errorhandler(HTTPException)
def http_problem(exc: HTTPException) -> Response:
    """404, 405, 413... inside the API's routes as problem details too, never an HTML page (the app's
    handler does the same for URLs under /api/ that match no route)."""
    db.session.rollback()
    headers = {k: v for k, v in exc.get_headers() if k.lower() == "allow"}
    return problem_response(Problem(exc.code or 500, exc.name, headers=headers))


# ------------------------------------------------------------------ authorisation

def bearer_claims() -> dict[str, Any] | None:
    """The claims of this request's Bearer token if we signed it and it is unexpired; verified once
    per request (the rate limit's key and the scope check both need them)."""
    if "api_claims" not in g:
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        g.api_claims = issuer().verify(db.session, token) if token else None
    return g.api_claims


def _api_limit() -> str:
    return current_app.config["RATELIMIT_API_CLIENT"]


def _api_rate_key() -> str:
    """Per client for a valid token, per address otherwise (issue 15 finding 18)."""
    claims = bearer_claims()
    client_id = claims.get("client_id") if claims else None
    return f"api-client:{client_id}" if isinstance(client_id, str) else f"api-address:{client_ip()}"


limiter.limit(_api_limit, key_func=_api_rate_key, scope="api")(bp)


def requires_scope(scope: str) -> Callable[[F], F]:
    """A valid, unrevoked client_credentials access token carrying `scope`, of a client still
    registered and active (RFC 6750 errors): disabling a client stops its tokens at once."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            claims = bearer_claims()
            if (claims is None or claims.get("sid") or claims.get("sub") != claims.get("client_id")
                    or find_client(claims.get("client_id")) is None  # the cache holds active clients only
                    or access_token_revoked(db.session, claims)):
                raise Problem(401, "Jeton d'accès invalide",
                              "Un jeton client_credentials valide est requis (en-tête Authorization: Bearer).",
                              headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
            if scope not in str(claims.get("scope", "")).split():
                raise Problem(403, "Portée insuffisante", f"Ce jeton n'a pas la portée « {scope} ».",
                              headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'})
            g.api_client_id = claims["client_id"]
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


def _origin() -> Origin:
    return web.origin()


# ------------------------------------------------------------------ representation

def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def structure_json(structure: Structure) -> dict[str, Any]:
    return {
        "id": str(structure.id), "siret": structure.siret, "siren": structure.siren, "name": structure.name,
        "kind": structure.kind.value, "city": structure.city, "postal_code": structure.postal_code,
        "code": structure.code, "parent_siret": structure.parent.siret if structure.parent else None,
        "admin_email": structure.admin_email, "searchable": structure.searchable, "version": structure.version,
        "created_at": _iso(structure.created_at), "updated_at": _iso(structure.updated_at),
    }


def _body(allowed: frozenset[str]) -> dict[str, Any]:
    if request.mimetype != "application/json":
        raise Problem(415, "Type de contenu non pris en charge", "Envoyez du JSON (Content-Type: application/json).")
    data = json_body()  # None: not JSON, not UTF-8, a key twice, or nested beyond reason
    if not isinstance(data, dict):
        raise Problem(400, "JSON invalide", "Le corps de la requête doit être un objet JSON (UTF-8, chaque "
                      "champ une seule fois).")
    unknown = sorted(set(data) - allowed)
    if unknown:
        errors = [{"field": f[:50], "message": "non modifiable" if f == "siret" else "champ inconnu"} for f in unknown]
        raise Problem(422, "Champs non acceptés", "Retirez les champs indiqués.", errors=errors[:20])
    return data


def _text(data: dict[str, Any], field: str, errors: list[dict[str, str]], *, limit: int,
          required: bool = False) -> str | None:
    """The field's text, stripped; None when absent. On an update (not `required`), null clears it."""
    if field not in data:
        if required:
            errors.append({"field": field, "message": "obligatoire"})
        return None
    value = data[field]
    if value is None:
        value = ""
    if not isinstance(value, str):
        errors.append({"field": field, "message": "doit être une chaîne de caractères"})
        return None
    value = value.strip()
    if not all(ch.isprintable() for ch in value):  # NUL above all: PostgreSQL refuses it in text
        errors.append({"field": field, "message": "caractères de contrôle interdits"})
    elif required and not value:
        errors.append({"field": field, "message": "obligatoire"})
    elif len(value) > limit:
        errors.append({"field": field, "message": f"{limit} caractères au plus"})
    return value


def _fields(data: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """Check the shape of each field; collect every error (422) rather than stopping at the first.

    The rules (SIRET key, siège) belong to the core; only the shape is checked here, plus the SIRET
    so that every bad field is listed in one answer.
    """
    errors: list[dict[str, str]] = []
    out: dict[str, Any] = {}
    if creating:
        siret = _text(data, "siret", errors, limit=30, required=True)
        if siret:
            try:
                out["siret"] = core.clean_siret(siret)
            except InvalidInput as exc:
                errors.append({"field": "siret", "message": str(exc)})
    for field, limit in (("name", 200), ("city", 100), ("postal_code", 10), ("code", 20)):
        value = _text(data, field, errors, limit=limit, required=field == "name" and (creating or field in data))
        if value is not None:
            out[field] = value
    if "kind" in data:
        try:
            out["kind"] = StructureKind(data["kind"])
        except (ValueError, TypeError):
            errors.append({"field": "kind", "message": "une valeur parmi " + ", ".join(k.value for k in StructureKind)})
    email = _text(data, "admin_email", errors, limit=254)
    if email and not EMAIL_SHAPE.match(email):
        errors.append({"field": "admin_email", "message": "adresse e-mail invalide"})
    if email is not None:
        out["admin_email"] = email
    parent = _text(data, "parent_siret", errors, limit=30)
    if parent:
        try:
            out["parent_siret"] = core.clean_siret(parent)
        except InvalidInput as exc:
            errors.append({"field": "parent_siret", "message": str(exc)})
    elif parent is not None:
        out["parent_siret"] = ""  # null or "": the structure becomes a siège
    if "searchable" in data:
        if not isinstance(data["searchable"], bool):
            errors.append({"field": "searchable", "message": "doit être true ou false"})
        else:
            out["searchable"] = data["searchable"]
    if "version" in data and (not isinstance(data["version"], int) or isinstance(data["version"], bool)
                              or not 0 <= data["version"] <= MAX_ID):  # a column's range: beyond, a 500 before
        errors.append({"field": "version", "message": "doit être un entier"})
    if errors:
        raise Problem(422, "Données invalides", "Corrigez les champs indiqués.", errors=errors)
    return out


def _expected_version(data: dict[str, Any]) -> int | None:
    """Optimistic locking (RFC 9110 §13.1.1): `If-Match: "<version>"` or `"version"` in the body;
    neither is required (a service may overwrite). A tag that names no version can match nothing."""
    versions: list[int] = []
    header = request.headers.get("If-Match", "").strip()
    if header and header != "*":
        tag = header.removeprefix("W/").strip().strip('"')
        version = bounded_int(tag, 0, MAX_ID)
        versions.append(version if version is not None else -1)
    if "version" in data:
        versions.append(data["version"])
    if len(set(versions)) > 1:
        raise _stale()
    return versions[0] if versions else None


def _stale() -> Problem:
    return Problem(412, "Version périmée",
                   "La structure a été modifiée entre-temps : relisez-la puis recommencez avec sa nouvelle version.")


def _find(siret: str) -> Structure:
    structure = core.find_by_siret(db.session, siret) if ascii_digits(siret, 14) else None
    if structure is None:
        raise Problem(404, "Structure inconnue", f"Aucune structure n'a le SIRET {siret[:20]}.")
    return structure


def _invalid(exc: InvalidInput, field: str) -> Problem:
    return Problem(422, "Données invalides", str(exc), errors=[{"field": field, "message": str(exc)}])


def _structure_response(structure: Structure, status: int = 200) -> Response:
    response = jsonify(structure_json(structure))
    response.status_code = status
    response.headers["ETag"] = f'"{structure.version}"'
    return response


# ------------------------------------------------------------------ endpoints

@bp.post("/structures")
@requires_scope("structures:write")
def create_structure() -> Response:
    """Create a structure (REPERNET registration) and designate its admin e-mail."""
    data = _fields(_body(CREATE_FIELDS), creating=True)
    if core.find_by_siret(db.session, data["siret"]) is not None:
        raise Problem(409, "Structure déjà enregistrée", f"Une structure existe déjà avec le SIRET {data['siret']}.")
    try:
        structure = core.create_structure(db.session, core.StructureData(
            siret=data["siret"], name=data["name"], kind=data.get("kind", StructureKind.ORGANISME),
            city=data.get("city", ""), postal_code=data.get("postal_code", ""), code=data.get("code") or None,
            admin_email=data.get("admin_email") or None, searchable=data.get("searchable", True),
        ), _origin(), siege_siret=data.get("parent_siret") or None, client_id=g.api_client_id)
    except AlreadyExists as exc:  # created meanwhile, e.g. by the same request sent twice
        raise Problem(409, "Structure déjà enregistrée",
                      f"Une structure existe déjà avec le SIRET {data['siret']}.") from exc
    except InvalidInput as exc:
        raise _invalid(exc, "parent_siret" if data.get("parent_siret") else "siret") from exc
    designate_admin(db.session, structure, _origin())
    db.session.commit()
    response = _structure_response(structure, 201)
    response.headers["Location"] = url_for("api.get_structure", siret=structure.siret, _external=True)
    return response


@bp.get("/structures")
@requires_scope("structures:read")
def list_structures() -> Response:
    """Structures, searched by name, city, code or SIRET (`q`), paginated."""
    page, per_page = _int_arg("page", 1), min(_int_arg("per_page", 25), MAX_PER_PAGE)
    query = select(Structure).order_by(Structure.name, Structure.siret)
    # Control characters (NUL: refused by PostgreSQL) count as spaces.
    q = " ".join("".join(ch if ch.isprintable() else " " for ch in request.args.get("q", "")[:100]).lower().split())
    if q:
        escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(Structure.search_text.like(f"%{escaped}%", escape="\\"))
    result = paginate(db.session, query, page, per_page)
    return jsonify({"items": [structure_json(s) for s in result.items], "page": result.page,
                    "per_page": result.per_page, "total": result.total})


@bp.get("/structures/<siret>")
@requires_scope("structures:read")
def get_structure(siret: str) -> Response:
    """One structure by SIRET, with its version as ETag."""
    return _structure_response(_find(siret))


@bp.patch("/structures/<siret>")
@requires_scope("structures:write")
def update_structure(siret: str) -> Response:
    """Partial update; a stale `If-Match` (or `version`) gets 412 instead of overwriting."""
    structure = _find(siret)
    body = _body(UPDATE_FIELDS)
    data = _fields(body, creating=False)
    expected = _expected_version(body)
    previous_email = structure.admin_email
    try:
        core.update_structure(
            db.session, structure, _origin(), actor=None, name=data.get("name"), city=data.get("city"),
            postal_code=data.get("postal_code"), code=data.get("code"), kind=data.get("kind"),
            admin_email=data.get("admin_email"), searchable=data.get("searchable"),
            siege_siret=data.get("parent_siret"), expected_version=expected, client_id=g.api_client_id)
    except Conflict as exc:
        raise _stale() from exc
    except InvalidInput as exc:
        raise _invalid(exc, "parent_siret") from exc
    if structure.admin_email != previous_email:
        designate_admin(db.session, structure, _origin())
    db.session.commit()
    return _structure_response(structure)


@bp.get("/structures/<siret>/members")
@requires_scope("members:read")
def list_members(siret: str) -> Response:
    """A structure's members with their current roles there (count, page, grants: three queries)."""
    structure = _find(siret)
    page, per_page = _int_arg("page", 1), min(_int_arg("per_page", 50), MAX_PER_PAGE)
    query = (select(Membership, User).join(User, User.id == Membership.user_id)
             .where(Membership.structure_id == structure.id).order_by(User.family_name, User.given_name, User.id))
    result = paginate(db.session, query, page, per_page, scalars=False)
    ids = [m.id for m, _ in result.items]
    roles: dict[int, list[str]] = {}
    if ids:
        now = utcnow()
        current = select(AccessGrant).where(AccessGrant.membership_id.in_(ids),
                                            or_(AccessGrant.ends_at.is_(None), AccessGrant.ends_at > now))
        for grant in db.session.scalars(current):
            roles.setdefault(grant.membership_id, []).append(grant.role.key)
    items = [{"sub": str(user.id), "email": user.email, "given_name": user.given_name,
              "family_name": user.family_name, "role": m.role.value, "status": m.status.value,
              "roles": sorted(roles.get(m.id, []))} for m, user in result.items]
    return jsonify({"items": items, "page": result.page, "per_page": result.per_page, "total": result.total})


def _int_arg(name: str, default: int) -> int:
    value = request.args.get(name)
    if value is None:
        return default
    number = bounded_int(value, 1, 9_999_999)
    if number is None:
        raise Problem(400, "Paramètre invalide", f"« {name} » doit être un entier positif.")
    return number
