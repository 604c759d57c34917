"""Legacy shared accounts (SPEC §4.6): link a usager to an old SICORRA account, migrate the directory.

Two ways to link, as in the user guides (seed 000 §3.B, seed 001 "Comment se rattacher", methods 1-2):
- *I know the password*: a bind as the entry; the usager becomes a member of the entry's structure
  with the entry's roles at once, admin when the id ends in ``_ADM`` or the entry is in the
  directory's admin group;
- *I forgot it*: a join request to the structure's admins, or, when the structure has no active
  admin, a signed link mailed to the entry's address (the view sends it) which, followed by the
  same logged-in usager, links them as the password would have.
Several usagers may link the same shared account. Every link is audited; the password never is.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.core.audit import audit
from idp.core.catalogue import roles_by_key
from idp.core.errors import InvalidInput, NotAllowed
from idp.core.memberships import (
    Authority,
    active_admin_count,
    add_member,
    entitled_role_ids,
    membership_of,
    request_join,
    set_admin,
    set_grants,
)
from idp.core.security import Origin
from idp.core.structures import StructureData, clean_siret, create_structure, find_by_siret
from idp.directory import LegacyEntry
from idp.models import (
    Entitlement,
    JoinRequest,
    JoinStatus,
    LegacyLink,
    Membership,
    Structure,
    StructureKind,
    User,
    utcnow,
)

# The link methods, re-exported for the views (core.PASSWORD …).
from idp.models.legacy import MAIL as MAIL
from idp.models.legacy import PASSWORD as PASSWORD
from idp.models.legacy import REQUEST


def links_of(session: Session, user_id: uuid.UUID) -> list[tuple[LegacyLink, Structure, str]]:
    """The usager's links, for their account page, each with its state: ``linked``, or for a link
    waiting on a join request the request's status (``pending``, ``declined``, ``expired``…)."""
    rows = session.execute(
        select(LegacyLink, Structure, JoinRequest.status).join(Structure, Structure.id == LegacyLink.structure_id)
        .outerjoin(JoinRequest, JoinRequest.id == LegacyLink.join_request_id)
        .where(LegacyLink.user_id == user_id).order_by(LegacyLink.linked_at.desc())
    ).all()
    return [(link, structure, _state(link, status)) for link, structure, status in rows]


def _state(link: LegacyLink, status: JoinStatus | None) -> str:
    if link.method != REQUEST or status == JoinStatus.ACCEPTED:
        return "linked"
    return str(status.value) if status is not None else JoinStatus.CANCELLED.value


# ------------------------------------------------------------------ structures from the directory

_KINDS = {k.value: k for k in StructureKind}


@dataclass
class Provisioned:
    structure: Structure
    created: bool
    entitlements_added: list[str]
    unknown_roles: list[str]


def provision_structure(session: Session, entry: LegacyEntry, origin: Origin, *,
                        actor: uuid.UUID | None = None) -> Provisioned:
    """The entry's structure, created when missing (default entitlements of its kind), then entitled
    to every role the legacy account gave (region-only roles only for a region).

    :raises InvalidInput: the entry's SIRET is not valid.
    """
    siret = clean_siret(entry.siret)
    structure = find_by_siret(session, siret)
    created = structure is None
    if structure is None:
        structure = create_structure(session, StructureData(
            siret=siret, name=(entry.name or entry.id)[:200], kind=_KINDS.get(entry.kind, StructureKind.ORGANISME),
            city=entry.city[:100], postal_code=entry.postal_code[:10], code=entry.code[:20] or None,
        ), origin, actor=actor)
    known = roles_by_key(session)
    unknown = [key for key in entry.roles if key not in known]
    entitled = entitled_role_ids(session, structure.id)
    added = []
    for key in entry.roles:
        role = known.get(key)
        if role is None or role.id in entitled:
            continue
        if role.region_only and structure.kind != StructureKind.REGION:
            unknown.append(key)
            continue
        session.add(Entitlement(structure_id=structure.id, role_id=role.id))
        entitled.add(role.id)
        added.append(key)
    if added:
        session.flush()
        audit(session, "structure.entitlements_imported", origin, actor=actor, structure=structure.id,
              legacy_id=entry.id, roles=added)
    return Provisioned(structure, created, added, unknown)


def _entry_role_ids(session: Session, entry: LegacyEntry, structure: Structure) -> set[int]:
    known = roles_by_key(session)
    entitled = entitled_role_ids(session, structure.id)
    return {known[k].id for k in entry.roles if k in known and known[k].id in entitled}


# ------------------------------------------------------------------ linking

@dataclass
class LinkResult:
    structure: Structure
    membership: Membership
    admin: bool
    roles: list[int]
    already_linked: bool


