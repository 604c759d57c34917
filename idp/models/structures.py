"""Structures, applications and their roles, entitlements, profiles, memberships, access grants,
join requests and invitations (SPEC §2, §3, §4.2–4.4)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Enum,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    and_,
    event,
    inspect,
    update,
)
from sqlalchemy.ext.hybrid import hybrid_method, hybrid_property
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from idp.models.accounts import User
from idp.models.base import Base, new_uuid, utcnow


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(cls, name=name, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])


class StructureKind(enum.StrEnum):
    ORGANISME = "organisme"
    LYCEE = "lycee"
    REGION = "region"
    AUTRE = "autre"


class Structure(Base):
    __tablename__ = "structures"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    siret: Mapped[str] = mapped_column(String(14), unique=True)
    siren: Mapped[str] = mapped_column(String(9), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[StructureKind] = mapped_column(_enum(StructureKind, "structure_kind"), default=StructureKind.ORGANISME)
    # An établissement secondaire points at its siège (same SIREN).
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("structures.id"), index=True)
    city: Mapped[str] = mapped_column(String(100), default="")
    postal_code: Mapped[str] = mapped_column(String(10), default="")
    code: Mapped[str | None] = mapped_column(String(20), index=True)  # UAI of a lycée, internal codes
    searchable: Mapped[bool] = mapped_column(default=True)  # shown by the instant search
    # The account admin's e-mail named at registration (REPERNET): that usager becomes admin.
    admin_email: Mapped[str | None] = mapped_column(String(254), index=True)
    # Lower-cased "name city code" for the instant search (one indexed LIKE, SPEC §4.2).
    search_text: Mapped[str] = mapped_column(String(400), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(default=1)

    parent: Mapped[Structure | None] = relationship(remote_side=[id])

    @property
    def is_siege(self) -> bool:
        return self.parent_id is None


class Application(Base):
    """A relying party's business application and its role catalogue (SPEC §3)."""

    __tablename__ = "applications"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)  # the --app name: sam, repernet, ...
    label: Mapped[str] = mapped_column(String(120))
    url: Mapped[str | None] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")

    roles: Mapped[list[AppRole]] = relationship(back_populates="application", order_by="AppRole.id")


class AppRole(Base):
    __tablename__ = "app_roles"

    id: Mapped[int] = mapped_column(primary_key=True)
    app: Mapped[str] = mapped_column(ForeignKey("applications.name", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(40))
    label: Mapped[str] = mapped_column(String(120))
    region_only: Mapped[bool] = mapped_column(default=False)  # acheteur, instructeur, moderateur

    application: Mapped[Application] = relationship(back_populates="roles")

    __table_args__ = (UniqueConstraint("app", "name"),)

    @property
    def key(self) -> str:
        return f"{self.app}:{self.name}"


class Entitlement(Base):
    """A role a structure may hold at all ("accès de la structure aux applications")."""

    __tablename__ = "entitlements"

    structure_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("structures.id", ondelete="CASCADE"), primary_key=True)
    role_id: Mapped[int] = mapped_column(ForeignKey("app_roles.id", ondelete="CASCADE"), primary_key=True, index=True)


class Profile(Base):
    """A named bundle of roles offered to a kind of structure (Enseignant, Gestionnaire, ...)."""

    __tablename__ = "profiles"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[StructureKind] = mapped_column(_enum(StructureKind, "structure_kind"))
    description: Mapped[str] = mapped_column(Text, default="")

    roles: Mapped[list[AppRole]] = relationship(secondary="profile_roles", order_by="AppRole.id")

    __table_args__ = (UniqueConstraint("kind", "name"),)


class ProfileRole(Base):
    __tablename__ = "profile_roles"

    profile_id: Mapped[int] = mapped_column(ForeignKey("profiles.id", ondelete="CASCADE"), primary_key=True)
    role_id: Mapped[int] = mapped_column(ForeignKey("app_roles.id", ondelete="CASCADE"), primary_key=True, index=True)


class MembershipRole(enum.StrEnum):
    ADMIN = "admin"
    MEMBER = "member"


class MembershipStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class Membership(Base):
    """A rattachement: a usager in a structure, admin or member, active or suspended."""

    __tablename__ = "memberships"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    structure_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("structures.id", ondelete="CASCADE"))
    role: Mapped[MembershipRole] = mapped_column(_enum(MembershipRole, "membership_role"), default=MembershipRole.MEMBER)
    status: Mapped[MembershipStatus] = mapped_column(
        _enum(MembershipStatus, "membership_status"), default=MembershipStatus.ACTIVE
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(default=1)  # optimistic locking: two admins, one wins
    # Copies of the member's account, kept by the listeners below (`member_copies`): the members page
    # sorts, searches and pages on memberships alone, through one index per order, however many
    # accounts the platform holds (bench/SCALE.md: joining users to sort read the whole table).
    # "family given email" lower-cased, for the name order and the search:
    sort_key: Mapped[str] = mapped_column(String(460), default="", server_default="")
    user_email: Mapped[str] = mapped_column(String(254), default="", server_default="")  # the login e-mail
    last_login_at: Mapped[datetime | None]  # re-copied at each login (two or so rows per account)

    user: Mapped[User] = relationship()
    structure: Mapped[Structure] = relationship()
    grants: Mapped[list[AccessGrant]] = relationship(back_populates="membership", cascade="all, delete-orphan")

    __table_args__ = (
        UniqueConstraint("user_id", "structure_id"),
        # The members page: one structure's members, by role and status (SPEC §4.3).
        Index("ix_memberships_structure_status", "structure_id", "status", "role"),
        Index("ix_memberships_structure_sort", "structure_id", "sort_key", "id"),
        Index("ix_memberships_structure_email", "structure_id", "user_email", "id"),
        Index("ix_memberships_structure_last_login", "structure_id", "last_login_at"),
    )

    @property
    def is_admin(self) -> bool:
        return self.role == MembershipRole.ADMIN

    @property
    def is_active(self) -> bool:
        return self.status == MembershipStatus.ACTIVE


class AccessGrant(Base):
    """A droit applicatif: a member holds an application role in a structure, maybe until a date."""

    __tablename__ = "access_grants"

    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id", ondelete="CASCADE"), primary_key=True)
    role_id: Mapped[int] = mapped_column(ForeignKey("app_roles.id", ondelete="CASCADE"), primary_key=True, index=True)
    ends_at: Mapped[datetime | None]
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)
    granted_by: Mapped[uuid.UUID | None]

    membership: Mapped[Membership] = relationship(back_populates="grants")
    role: Mapped[AppRole] = relationship(lazy="joined")


