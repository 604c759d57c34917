"""Ending access: IdP sessions ended, tokens revoked, back-channel logout sent (SPEC §4.7, §5.3).

(Interface first; the OIDC work fills in the back-channel delivery.)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import update
from sqlalchemy.orm import Session

from idp.models import LoginSession, RefreshToken, utcnow


def sessions_ended(session: Session, logins: Iterable[LoginSession]) -> None:
    """Call after revoking IdP sessions (logout, "my sessions" revoke): tells the RPs of each."""


def user_access_ended(session: Session, user_id: uuid.UUID) -> None:
    """Call when an account stops being usable (blocked, deactivated, deleted, password reset):
    revokes every IdP session and refresh token of the user and tells the RPs."""
    now = utcnow()
    session.execute(
        update(LoginSession)
        .where(LoginSession.user_id == user_id, LoginSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
