"""Claims by scope (SPEC §5.1): the one place that decides what a client learns about a user."""

from __future__ import annotations

from typing import Any

from idp.models import Civility, Client, User

_GENDER = {Civility.MADAME: "female", Civility.MONSIEUR: "male"}

SCOPES_SUPPORTED = ["openid", "profile", "email", "structures"]
CLAIMS_SUPPORTED = [
    "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "azp", "at_hash",
    "name", "given_name", "family_name", "gender", "updated_at", "email", "email_verified",
]


def user_claims(user: User, scopes: set[str], client: Client) -> dict[str, Any]:
    """The user's claims for these scopes; `sub` always (the stable account UUID)."""
    claims: dict[str, Any] = {"sub": str(user.id)}
    if "profile" in scopes:
        claims.update(
            name=user.name,
            given_name=user.given_name,
            family_name=user.family_name,
            updated_at=int(user.updated_at.timestamp()),
        )
        if user.civility in _GENDER:
            claims["gender"] = _GENDER[user.civility]
    if "email" in scopes:
        claims.update(email=user.email, email_verified=user.email_verified_at is not None)
    return claims
