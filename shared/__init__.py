"""The relying-party kit the three applications share (SPEC §6): `from shared import SSO, ...`."""

from __future__ import annotations

from shared.identity import Identity, StructureRef
from shared.locking import CONFLICT_MESSAGE, StaleVersion, Versioned, check_version
from shared.sso import (
    SSO,
    access_token,
    current_identity,
    forbidden,
    login_required,
    requires_role,
    safe_next,
    switch_url,
)

__all__ = [
    "CONFLICT_MESSAGE", "SSO", "Identity", "StaleVersion", "StructureRef", "Versioned", "access_token",
    "check_version", "current_identity", "forbidden", "login_required", "requires_role", "safe_next", "switch_url",
]
