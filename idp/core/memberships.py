"""Memberships, access grants, join requests and invitations (SPEC §4.2–4.4).

The rules live here, not in the views: an admin grants or removes only roles they hold in that
structure, and only roles the structure is entitled to (`Authority.refusal`); a structure keeps at
least one admin (`keep_an_admin`); two admins saving the same member at once: one wins, the other
gets a Conflict (`idp.core.locking.claim`). Who loses roles is announced (`idp.core.signals`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from idp.core.accounts import check_password_policy, find_user, normalize_email, unblock
from idp.core.audit import audit
from idp.core.catalogue import roles_by_key
from idp.core.errors import Conflict, InvalidInput, NotAllowed, NotFound
from idp.core.locking import claim
from idp.core.passwords import Hasher
from idp.core.security import Origin, random_token, sha256_hex
from idp.core.signals import announce_access_lost
from idp.models import (
    AccessGrant,
    AccountState,
    AppRole,
    AuditEvent,
    Entitlement,
    Invitation,
    JoinRequest,
    JoinStatus,
    LoginSession,
    Membership,
    MembershipRole,
    MembershipStatus,
    Profile,
    Structure,
    User,
    utcnow,
)

JOIN_REQUEST_LIFETIME = timedelta(days=15)
JOIN_REMINDER_BEFORE = timedelta(days=3)
INVITATION_LIFETIME = timedelta(days=7)


# ------------------------------------------------------------------ reading

def membership_of(session: Session, user_id: uuid.UUID, structure_id: uuid.UUID) -> Membership | None:
    return session.scalar(
        select(Membership).where(Membership.user_id == user_id, Membership.structure_id == structure_id)
    )


def active_memberships(session: Session, user_id: uuid.UUID) -> list[Membership]:
    return list(session.scalars(
        select(Membership).join(Structure)
        .where(Membership.user_id == user_id, Membership.status == MembershipStatus.ACTIVE)
        .order_by(Structure.name)
    ))


def active_admin_count(session: Session, structure_id: uuid.UUID) -> int:
    return session.scalar(
        select(func.count()).select_from(Membership).join(User)
        .where(Membership.structure_id == structure_id, Membership.role == MembershipRole.ADMIN,
               Membership.status == MembershipStatus.ACTIVE, User.state == AccountState.ACTIVE)
    ) or 0


def live_role_ids(membership: Membership, now: datetime | None = None) -> set[int]:
    """Roles a membership holds now (grants without an end date or not yet ended)."""
    now = now or utcnow()
    return {g.role_id for g in membership.grants if g.ends_at is None or g.ends_at > now}


def entitled_role_ids(session: Session, structure_id: uuid.UUID) -> set[int]:
    return set(session.scalars(select(Entitlement.role_id).where(Entitlement.structure_id == structure_id)))


def role_labels(session: Session, role_ids: Iterable[int]) -> dict[int, AppRole]:
    ids = set(role_ids)
    return {r.id: r for r in session.scalars(select(AppRole).where(AppRole.id.in_(ids)))} if ids else {}


# ------------------------------------------------------------------ who may do what

@dataclass
class Authority:
    """What an actor may do in one structure: a platform admin, or an active admin there."""

    actor: User
    structure: Structure
    membership: Membership | None
    platform: bool
    held: set[int] = field(default_factory=set)
    entitled: set[int] = field(default_factory=set)

    @property
    def actor_id(self) -> uuid.UUID | None:
        """None for the platform itself (the `idp` command)."""
        return self.actor.id if self.actor is not None else None

    def refusal(self, role_id: int) -> str | None:
        """Why this actor cannot grant or remove the role here (None: allowed)."""
        if role_id not in self.entitled:
            return "not_entitled"
        if not self.platform and role_id not in self.held:
            return "not_held"
        return None


def authority(session: Session, actor: User, structure: Structure) -> Authority:
    """The actor's power over this structure.

    :raises NotAllowed: neither a platform admin nor an active admin of the structure.
    """
    membership = membership_of(session, actor.id, structure.id)
    is_admin = membership is not None and membership.is_admin and membership.is_active
    if not (is_admin or actor.is_admin):
        raise NotAllowed("not_admin")
    # A platform admin manages everything (SPEC §4.3), even where they are also a structure admin.
    return Authority(actor=actor, structure=structure, membership=membership, platform=actor.is_admin,
                     held=live_role_ids(membership) if is_admin and membership else set(),
                     entitled=entitled_role_ids(session, structure.id))


def operator_authority(session: Session, structure: Structure) -> Authority:
    """The operator's power at the command line (`idp member add`): every entitled role."""
    return Authority(actor=None, structure=structure, membership=None, platform=True,  # type: ignore[arg-type]
                     entitled=entitled_role_ids(session, structure.id))


