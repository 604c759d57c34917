"""Usagers, their recovery codes and their login sessions at the IdP (SPEC §4.1)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from idp.models.base import Base, new_uuid, utcnow


class AccountState(enum.StrEnum):
    PENDING = "pending"  # e-mail not verified yet
    ACTIVE = "active"
    BLOCKED = "blocked"  # too many failed logins, or an admin's decision
    DEACTIVATED = "deactivated"  # "mis en sommeil": cannot log in, data kept
    DELETED = "deleted"  # personal data erased, audit kept pseudonymised


class Civility(enum.StrEnum):
    MADAME = "mme"
    MONSIEUR = "m"


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(cls, name=name, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # login e-mail, lower-cased
    contact_email: Mapped[str | None] = mapped_column(String(254))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    civility: Mapped[Civility | None] = mapped_column(_enum(Civility, "civility"))
    given_name: Mapped[str] = mapped_column(String(100), default="")
    family_name: Mapped[str] = mapped_column(String(100), default="")
    state: Mapped[AccountState] = mapped_column(
        _enum(AccountState, "account_state"), default=AccountState.PENDING
    )
    failed_logins: Mapped[int] = mapped_column(default=0)
    is_admin: Mapped[bool] = mapped_column(default=False)  # platform admin
    managed: Mapped[bool] = mapped_column(default=False)  # created by an admin, password not set yet
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_last_step: Mapped[int | None]  # the last accepted 30 s step: a code is never accepted twice
    totp_enabled_at: Mapped[datetime | None]
    email_verified_at: Mapped[datetime | None]
    password_changed_at: Mapped[datetime | None]
    # Changes with every reset link sent: only the latest link works (issue 15 finding 10).
    reset_nonce: Mapped[str | None] = mapped_column(String(32))
    last_login_at: Mapped[datetime | None]
    locale: Mapped[str | None] = mapped_column(String(8))  # the language chosen with the switcher (issue 16)
    # Remembered across logins: the structure chosen last time (SPEC §4.2). Indexed like every
    # foreign key here: deleting a structure must not scan every account (bench/SCALE.md).
    last_structure_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("structures.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(default=1)  # bumped by profile/admin edits: stale forms get 409

    recovery_codes: Mapped[list[RecoveryCode]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    @property
    def name(self) -> str:
        return f"{self.given_name} {self.family_name}".strip()

    @property
    def totp_enabled(self) -> bool:
        return self.totp_enabled_at is not None

    # Flask-Login's user (idp.web.load_user). The browser's cookie carries the id of its login
    # session, not the account's (Flask-Login's "alternative token"): the row, loaded on every
    # request, decides, and ending it signs the browser out at once in every worker.
    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return self.state == AccountState.ACTIVE

    @property
    def login_session(self) -> LoginSession | None:
        """The login session this account is signed in through on this request (set by the loader
        or at login), else None."""
        return self.__dict__.get("_login_session")

    @login_session.setter
    def login_session(self, login: LoginSession | None) -> None:
        self.__dict__["_login_session"] = login

    def get_id(self) -> str | None:
        return self.login_session.id if self.login_session is not None else None

    def __repr__(self) -> str:
        return f"<User {self.email} {self.state}>"


class RecoveryCode(Base):
    """One of ten single-use TOTP recovery codes, stored as a SHA-256 digest."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_digest: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(back_populates="recovery_codes")


class LoginSession(Base):
    """A browser's session at the IdP; its id is the OIDC `sid` and the only thing in the cookie."""

    __tablename__ = "login_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    auth_time: Mapped[datetime] = mapped_column(default=utcnow)
    amr: Mapped[str] = mapped_column(String(64), default="pwd")  # space-separated RFC 8176 values
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    revoked_at: Mapped[datetime | None]
    # The "casquette": the structure every RP of this session sees (SPEC §4.2, §5.3).
    current_structure_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("structures.id", ondelete="SET NULL"),
                                                                   index=True)

    user: Mapped[User] = relationship(lazy="joined")

    __table_args__ = (Index("ix_login_sessions_user_active", "user_id", "revoked_at"),)

    @property
    def acr(self) -> str:
        # Two factors give the higher assurance level.
        return "urn:portail:acr:mfa" if "otp" in self.amr.split() else "urn:portail:acr:pwd"
