"""Typed SQLAlchemy 2.0 models; importing this package registers every table on Base.metadata."""

from idp.models.accounts import AccountState, Civility, LoginSession, RecoveryCode, User
from idp.models.audit import AuditEvent
from idp.models.base import Base, utcnow
from idp.models.legacy import LegacyLink
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
from idp.models.structures import (
    AccessGrant,
    Application,
    AppRole,
    Entitlement,
    Invitation,
    JoinRequest,
    JoinStatus,
    Membership,
    MembershipRole,
    MembershipStatus,
    Profile,
    ProfileRole,
    Structure,
    StructureKind,
)

__all__ = [
    "AccessGrant", "AppRole", "Application", "Entitlement", "Invitation", "JoinRequest", "JoinStatus",
    "Membership", "MembershipRole", "MembershipStatus", "Profile", "ProfileRole", "Structure",
    "StructureKind",
    "AccountState", "AuditEvent", "AuthorizationCode", "Base", "Civility", "Client",
    "ClientSession", "Consent", "LegacyLink", "LoginSession", "OutboxMail", "RecoveryCode", "RefreshToken",
    "RevokedAccessToken", "SigningKey", "UsedAssertion", "User", "utcnow",
]
