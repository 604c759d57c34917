"""Typed SQLAlchemy 2.0 models; importing this package registers every table on Base.metadata."""

from idp.models.accounts import AccountState, Civility, LoginSession, RecoveryCode, User
from idp.models.audit import AuditEvent
from idp.models.base import Base, utcnow
from idp.models.mail import OutboxMail
from idp.models.oauth import (
    AuthorizationCode,
    Client,
    ClientSession,
    Consent,
    RefreshToken,
    RevokedAccessToken,
    SigningKey,
    UsedAssertion,
)

__all__ = [
    "AccountState", "AuditEvent", "AuthorizationCode", "Base", "Civility", "Client",
    "ClientSession", "Consent", "LoginSession", "OutboxMail", "RecoveryCode", "RefreshToken",
    "RevokedAccessToken", "SigningKey", "UsedAssertion", "User", "utcnow",
]
