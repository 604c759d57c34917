"""Running it like production (SPEC §10.4): the probe pair, and a database outage answered 503 with
Retry-After in each endpoint's own language, so that clients and proxies retry instead of failing."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, render_template, request
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import BadRequest, Conflict, ServiceUnavailable
from werkzeug.wrappers import Response

from shared.web import RETRY_AFTER_SECONDS, database_failure, problem

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)

# Browser endpoints under /oauth/ get pages; the others speak OAuth JSON (RFC 6749 §5.2).
BROWSER_OAUTH = ("/oauth/authorize", "/oauth/logout")


@bp.get("/livez")
def livez() -> Response:
    """Liveness: the process answers (no database, no network)."""
    return _no_store(jsonify(status="ok"))


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Readiness: database reachable, schema at the head revision, signing keys loaded, Redis."""
    checks = readiness(current_app)
    ready = all(value == "ok" for value in checks.values())
    response = _no_store(jsonify(status="ok" if ready else "unavailable", checks=checks))
    if not ready:
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response, 200 if ready else 503


def readiness(app: Flask) -> dict[str, str]:
    """One connection and one small query for the database and its revision; the keys come from
    the worker's key ring (re-read at most every KEY_CACHE_SECONDS); one PING for Redis."""
    from idp.extensions import db
    from idp.oidc.provider import issuer

    checks = {"database": "ok", "schema": "ok", "signing_keys": "ok"}
    try:
        connection = db.engine.connect()
    except Exception:  # noqa: BLE001 - any failure means: not ready
        checks.update(database="unreachable", schema="unknown", signing_keys="unknown")
    else:
        with connection:
            try:
                revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
            except Exception:  # noqa: BLE001 - no alembic_version table: never migrated
                revision = None
        if revision != app.extensions["schema_head"]:
            checks["schema"] = "not at the head revision: run `idp db upgrade`"
        try:
            issuer().keyring.signing_key(db.session, "RS256")
        except Exception:  # noqa: BLE001 - no key, or no table yet
            checks["signing_keys"] = "none active: run `idp keys ensure`"
        finally:
            db.session.rollback()
    if app.config["REDIS_URL"]:
        checks["redis"] = "ok" if _redis_answers(app) else "unreachable"
    return checks


def _redis_answers(app: Flask) -> bool:
    import redis

    client = app.extensions.get("health.redis")
    if client is None:
        client = app.extensions["health.redis"] = redis.Redis.from_url(
            app.config["REDIS_URL"], socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    except Exception:  # noqa: BLE001
        return False


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def answer(status: int, *, error: str, french: str) -> Any:
    """An error in the endpoint's language: RFC 9457 under /api/, OAuth JSON under /oauth/ (but for
    the browser's authorize and logout pages), the French page elsewhere."""
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else {}
    path = request.path
    if path.startswith("/api/"):
        return problem(status, french, headers=headers)
    if path.startswith(("/oauth/", "/.well-known/")) and not path.startswith(BROWSER_OAUTH):
        response = jsonify(error=error, error_description=french)
        response.status_code = status
        response.headers.update({"Cache-Control": "no-store", **headers})
        return response
    if status == 503:  # the page must not read the database again: no login, no structure, no badge
        from idp.web import as_visitor

        as_visitor()
    exception = {503: ServiceUnavailable, 409: Conflict}.get(status, BadRequest)(french)
    return render_template("error.html", code=status, error=exception), status, headers


def _rollback() -> None:
    from idp.extensions import db

    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - the database is what failed: don't fail the answer too
        log.debug("rollback failed", exc_info=True)


def database_error(exc: Exception) -> Any:
    """A database error the code did not catch, classified as for every service (409, 400 or 503
    with Retry-After: `shared.web.database_failure`), answered in the endpoint's language."""
    _rollback()
    status, french = database_failure(exc)
    return answer(status, error="temporarily_unavailable" if status == 503 else "invalid_request", french=french)


def init_app(app: Flask) -> None:
    from idp.migrations import head_revision

    app.extensions["schema_head"] = head_revision()  # read once: the code does not change under us
    app.register_blueprint(bp)
    app.register_error_handler(DBAPIError, database_error)
    app.register_error_handler(PoolTimeout, database_error)
