"""Structures: SIRET rules, creation with default entitlements, the instant search (SPEC §4.2)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from stdnum.exceptions import ValidationError
from stdnum.fr import siret as siret_number

from idp.core.accounts import normalize_email
from idp.core.audit import audit
from idp.core.catalogue import entitle_defaults
from idp.core.errors import AlreadyExists, InvalidInput, NotFound
from idp.core.locking import claim
from idp.core.security import Origin
from idp.models import Membership, Structure, StructureKind, User, utcnow


def clean_siret(value: str) -> str:
    """14 digits with a valid Luhn key (python-stdnum), spaces allowed in input.

    :raises InvalidInput: ``siret_invalid`` with a French message.
    """
    try:
        return siret_number.validate(value or "")
    except ValidationError as exc:
        raise InvalidInput("Le SIRET doit comporter 14 chiffres et être valide (clé de contrôle).") from exc


def _search_text(name: str, city: str, code: str | None, siret: str) -> str:
    return " ".join(part for part in (name, city, code or "", siret) if part).lower()


@dataclass
class StructureData:
    siret: str
    name: str
    kind: StructureKind = StructureKind.ORGANISME
    city: str = ""
    postal_code: str = ""
    code: str | None = None
    admin_email: str | None = None
    searchable: bool = True


def find_by_siret(session: Session, siret: str) -> Structure | None:
    return session.scalar(select(Structure).where(Structure.siret == siret))


def find_siege(session: Session, structure_siret: str, siege_siret: str) -> Structure:
    """The siège an établissement may attach to: an existing siège of the same SIREN (SPEC §2).

    :raises InvalidInput: unknown SIRET, another SIREN, itself, or an établissement.
    """
    siege = find_by_siret(session, clean_siret(siege_siret))
    if siege is None:
        raise InvalidInput("Aucune structure n'a ce SIRET de siège.")
    if siege.siret == structure_siret:
        raise InvalidInput("Une structure ne peut pas être son propre siège.")
    if siege.siren != structure_siret[:9]:
        raise InvalidInput("Le siège doit avoir le même SIREN (9 premiers chiffres du SIRET).")
    if siege.parent_id is not None:
        raise InvalidInput("Cette structure est elle-même un établissement secondaire, pas un siège.")
    return siege


def create_structure(session: Session, data: StructureData, origin: Origin, *,
                     actor: uuid.UUID | None = None, siege_siret: str | None = None,
                     client_id: str | None = None) -> Structure:
    """Create a structure; an établissement is attached to the siège of its SIREN when it exists.

    :param siege_siret: the siège named by the caller (checked by `find_siege`); without it, the
        oldest siège of the same SIREN, if any.
    :param client_id: the service client acting (API), for the audit record.
    :raises InvalidInput: bad SIRET, a bad siège, or the SIRET already exists.
    """
    siret = clean_siret(data.siret)
    if find_by_siret(session, siret) is not None:
        raise AlreadyExists("Une structure existe déjà avec ce SIRET.")
    siren = siret[:9]
    if siege_siret:
        siege: Structure | None = find_siege(session, siret, siege_siret)
    else:
        siege = session.scalar(select(Structure).where(Structure.siren == siren, Structure.parent_id.is_(None))
                               .order_by(Structure.created_at))
    structure = Structure(
        siret=siret, siren=siren, name=data.name.strip(), kind=data.kind, city=data.city.strip(),
        postal_code=data.postal_code.strip(), code=(data.code or "").strip() or None, searchable=data.searchable,
        admin_email=normalize_email(data.admin_email) if data.admin_email else None,
        parent=siege,
    )
    structure.search_text = _search_text(structure.name, structure.city, structure.code, siret)
    try:
        with session.begin_nested():
            session.add(structure)
    except IntegrityError as exc:
        # The same creation sent twice at once: the twin's row won the unique SIRET.
        raise AlreadyExists("Une structure existe déjà avec ce SIRET.") from exc
    entitle_defaults(session, structure)
    audit(session, "structure.created", origin, actor=actor, structure=structure.id, client_id=client_id, siret=siret)
    return structure


def update_structure(session: Session, structure: Structure, origin: Origin, *, actor: uuid.UUID | None,
                     name: str | None = None, city: str | None = None, postal_code: str | None = None,
                     admin_email: str | None = None, searchable: bool | None = None,
                     kind: StructureKind | None = None, code: str | None = None, siege_siret: str | None = None,
                     expected_version: int | None = None, client_id: str | None = None) -> Structure:
    """Change the given fields (None keeps a field; "" clears `admin_email`, `code`, and makes the
    structure a siège for `siege_siret`) and bump the version.

    :param expected_version: optimistic locking: applies only if nobody saved it since that version.
    :raises Conflict: ``stale``, the structure changed since `expected_version`.
    :raises InvalidInput: a bad siège, or a siège with établissements made an établissement.
    """
    claim(session, structure, expected_version)
    changed = []
    if siege_siret is not None:
        siege = find_siege(session, structure.siret, siege_siret) if siege_siret else None
        if siege is not None and session.scalar(select(exists().where(Structure.parent_id == structure.id))):
            raise InvalidInput("Cette structure a des établissements secondaires : elle doit rester un siège.")
        structure.parent = siege
        changed.append("parent")
    for field, value in (("name", name), ("city", city), ("postal_code", postal_code)):
        if value is not None:
            setattr(structure, field, value.strip())
            changed.append(field)
    if code is not None:
        structure.code = code.strip() or None
        changed.append("code")
    if kind is not None:
        structure.kind = kind
        changed.append("kind")
    if admin_email is not None:
        structure.admin_email = normalize_email(admin_email) or None
        changed.append("admin_email")
    if searchable is not None:
        structure.searchable = searchable
        changed.append("searchable")
    structure.search_text = _search_text(structure.name, structure.city, structure.code, structure.siret)
    structure.updated_at = utcnow()
    audit(session, "structure.updated", origin, actor=actor, structure=structure.id, client_id=client_id,
          fields=changed)
    return structure


def get_structure(session: Session, structure_id: uuid.UUID | str) -> Structure:
    try:
        key = structure_id if isinstance(structure_id, uuid.UUID) else uuid.UUID(str(structure_id))
    except ValueError as exc:
        raise NotFound("structure") from exc
    structure = session.get(Structure, key)
    if structure is None:
        raise NotFound("structure")
    return structure


def search_structures(session: Session, text: str, limit: int = 10) -> list[Structure]:
    """Instant search by name, city, code or SIRET (words of at least 2 characters)."""
    # Control characters (NUL above all: PostgreSQL refuses it in text) separate words like spaces.
    printable = "".join(ch if ch.isprintable() else " " for ch in text)
    words = [w for w in printable.lower().split() if len(w) >= 2][:5]
    if not words:
        return []
    query = select(Structure).where(Structure.searchable)
    for word in words:
        escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        # search_text holds the SIRET too: one LIKE per word covers it.
        query = query.where(Structure.search_text.like(f"%{escaped}%", escape="\\"))
    return list(session.scalars(query.order_by(func.length(Structure.name), Structure.name).limit(limit)))


def claim_designated_structures(session: Session, user: User, origin: Origin) -> list[Structure]:
    """SPEC §4.2: a usager whose verified login e-mail is a structure's account-admin e-mail becomes
    its admin without a join request (called when the e-mail is verified).

    Structures the usager already belongs to are left alone: following the link again must not
    undo what an admin decided since (a demotion, removed roles).
    """
    from idp.core.memberships import grant_admin_by_email

    member_of = select(Membership.structure_id).where(Membership.user_id == user.id)
    designated = session.scalars(select(Structure).where(
        Structure.admin_email == normalize_email(user.email), Structure.id.not_in(member_of))).all()
    return [s for s in designated if grant_admin_by_email(session, user, s, origin) is not None]
