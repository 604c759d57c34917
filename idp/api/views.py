"""Endpoints of the service API (SPEC §4.8): JSON, client_credentials tokens with scopes, RFC 9457 errors.

REPERNET registers structures here. Only service tokens (client_credentials: no user, no
session) are accepted; each endpoint names the scope it needs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from flask import Blueprint, Response, g, jsonify, request, url_for
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from idp import web
from idp.core import structures as core
from idp.core.audit import audit
from idp.core.errors import InvalidInput
from idp.core.paging import paginate
from idp.core.platform import apply_admin_email
from idp.core.security import Origin
from idp.extensions import csrf, db
from idp.models import AccessGrant, Membership, Structure, StructureKind, User
from idp.oidc.provider import issuer
from idp.oidc.tokens import access_token_revoked

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)

F = TypeVar("F", bound=Callable[..., Any])
PROBLEM = "application/problem+json"
FIELDS = {"siret", "name", "kind", "city", "postal_code", "code", "parent_siret", "admin_email", "searchable", "version"}
MAX_PER_PAGE = 100


class Problem(Exception):
    """An RFC 9457 problem: raised anywhere in a view, answered as application/problem+json."""

    def __init__(self, status: int, title: str, detail: str = "", *, errors: list[dict[str, str]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail or title)
        self.status, self.title, self.detail, self.errors, self.headers = status, title, detail, errors, headers or {}


def problem_response(problem: Problem) -> Response:
    body: dict[str, Any] = {"type": "about:blank", "title": problem.title, "status": problem.status}
    if problem.detail:
        body["detail"] = problem.detail
    if problem.errors:
        body["errors"] = problem.errors
    response = jsonify(body)
    response.status_code = problem.status
    response.mimetype = PROBLEM
    response.headers.update(problem.headers)
    return response


@bp.errorhandler(Problem)
def _on_problem(problem: Problem) -> Response:
    db.session.rollback()
    return problem_response(problem)


@bp.errorhandler(HTTPException)
def _on_http_error(exc: HTTPException) -> Response:
    """404, 405, 413... as problem details too, never an HTML page."""
    db.session.rollback()
    return problem_response(Problem(exc.code or 500, exc.name, exc.description or ""))


# ------------------------------------------------------------------ authorisation

def requires_scope(scope: str) -> Callable[[F], F]:
    """A valid, unrevoked client_credentials access token carrying `scope` (RFC 6750 errors)."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            header = request.headers.get("Authorization", "")
            token = header[7:].strip() if header[:7].lower() == "bearer " else ""
            claims = issuer().verify(db.session, token) if token else None
            if (claims is None or claims.get("sid") or claims.get("sub") != claims.get("client_id")
                    or access_token_revoked(db.session, claims["jti"])):
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


def _body() -> dict[str, Any]:
    if request.mimetype != "application/json":
        raise Problem(415, "Type de contenu non pris en charge", "Envoyez du JSON (Content-Type: application/json).")
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise Problem(400, "JSON invalide", "Le corps de la requête doit être un objet JSON.")
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise Problem(422, "Champs inconnus", errors=[{"field": f, "message": "champ inconnu"} for f in unknown])
    return data


def _text(data: dict[str, Any], field: str, errors: list[dict[str, str]], *, limit: int,
          required: bool = False) -> str | None:
    value = data.get(field)
    if value is None:
        if required:
            errors.append({"field": field, "message": "obligatoire"})
        return None
    if not isinstance(value, str):
        errors.append({"field": field, "message": "doit être une chaîne de caractères"})
        return None
    value = value.strip()
    if required and not value:
        errors.append({"field": field, "message": "obligatoire"})
    if len(value) > limit:
        errors.append({"field": field, "message": f"{limit} caractères au plus"})
    return value