def link(session: Session, user: User, entry: LegacyEntry, method: str, origin: Origin) -> LinkResult:
    """Link the usager to a verified legacy entry (the password was right, or the mailed link was
    followed): membership of the entry's structure with the entry's roles, admin for ``_ADM`` or the
    admin group. An existing membership keeps its grants and gains the entry's.

    :raises NotAllowed: ``membership_suspended`` — an admin suspended this usager there.
    :raises InvalidInput: the entry's SIRET is not valid.
    """
    structure = provision_structure(session, entry, origin, actor=user.id).structure
    role_ids = _entry_role_ids(session, entry, structure)
    # The directory vouches for the roles, not a structure admin: the grant rule's "held" check
    # does not apply (every role is checked against the structure's entitlements all the same).
    auth = Authority(actor=user, structure=structure, membership=None, platform=True,
                     entitled=entitled_role_ids(session, structure.id))
    membership = membership_of(session, user.id, structure.id)
    if membership is None:
        membership = add_member(session, auth, user, origin, role_ids=role_ids, admin=entry.admin)
    else:
        if not membership.is_active:
            raise NotAllowed("membership_suspended")
        held = {g.role_id for g in membership.grants}
        if role_ids - held:
            set_grants(session, auth, membership, held | role_ids, origin, expected_version=None)
        if entry.admin and not membership.is_admin:
            set_admin(session, auth, membership, True, origin, expected_version=None)
    existing = session.scalar(select(LegacyLink).where(LegacyLink.user_id == user.id,
                                                       LegacyLink.legacy_id == entry.id))
    already = existing is not None and existing.method != REQUEST
    if existing is None:
        existing = LegacyLink(user_id=user.id, legacy_id=entry.id)
        session.add(existing)
    existing.structure_id, existing.method, existing.join_request_id = structure.id, method, None
    existing.linked_at = utcnow()
    session.flush()
    audit(session, "legacy.linked", origin, actor=user.id, subject=user.id, structure=structure.id,
          legacy_id=entry.id, method=method, admin=entry.admin, roles=sorted(role_ids), again=already)
    return LinkResult(structure, membership, membership.is_admin, sorted(role_ids), already)


@dataclass
class ForgotResult:
    """What happened for "I forgot the password": a join request, or a mail to the entry's address."""

    structure: Structure
    request: JoinRequest | None = None
    mail_to: str | None = None  # the view mails the signed link there
    member: bool = False  # already a member: only the link is pending


def forgot(session: Session, user: User, entry: LegacyEntry, origin: Origin) -> ForgotResult:
    """Ask to be linked without the password: a join request to the structure's admins, or, when it
    has no active admin (or the usager is already a member there, so there is nothing to request),
    the signed link goes to the entry's mail address.

    :raises InvalidInput: ``already_pending`` (a request is waiting), ``no_mail`` (no admin and no
        address on the entry), or an invalid SIRET.
    """
    structure = provision_structure(session, entry, origin, actor=user.id).structure
    if active_admin_count(session, structure.id) > 0 and membership_of(session, user.id, structure.id) is None:
        made = request_join(session, user, structure, origin, message=f"Ancien compte {entry.id}")
        if isinstance(made, Membership):  # the structure's designated admin e-mail: admin at once
            return ForgotResult(structure, member=True)
        _pending_link(session, user, entry, structure, made)
        audit(session, "legacy.requested", origin, actor=user.id, subject=user.id, structure=structure.id,
              legacy_id=entry.id, request=made.id)
        return ForgotResult(structure, request=made)
    if not entry.mail or "@" not in entry.mail:
        raise InvalidInput("no_mail")
    audit(session, "legacy.mail_sent", origin, actor=user.id, subject=user.id, structure=structure.id,
          legacy_id=entry.id)
    return ForgotResult(structure, mail_to=entry.mail)


def _pending_link(session: Session, user: User, entry: LegacyEntry, structure: Structure,
                  request: JoinRequest) -> None:
    existing = session.scalar(select(LegacyLink).where(LegacyLink.user_id == user.id,
                                                       LegacyLink.legacy_id == entry.id))
    if existing is not None and existing.method != REQUEST:
        return  # already linked for real
    if existing is None:
        existing = LegacyLink(user_id=user.id, legacy_id=entry.id, method=REQUEST)
        session.add(existing)
    existing.structure_id, existing.join_request_id, existing.linked_at = structure.id, request.id, utcnow()
    session.flush()


# ------------------------------------------------------------------ migration

@dataclass
class ImportSummary:
    entries: int = 0
    structures_created: int = 0
    structures_existing: int = 0
    entitlements_added: int = 0
    invalid: list[str] = field(default_factory=list)  # ids whose SIRET is not valid
    unknown_roles: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"entries": self.entries, "structures_created": self.structures_created,
                "structures_existing": self.structures_existing, "entitlements_added": self.entitlements_added,
                "invalid": self.invalid, "unknown_roles": self.unknown_roles}


def import_directory(session: Session, entries: Iterable[LegacyEntry], origin: Origin, *,
                     progress: Callable[[LegacyEntry], None] | None = None) -> ImportSummary:
    """Create the structures and entitlements found in the directory; running it again changes
    nothing. Flushes per entry; the caller commits."""
    summary = ImportSummary()
    seen: set[uuid.UUID] = set()
    for entry in entries:
        summary.entries += 1
        try:
            done = provision_structure(session, entry, origin)
        except InvalidInput:
            summary.invalid.append(entry.id)
        else:
            if done.created:
                summary.structures_created += 1
            elif done.structure.id not in seen:
                summary.structures_existing += 1
            seen.add(done.structure.id)
            summary.entitlements_added += len(done.entitlements_added)
            if done.unknown_roles:
                summary.unknown_roles[entry.id] = done.unknown_roles
        if progress is not None:
            progress(entry)
    if summary.structures_created or summary.entitlements_added:
        audit(session, "legacy.imported", origin, entries=summary.entries, created=summary.structures_created,
              entitlements=summary.entitlements_added)
    return summary