class JoinStatus(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class JoinRequest(Base):
    __tablename__ = "join_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    structure_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("structures.id", ondelete="CASCADE"))
    profile_id: Mapped[int | None] = mapped_column(ForeignKey("profiles.id", ondelete="SET NULL"), index=True)
    message: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[JoinStatus] = mapped_column(_enum(JoinStatus, "join_status"), default=JoinStatus.PENDING)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    reminded_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[uuid.UUID | None]
    reason: Mapped[str] = mapped_column(String(500), default="")

    user: Mapped[User] = relationship()
    structure: Mapped[Structure] = relationship()
    profile: Mapped[Profile | None] = relationship()

    __table_args__ = (Index("ix_join_requests_structure_status", "structure_id", "status"),)

    @hybrid_method
    def open_at(self, now: datetime) -> bool:
        """Still awaiting a decision at `now`: pending and within its 15 days (SPEC §4.2), even before
        `idp requests expire` marks it expired. The one rule; usable in queries too
        (`where(JoinRequest.open_at(now))`) for a caller with its own clock (the jobs, the console)."""
        return self.status == JoinStatus.PENDING and self.expires_at > now

    @open_at.inplace.expression
    @classmethod
    def _open_at_expression(cls, now: datetime) -> ColumnElement[bool]:
        return and_(cls.status == JoinStatus.PENDING, cls.expires_at > now)

    @hybrid_property
    def is_open(self) -> bool:
        """`open_at` now (`where(JoinRequest.is_open)` in queries)."""
        return self.open_at(utcnow())

    @is_open.inplace.expression
    @classmethod
    def _is_open_expression(cls) -> ColumnElement[bool]:
        return cls.open_at(utcnow())


class Invitation(Base):
    """An admin attached someone with no account yet: a pending managed account and a link."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    structure_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("structures.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()
    structure: Mapped[Structure] = relationship()


def member_sort_key(user: User) -> str:
    """Sorts like (lower(family_name), lower(given_name), email); \x01 sorts before any letter."""
    return f"{(user.family_name or '').lower()}\x01{(user.given_name or '').lower()}\x01{user.email}"[:460]


def member_copies(user: User) -> dict[str, Any]:
    """What a membership copies from its account (Membership.sort_key, user_email, last_login_at)."""
    return {"sort_key": member_sort_key(user), "user_email": user.email, "last_login_at": user.last_login_at}


# Each copy, and the account's columns it is made of.
_COPIED_FROM = {"sort_key": ("family_name", "given_name", "email"), "user_email": ("email",),
                "last_login_at": ("last_login_at",)}


def recopy(user: User, copies: tuple[str, ...] = tuple(_COPIED_FROM)) -> Any:
    """The UPDATE that re-copies an account into its memberships (only `copies`). The listeners
    issue it for ORM changes; code that changes an account with a Core UPDATE runs it itself.
    A copy is not a change of the membership: its `updated_at` stays."""
    values = {name: value for name, value in member_copies(user).items() if name in copies}
    return (update(Membership).where(Membership.user_id == user.id)
            .values(**values, updated_at=Membership.updated_at))


def _fill_copies(session: Session, _flush_context: Any, _instances: Any) -> None:
    for obj in session.new:
        if isinstance(obj, Membership):
            user = obj.user if obj.user is not None else session.get(User, obj.user_id)
            if user is not None:
                for name, value in member_copies(user).items():
                    setattr(obj, name, value)


def _follow_users(session: Session, _flush_context: Any) -> None:
    """A renamed account (or a changed login e-mail, a new login) updates its memberships' copies,
    in the same flush: only the copies whose columns changed, so that a login never writes back a
    name that another request changed since this one read the account."""
    for obj in session.dirty:
        if not isinstance(obj, User):
            continue
        attrs = inspect(obj).attrs
        changed = tuple(copy for copy, columns in _COPIED_FROM.items()
                        if any(attrs[column].history.has_changes() for column in columns))
        if changed:
            session.connection().execute(recopy(obj, changed))


event.listen(Session, "before_flush", _fill_copies)
event.listen(Session, "after_flush", _follow_users)
