"""The optimistic lock of every edit in the core (SPEC §6: no "last save wins"): the shell's one
mechanism (`shared.locking.claim_version`), its refusal as the core's `Conflict`."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from idp.core.errors import Conflict
from shared.locking import StaleVersion, claim_version


def claim(session: Session, obj: Any, expected_version: int | None) -> None:
    """Take the object's next version for this save, if it is still at `expected_version`.

    Without an expected version (the CLI, the directory migration, the API without `If-Match`) the
    version is bumped all the same, so a form opened before the change sees it is stale.

    :param obj: an account, a membership or a structure (an integer `version` column).
    :raises Conflict: ``stale``: someone saved it since that version was read.
    """
    if expected_version is None:
        obj.version += 1
        return
    try:
        claim_version(session, obj, expected_version)
    except StaleVersion:
        raise Conflict("stale") from None