def _fields(data: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """Check the shape of each field; collect every error (422) rather than stopping at the first."""
    errors: list[dict[str, str]] = []
    out: dict[str, Any] = {}
    for field, limit in (("name", 200), ("city", 100), ("postal_code", 10), ("code", 20)):
        value = _text(data, field, errors, limit=limit, required=creating and field == "name")
        if value is not None:
            out[field] = value
    if creating:
        siret = _text(data, "siret", errors, limit=30, required=True)
        if siret:
            try:
                out["siret"] = core.clean_siret(siret)
            except InvalidInput as exc:
                errors.append({"field": "siret", "message": str(exc)})
    if "kind" in data:
        try:
            out["kind"] = StructureKind(data["kind"])
        except (ValueError, TypeError):
            errors.append({"field": "kind", "message": "une valeur parmi " + ", ".join(k.value for k in StructureKind)})
    email = _text(data, "admin_email", errors, limit=254)
    if email is not None:
        if email and ("@" not in email or " " in email or email.startswith("@") or email.endswith("@")):
            errors.append({"field": "admin_email", "message": "adresse e-mail invalide"})
        out["admin_email"] = email
    parent = _text(data, "parent_siret", errors, limit=30)
    if parent:
        try:
            out["parent_siret"] = core.clean_siret(parent)
        except InvalidInput as exc:
            errors.append({"field": "parent_siret", "message": str(exc)})
    if "searchable" in data:
        if not isinstance(data["searchable"], bool):
            errors.append({"field": "searchable", "message": "doit être true ou false"})
        else:
            out["searchable"] = data["searchable"]
    if errors:
        raise Problem(422, "Données invalides", "Corrigez les champs indiqués.", errors=errors)
    return out


def _find(siret: str) -> Structure:
    structure = core.find_by_siret(db.session, siret) if siret.isdigit() and len(siret) == 14 else None
    if structure is None:
        raise Problem(404, "Structure inconnue", f"Aucune structure n'a le SIRET {siret[:20]}.")
    return structure


def _designate_admin(structure: Structure) -> None:
    """SPEC §4.2: the named account admin becomes admin at once if they have an account; else they
    are invited to create one (the join flow and the e-mail verification then make them admin)."""
    if not structure.admin_email:
        return
    membership = apply_admin_email(db.session, structure, _origin())
    if membership is not None:
        web.send_mail("structure_admin_designated", structure.admin_email, structure=structure,
                      user=membership.user, link=url_for("manage.index", structure_id=structure.id, _external=True))
    else:
        web.send_mail("structure_admin_invited", structure.admin_email, structure=structure,
                      link=url_for("auth.signup", _external=True))


# ------------------------------------------------------------------ endpoints

@bp.post("/structures")
@requires_scope("structures:write")
def create_structure() -> tuple[Response, int, dict[str, str]]:
    """Create a structure (REPERNET registration) and designate its admin e-mail."""
    data = _fields(_body(), creating=True)
    if core.find_by_siret(db.session, data["siret"]) is not None:
        raise Problem(409, "Structure déjà enregistrée", f"Une structure existe déjà avec le SIRET {data['siret']}.")
    try:
        structure = core.create_structure(db.session, core.StructureData(
            siret=data["siret"], name=data["name"], kind=data.get("kind", StructureKind.ORGANISME),
            city=data.get("city", ""), postal_code=data.get("postal_code", ""), code=data.get("code") or None,
            admin_email=data.get("admin_email") or None, searchable=data.get("searchable", True),
        ), _origin())
    except InvalidInput as exc:
        raise Problem(422, "Données invalides", str(exc), errors=[{"field": "siret", "message": str(exc)}]) from exc
    audit(db.session, "api.structure_created", _origin(), structure=structure.id, client_id=g.api_client_id,
          siret=structure.siret)
    _designate_admin(structure)
    db.session.commit()
    return (jsonify(structure_json(structure)), 201,
            {"Location": url_for("api.get_structure", siret=structure.siret, _external=True)})


@bp.get("/structures")
@requires_scope("structures:read")
def list_structures() -> Response:
    """Structures, searched by name, city, code or SIRET prefix (`q`), paginated."""
    page, per_page = _int_arg("page", 1), min(_int_arg("per_page", 25), MAX_PER_PAGE)
    query = select(Structure).order_by(Structure.name, Structure.siret)
    q = request.args.get("q", "").strip().lower()[:100]
    if q:
        escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(Structure.search_text.like(f"%{escaped}%", escape="\\"))
    result = paginate(db.session, query, page, per_page)
    return jsonify({"items": [structure_json(s) for s in result.items], "page": result.number,
                    "per_page": result.per_page, "total": result.total})


@bp.get("/structures/<siret>")
@requires_scope("structures:read")
def get_structure(siret: str) -> Response:
    """One structure by SIRET."""
    structure = _find(siret)
    response = jsonify(structure_json(structure))
    response.headers["ETag"] = f'"{structure.version}"'
    return response


@bp.patch("/structures/<siret>")
@requires_scope("structures:write")
def update_structure(siret: str) -> Response:
    """Partial update; a stale `If-Match` (or `version`) gets 412 instead of overwriting."""
    structure = _find(siret)
    body = _body()
    expected = request.headers.get("If-Match", "").strip().strip('"') or body.get("version")
    if expected is not None and str(expected) != str(structure.version):
        raise Problem(412, "Version périmée",
                      f"La structure a été modifiée entre-temps (version {structure.version}) : relisez-la puis recommencez.")
    data = _fields(body, creating=False)
    previous_email = structure.admin_email
    if "kind" in data:
        structure.kind = data["kind"]
    if "code" in data:
        structure.code = data["code"] or None
    core.update_structure(db.session, structure, _origin(), actor=None, name=data.get("name"), city=data.get("city"),
                          postal_code=data.get("postal_code"), admin_email=data.get("admin_email"),
                          searchable=data.get("searchable"))
    audit(db.session, "api.structure_updated", _origin(), structure=structure.id, client_id=g.api_client_id,
          fields=sorted(data))
    if structure.admin_email != previous_email:
        _designate_admin(structure)
    db.session.commit()
    response = jsonify(structure_json(structure))
    response.headers["ETag"] = f'"{structure.version}"'
    return response


@bp.get("/structures/<siret>/members")
@requires_scope("members:read")
def list_members(siret: str) -> Response:
    """A structure's members with their roles there (two queries per page)."""
    structure = _find(siret)
    page, per_page = _int_arg("page", 1), min(_int_arg("per_page", 50), MAX_PER_PAGE)
    query = (select(Membership, User).join(User, User.id == Membership.user_id)
             .where(Membership.structure_id == structure.id).order_by(User.family_name, User.given_name, User.id))
    result = paginate(db.session, query, page, per_page, scalars=False)
    ids = [m.id for m, _ in result.items]
    roles: dict[int, list[str]] = {}
    for grant in db.session.scalars(select(AccessGrant).where(AccessGrant.membership_id.in_(ids))) if ids else []:
        roles.setdefault(grant.membership_id, []).append(grant.role.key)
    items = [{"sub": str(user.id), "email": user.email, "given_name": user.given_name,
              "family_name": user.family_name, "role": m.role.value, "status": m.status.value,
              "roles": sorted(roles.get(m.id, []))} for m, user in result.items]
    return jsonify({"items": items, "page": result.number, "per_page": result.per_page, "total": result.total})


def _int_arg(name: str, default: int) -> int:
    value = request.args.get(name)
    if value is None:
        return default
    if not value.isdigit() or len(value) > 7 or int(value) < 1:
        raise Problem(400, "Paramètre invalide", f"« {name} » doit être un entier positif.")
    return int(value)