def _check_roles(auth: Authority, role_ids: Iterable[int]) -> None:
    refused = {role_id: reason for role_id in role_ids if (reason := auth.refusal(role_id))}
    if refused:
        raise NotAllowed("roles_refused", refused=refused)


def _counts_as_admin(membership: Membership) -> bool:
    """An admin the structure can rely on: admin, active membership, active account."""
    return membership.is_admin and membership.is_active and membership.user.state == AccountState.ACTIVE


def keep_an_admin(session: Session, memberships: Iterable[Membership]) -> None:
    """The rule "a structure keeps one active admin" (SPEC §4.3), for every path that takes admins
    away: a demotion, a suspension, a detachment, an account's deletion (`memberships`: those about
    to stop counting as admins).

    Changes that may drop a structure's last admin are serialised on the structure's row: two admins
    demoting each other at once must not both succeed (a row lock on PostgreSQL; SQLite has a single
    writer anyway).

    :raises NotAllowed: ``last_admin`` with ``structures``, the names of the structures left without one.
    """
    orphaned = []
    for membership in sorted(memberships, key=lambda m: str(m.structure_id)):  # one lock order: no deadlock
        if not _counts_as_admin(membership):
            continue
        session.execute(select(Structure.id).where(Structure.id == membership.structure_id).with_for_update())
        if active_admin_count(session, membership.structure_id) <= 1:
            orphaned.append(membership.structure.name)
    if orphaned:
        raise NotAllowed("last_admin", structures=orphaned)


def _check_ends(ends_at: dict[int, datetime | None], role_ids: Iterable[int]) -> None:
    now = utcnow()
    if any((end := ends_at.get(r)) is not None and end <= now for r in role_ids):
        raise InvalidInput("end_in_past")


def _claim(session: Session, membership: Membership, expected_version: int | None) -> None:
    """Optimistic locking (`idp.core.locking.claim`): the save applies only if nobody saved this
    member since the form loaded."""
    claim(session, membership, expected_version)
    membership.updated_at = utcnow()


# ------------------------------------------------------------------ changing memberships

def add_member(session: Session, auth: Authority, user: User, origin: Origin, *, role_ids: Iterable[int] = (),
               admin: bool = False, ends_at: datetime | None = None) -> Membership:
    """Attach a user to the structure with grants (the grant rule applies).

    :raises InvalidInput: already a member.
    :raises NotAllowed: a role the actor may not grant.
    """
    role_ids = set(role_ids)
    _check_roles(auth, role_ids)
    if ends_at is not None and ends_at <= utcnow():
        raise InvalidInput("end_in_past")
    if membership_of(session, user.id, auth.structure.id) is not None:
        raise InvalidInput("already_member")
    membership = Membership(user=user, structure=auth.structure,
                            role=MembershipRole.ADMIN if admin else MembershipRole.MEMBER)
    membership.grants = [AccessGrant(role_id=r, ends_at=ends_at, granted_by=auth.actor_id) for r in role_ids]
    try:
        with session.begin_nested():  # added inside: begin_nested() flushes what is pending first
            session.add(membership)
    except IntegrityError as exc:
        # The same attachment sent twice at once: the twin's row won the (user, structure) key.
        raise InvalidInput("already_member") from exc
    audit(session, "membership.added", origin, actor=auth.actor_id, subject=user.id, structure=auth.structure.id,
          roles=sorted(role_ids), admin=admin)
    return membership


