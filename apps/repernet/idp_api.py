"""The IdP's service API (SPEC §4.8) as REPERNET calls it, through the shell's service client
(client_credentials token cached until shortly before expiry; RFC 9457 errors as exceptions)."""

from __future__ import annotations

from typing import Any

from shared import ServiceClient


def create_structure(client: ServiceClient, payload: dict[str, Any]) -> dict[str, Any]:
    """POST /api/v1/structures; returns the structure created.

    :raises shared.ApiConflict: the SIRET is taken. :raises shared.ApiInvalid: refused data.
    :raises shared.ApiUnavailable: anything else.
    """
    return client.json("POST", "/structures", json=payload) or {}