def set_grants(session: Session, auth: Authority, membership: Membership, role_ids: Iterable[int], origin: Origin, *,
               expected_version: int | None, ends_at: dict[int, datetime | None] | None = None) -> set[int]:
    """Replace a member's grants; only the roles that change are checked against the actor's rights.

    :returns: the role ids removed (their applications must forget the user, SPEC §5.3).
    :raises NotAllowed: a changed role the actor may not grant or remove.
    :raises Conflict: someone saved this member since the form was loaded.
    """
    _same_structure(auth, membership)
    wanted = set(role_ids)
    ends_at = ends_at or {}
    current = {g.role_id: g for g in membership.grants}
    changed_end = {r for r in wanted & set(current) if r in ends_at and ends_at[r] != current[r].ends_at}
    added, removed = wanted - set(current), set(current) - wanted
    _check_roles(auth, added | removed | changed_end)
    _check_ends(ends_at, added | changed_end)
    _claim(session, membership, expected_version)
    for role_id in removed:
        membership.grants.remove(current[role_id])
    for role_id in changed_end:
        current[role_id].ends_at = ends_at[role_id]
    for role_id in added:
        membership.grants.append(AccessGrant(role_id=role_id, ends_at=ends_at.get(role_id), granted_by=auth.actor_id))
    session.flush()
    # A removed role, or one given an end date, stops its application's refresh tokens now.
    ended = [current[r] for r in removed] + [current[r] for r in changed_end if current[r].ends_at is not None]
    announce_access_lost(session, ended, membership.user_id)
    if added or removed or changed_end:
        audit(session, "grants.changed", origin, actor=auth.actor_id, subject=membership.user_id,
              structure=membership.structure_id, added=sorted(added), removed=sorted(removed),
              ends_changed=sorted(changed_end))
    return removed


def set_admin(session: Session, auth: Authority, membership: Membership, admin: bool, origin: Origin, *,
              expected_version: int | None) -> None:
    """Promote or demote; the structure always keeps one active admin.

    :raises NotAllowed: ``last_admin`` when demoting the only active admin.
    """
    _same_structure(auth, membership)
    if membership.is_admin == admin:
        return
    if not admin:
        keep_an_admin(session, [membership])
    _claim(session, membership, expected_version)
    membership.role = MembershipRole.ADMIN if admin else MembershipRole.MEMBER
    audit(session, "membership.promoted" if admin else "membership.demoted", origin, actor=auth.actor_id,
          subject=membership.user_id, structure=membership.structure_id)


def set_suspended(session: Session, auth: Authority, membership: Membership, suspended: bool, origin: Origin, *,
                  expected_version: int | None) -> None:
    """Suspend (every grant stops at once) or reactivate a membership.

    :raises NotAllowed: ``last_admin`` when suspending the only active admin.
    """
    _same_structure(auth, membership)
    if suspended:
        keep_an_admin(session, [membership])
    _claim(session, membership, expected_version)
    was_active = membership.is_active
    membership.status = MembershipStatus.SUSPENDED if suspended else MembershipStatus.ACTIVE
    audit(session, "membership.suspended" if suspended else "membership.reactivated", origin, actor=auth.actor_id,
          subject=membership.user_id, structure=membership.structure_id)
    if suspended and was_active:
        announce_access_lost(session, membership.grants, membership.user_id)


def detach(session: Session, auth: Authority, membership: Membership, origin: Origin, *,
           expected_version: int | None) -> None:
    """Remove the member from the structure: every grant there goes with it.

    :raises NotAllowed: ``last_admin`` when detaching the only active admin.
    """
    _same_structure(auth, membership)
    keep_an_admin(session, [membership])
    _claim(session, membership, expected_version)
    audit(session, "membership.detached", origin, actor=auth.actor_id, subject=membership.user_id,
          structure=membership.structure_id)
    grants = list(membership.grants)
    session.delete(membership)
    announce_access_lost(session, grants, membership.user_id)
    session.flush()


def _same_structure(auth: Authority, found: Membership | JoinRequest | None, what: str = "membership") -> None:
    """Another structure's member or request looks missing: NotFound (a 404), never "forbidden", so
    that ids of other structures tell nothing (STYLE: loaders that 404).

    :raises NotFound: `what`, when `found` is None or belongs to another structure than the actor's.
    """
    if found is None or found.structure_id != auth.structure.id:
        raise NotFound(what)


# ------------------------------------------------------------------ joining

def grant_admin_by_email(session: Session, user: User, structure: Structure, origin: Origin) -> Membership | None:
    """SPEC §4.2: the usager whose login e-mail is the structure's registered admin e-mail becomes
    admin without approval, holding every role the structure is entitled to."""
    if not structure.admin_email or normalize_email(user.email) != structure.admin_email:
        return None
    if user.state != AccountState.ACTIVE:
        return None
    membership = membership_of(session, user.id, structure.id)
    entitled = entitled_role_ids(session, structure.id)
    if membership is None:
        membership = Membership(user=user, structure=structure, role=MembershipRole.ADMIN)
        session.add(membership)
    membership.role, membership.status = MembershipRole.ADMIN, MembershipStatus.ACTIVE
    held = {g.role_id for g in membership.grants}
    membership.grants.extend(AccessGrant(role_id=r) for r in entitled - held)
    session.flush()
    audit(session, "membership.admin_by_email", origin, actor=user.id, subject=user.id, structure=structure.id)
    return membership


def request_join(session: Session, user: User, structure: Structure, origin: Origin, *,
                 profile: Profile | None = None, message: str = "") -> JoinRequest | Membership:
    """Ask to join; returns the membership at once for the designated admin e-mail.

    :raises InvalidInput: ``already_member``, ``already_pending``, ``profile_mismatch``.
    """
    if membership_of(session, user.id, structure.id) is not None:
        raise InvalidInput("already_member")
    admin = grant_admin_by_email(session, user, structure, origin)
    if admin is not None:
        return admin
    if profile is not None and profile.kind != structure.kind:
        raise InvalidInput("profile_mismatch")
    # A request past its 15 days no longer blocks a new one, even before `idp requests expire` runs.
    pending = session.scalar(select(JoinRequest.id).where(
        JoinRequest.user_id == user.id, JoinRequest.structure_id == structure.id, JoinRequest.is_open))
    if pending is not None:
        raise InvalidInput("already_pending")
    request = JoinRequest(user=user, structure=structure, profile=profile, message=message.strip()[:500],
                          expires_at=utcnow() + JOIN_REQUEST_LIFETIME)
    session.add(request)
    session.flush()
    audit(session, "join.requested", origin, actor=user.id, subject=user.id, structure=structure.id,
          request=request.id, profile=profile.name if profile else None)
    return request


def _pending(request: JoinRequest) -> None:
    if not request.is_open:
        raise InvalidInput("not_pending")


def _decide(session: Session, request: JoinRequest, status: JoinStatus, actor: uuid.UUID | None) -> None:
    """Claim the pending request for one decision: of two admins deciding at once, the second gets
    ``not_pending`` (a conditional UPDATE, not a read-then-write)."""
    now = utcnow()
    done = session.execute(
        update(JoinRequest).where(JoinRequest.id == request.id, JoinRequest.is_open)
        .values(status=status, decided_at=now, decided_by=actor)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not done:
        session.refresh(request)
        raise InvalidInput("not_pending")
    session.refresh(request, ["status", "decided_at", "decided_by"])


def accept_request(session: Session, auth: Authority, request: JoinRequest, role_ids: Iterable[int],
                   origin: Origin) -> Membership:
    """Accept with the grants the admin chose (the grant rule applies)."""
    _same_structure(auth, request, "request")
    _pending(request)
    role_ids = set(role_ids)
    _check_roles(auth, role_ids)
    _decide(session, request, JoinStatus.ACCEPTED, auth.actor_id)
    membership = add_member(session, auth, request.user, origin, role_ids=role_ids)
    audit(session, "join.accepted", origin, actor=auth.actor_id, subject=request.user_id,
          structure=request.structure_id, request=request.id)
    return membership


def decline_request(session: Session, auth: Authority, request: JoinRequest, origin: Origin, reason: str = "") -> None:
    _same_structure(auth, request, "request")
    _pending(request)
    _decide(session, request, JoinStatus.DECLINED, auth.actor_id)
    request.reason = reason.strip()[:500]
    audit(session, "join.declined", origin, actor=auth.actor_id, subject=request.user_id,
          structure=request.structure_id, request=request.id)


def cancel_request(session: Session, user: User, request: JoinRequest, origin: Origin) -> None:
    if request.user_id != user.id:
        raise NotFound("request")
    _pending(request)
    _decide(session, request, JoinStatus.CANCELLED, None)
    audit(session, "join.cancelled", origin, actor=user.id, subject=user.id, structure=request.structure_id,
          request=request.id)


def due_join_requests(session: Session, now: datetime | None = None) -> tuple[list[JoinRequest], list[JoinRequest]]:
    """(requests to expire now, requests whose admins need a reminder); the caller sends the mail."""
    now = now or utcnow()
    # Two overlapping runs (cron) must not both mail: the rows one run holds are skipped by the other
    # until it commits, and then they are no longer due (PostgreSQL; SQLite has a single writer).
    expired = list(session.scalars(select(JoinRequest).where(
        JoinRequest.status == JoinStatus.PENDING, JoinRequest.expires_at <= now)
        .with_for_update(skip_locked=True)))
    # Open at `now` (the job's clock, not JoinRequest.is_open's): due within JOIN_REMINDER_BEFORE.
    remind = list(session.scalars(select(JoinRequest).where(
        JoinRequest.open_at(now), JoinRequest.reminded_at.is_(None),
        JoinRequest.expires_at <= now + JOIN_REMINDER_BEFORE)
        .with_for_update(skip_locked=True)))
    for request in expired:
        request.status, request.decided_at = JoinStatus.EXPIRED, now
        audit(session, "join.expired", Origin(), subject=request.user_id, structure=request.structure_id,
              request=request.id)
    for request in remind:
        request.reminded_at = now
    return expired, remind


def structure_admins(session: Session, structure_id: uuid.UUID) -> list[User]:
    return list(session.scalars(
        select(User).join(Membership, Membership.user_id == User.id)
        .where(Membership.structure_id == structure_id, Membership.role == MembershipRole.ADMIN,
               Membership.status == MembershipStatus.ACTIVE, User.state == AccountState.ACTIVE)
    ))


def pending_request_count(session: Session, user_id: uuid.UUID) -> int:
    """The alert badge: pending requests in the structures this user administers."""
    admin_of = select(Membership.structure_id).where(
        Membership.user_id == user_id, Membership.role == MembershipRole.ADMIN,
        Membership.status == MembershipStatus.ACTIVE)
    return session.scalar(select(func.count()).select_from(JoinRequest).where(
        JoinRequest.is_open, JoinRequest.structure_id.in_(admin_of))) or 0


def moderation_queue(session: Session) -> list[JoinRequest]:
    """Pending requests of structures that have no active admin: the platform admins decide."""
    has_admin = select(Membership.structure_id).join(User).where(
        Membership.role == MembershipRole.ADMIN, Membership.status == MembershipStatus.ACTIVE,
        User.state == AccountState.ACTIVE)
    return list(session.scalars(select(JoinRequest).where(
        JoinRequest.is_open, JoinRequest.structure_id.not_in(has_admin)).order_by(JoinRequest.created_at)))


# ------------------------------------------------------------------ invitations

def invite(session: Session, auth: Authority, email: str, origin: Origin, *, given_name: str, family_name: str,
           role_ids: Iterable[int] = ()) -> tuple[Membership, str | None]:
    """Attach by login e-mail; without an account, create a managed pending one and an invitation.

    :returns: the membership and the invitation token to e-mail (None when the account existed).
    :raises InvalidInput: ``already_member``; ``name_required`` for a new account without a name.
    :raises NotAllowed: a role the actor may not grant.
    """
    email = normalize_email(email)
    role_ids = set(role_ids)
    _check_roles(auth, role_ids)
    user = find_user(session, email)
    token = None
    if user is None:
        if not given_name.strip() or not family_name.strip():
            raise InvalidInput("name_required")
        user = User(email=email, given_name=given_name.strip()[:100], family_name=family_name.strip()[:100],
                    state=AccountState.PENDING, managed=True)
        try:
            with session.begin_nested():
                session.add(user)
        except IntegrityError as exc:
            # The same invitation sent twice at once: the twin created the account and attached it.
            raise InvalidInput("already_member") from exc
        audit(session, "account.invited", origin, actor=auth.actor_id, subject=user.id, structure=auth.structure.id)
    membership = add_member(session, auth, user, origin, role_ids=role_ids)
    if user.managed and user.state == AccountState.PENDING:
        token = new_invitation(session, auth, user, origin)
    return membership, token


def new_invitation(session: Session, auth: Authority, user: User, origin: Origin, *,
                   expires_at: datetime | None = None) -> str:
    """(Re)issue the single-use link; an earlier one stops working.

    :param expires_at: keep this expiry (a resend); by default a fresh 7-day link (a regeneration).
    """
    session.execute(update(Invitation).where(Invitation.user_id == user.id, Invitation.used_at.is_(None))
                    .values(used_at=utcnow()).execution_options(synchronize_session=False))
    token = random_token(32)
    session.add(Invitation(structure_id=auth.structure.id, user_id=user.id, token_digest=sha256_hex(token),
                           invited_by=auth.actor_id, expires_at=expires_at or utcnow() + INVITATION_LIFETIME))
    session.flush()
    audit(session, "invitation.sent", origin, actor=auth.actor_id, subject=user.id, structure=auth.structure.id,
          renewed=expires_at is None)
    return token


@dataclass(frozen=True)
class PendingInvitation:
    """A member of the structure who has not set their password yet, and their latest link."""

    membership: Membership
    user: User
    invitation: Invitation | None

    @property
    def expired(self) -> bool:
        return self.invitation is None or self.invitation.expires_at <= utcnow()


INVITATIONS_SHOWN = 200


def pending_invitations(session: Session, structure_id: uuid.UUID) -> list[PendingInvitation]:
    """The structure's members whose managed account awaits its password (two queries, bounded)."""
    rows = session.execute(
        select(Membership, User).join(User, Membership.user_id == User.id)
        .where(Membership.structure_id == structure_id, User.managed.is_(True), User.state == AccountState.PENDING)
        .order_by(Membership.created_at.desc()).limit(INVITATIONS_SHOWN)
    ).all()
    latest: dict[uuid.UUID, Invitation] = {}
    if rows:
        for invitation in session.scalars(select(Invitation).where(
                Invitation.user_id.in_([user.id for _, user in rows])).order_by(Invitation.created_at)):
            latest[invitation.user_id] = invitation
    return [PendingInvitation(m, u, latest.get(u.id)) for m, u in rows]


def reissue_invitation(session: Session, auth: Authority, membership: Membership, origin: Origin, *,
                       regenerate: bool) -> str:
    """Resend (same expiry, when still valid) or regenerate (7 fresh days) a member's invitation.

    :raises NotFound: the membership is not in this structure.
    :raises InvalidInput: ``not_invited``: the account is not awaiting its password.
    """
    _same_structure(auth, membership)
    user = membership.user
    if not (user.managed and user.state == AccountState.PENDING):
        raise InvalidInput("not_invited")
    current = session.scalar(select(Invitation).where(Invitation.user_id == user.id, Invitation.used_at.is_(None))
                             .order_by(Invitation.created_at.desc()).limit(1))
    keep = None if regenerate or current is None or current.expires_at <= utcnow() else current.expires_at
    return new_invitation(session, auth, user, origin, expires_at=keep)


def find_invitation(session: Session, token: str) -> Invitation:
    """:raises NotFound: unknown, used or expired link."""
    invitation = session.scalar(select(Invitation).where(Invitation.token_digest == sha256_hex(token or "")))
    if invitation is None or invitation.used_at is not None or invitation.expires_at <= utcnow():
        raise NotFound("invitation")
    return invitation


def invitation_holder(session: Session, token: str) -> uuid.UUID | None:
    """Whose account a link was for, used or not (a second click by its owner, already signed in)."""
    return session.scalar(select(Invitation.user_id).where(Invitation.token_digest == sha256_hex(token or "")))


def accept_invitation(session: Session, hasher: Hasher, invitation: Invitation, password: str, origin: Origin, *,
                      portal_name: str) -> User:
    """The invited person sets a password: the managed account becomes theirs and active.

    :raises InvalidInput: ``weak_password`` with ``problems`` (nothing is used up).
    :raises NotFound: the link was used meanwhile.
    """
    user = invitation.user
    check_password_policy(password, personal=[user.given_name, user.family_name, user.email],
                          portal_name=portal_name)
    done = session.execute(update(Invitation).where(Invitation.id == invitation.id, Invitation.used_at.is_(None))
                           .values(used_at=utcnow()).execution_options(synchronize_session=False)).rowcount
    if not done or user.state != AccountState.PENDING:
        raise NotFound("invitation")
    now = utcnow()
    user.password_hash, user.password_changed_at = hasher.hash(password), now
    user.state, user.managed, user.email_verified_at = AccountState.ACTIVE, False, now
    user.failed_logins = 0
    session.flush()
    audit(session, "invitation.accepted", origin, actor=user.id, subject=user.id, structure=invitation.structure_id)
    return user


# ------------------------------------------------------------------ the structure admin's screens

def get_membership(session: Session, auth: Authority, membership_id: int) -> Membership:
    """A membership of the actor's structure.

    :raises NotFound: unknown, or in another structure (never tell which).
    """
    membership = session.get(Membership, membership_id)
    _same_structure(auth, membership)
    return membership  # type: ignore[return-value]


def get_request(session: Session, auth: Authority, request_id: int) -> JoinRequest:
    """:raises NotFound: unknown, or a request to another structure."""
    request = session.get(JoinRequest, request_id)
    _same_structure(auth, request, "request")
    return request  # type: ignore[return-value]


def pending_requests(session: Session, structure_id: uuid.UUID) -> list[JoinRequest]:
    """The structure's requests awaiting a decision, oldest first."""
    return list(session.scalars(
        select(JoinRequest).where(JoinRequest.structure_id == structure_id, JoinRequest.is_open)
        .order_by(JoinRequest.created_at)))


def decided_requests(session: Session, structure_id: uuid.UUID, limit: int = 20) -> list[JoinRequest]:
    """The latest decided (or expired) requests of the structure."""
    return list(session.scalars(
        select(JoinRequest).where(JoinRequest.structure_id == structure_id, JoinRequest.status != JoinStatus.PENDING)
        .order_by(JoinRequest.decided_at.desc(), JoinRequest.id.desc()).limit(limit)))


def unblock_member(session: Session, auth: Authority, membership: Membership, origin: Origin) -> User:
    """A structure admin unblocks a member's account (too many failed logins, SPEC §4.3).

    :raises NotFound: the membership is not in this structure.
    :raises Conflict: ``not_blocked``.
    :raises NotAllowed: ``blocked_by_platform``: a platform admin's decision stays theirs.
    """
    _same_structure(auth, membership)
    user = membership.user
    if user.state != AccountState.BLOCKED:
        raise Conflict("not_blocked")
    last_block = session.scalar(select(AuditEvent).where(
        AuditEvent.subject_id == user.id, AuditEvent.event == "account.blocked")
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(1))
    if not auth.platform and last_block is not None and (last_block.details or {}).get("reason") == "admin":
        raise NotAllowed("blocked_by_platform")
    unblock(session, user, auth.actor, origin)
    audit(session, "membership.account_unblocked", origin, actor=auth.actor_id, subject=user.id,
          structure=auth.structure.id)
    return user


# ------------------------------------------------------------------ the current structure

def choose_structure(session: Session, login: LoginSession, structure_id: uuid.UUID, origin: Origin) -> Structure:
    """Switch the session's current structure (every RP of the session sees it, SPEC §4.2).

    :raises NotFound: not an active member of that structure.
    """
    membership = membership_of(session, login.user_id, structure_id)
    if membership is None or not membership.is_active:
        raise NotFound("structure")
    login.current_structure_id = structure_id
    login.user.last_structure_id = structure_id
    audit(session, "structure.switched", origin, actor=login.user_id, subject=login.user_id, structure=structure_id)
    return membership.structure


def active_structure_ids(session: Session, user_id: uuid.UUID) -> list[uuid.UUID]:
    """The structures the account is an active member of (any order)."""
    return list(session.scalars(select(Membership.structure_id).where(
        Membership.user_id == user_id, Membership.status == MembershipStatus.ACTIVE)))


def default_structure(user: User, structure_ids: list[uuid.UUID]) -> uuid.UUID | None:
    """The structure a new session starts in, among the account's `structure_ids`: the last one
    chosen, or the only one."""
    if user.last_structure_id in structure_ids:
        return user.last_structure_id
    return structure_ids[0] if len(structure_ids) == 1 else None


def grants_by_key(session: Session, keys: Iterable[str]) -> set[int]:
    """Role ids from "app:role" keys (the CLI's --grant).

    :raises InvalidInput: an unknown key.
    """
    known = roles_by_key(session)
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise InvalidInput(f"rôle inconnu : {', '.join(unknown)}")
    return {known[k].id for k in keys}


