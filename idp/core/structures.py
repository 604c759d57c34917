"""Structures: SIRET rules, creation with default entitlements, the instant search (SPEC §4.2)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from stdnum.exceptions import ValidationError
from stdnum.fr import siret as siret_number

from idp.core.accounts import normalize_email
from idp.core.audit import audit
from idp.core.catalogue import entitle_defaults
from idp.core.errors import InvalidInput, NotFound
from idp.core.security import Origin
from idp.models import Structure, StructureKind, User, utcnow


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


def create_structure(session: Session, data: StructureData, origin: Origin, *,
                     actor: uuid.UUID | None = None) -> Structure:
    """Create a structure; an établissement is attached to the siège of its SIREN when it exists.

    :raises InvalidInput: bad SIRET, or the SIRET already exists.
    """
    siret = clean_siret(data.siret)
    if find_by_siret(session, siret) is not None:
        raise InvalidInput("Une structure existe déjà avec ce SIRET.")
    siren = siret[:9]
    siege = session.scalar(
        select(Structure).where(Structure.siren == siren, Structure.parent_id.is_(None)).order_by(Structure.created_at)
    )
    structure = Structure(
        siret=siret, siren=siren, name=data.name.strip(), kind=data.kind, city=data.city.strip(),
        postal_code=data.postal_code.strip(), code=data.code, searchable=data.searchable,
        admin_email=normalize_email(data.admin_email) if data.admin_email else None,
        parent_id=siege.id if siege else None,
        search_text=_search_text(data.name.strip(), data.city.strip(), data.code, siret),
    )
    session.add(structure)
    session.flush()
    entitle_defaults(session, structure)
    audit(session, "structure.created", origin, actor=actor, structure=structure.id, siret=siret)
    return structure


def update_structure(session: Session, structure: Structure, origin: Origin, *, actor: uuid.UUID | None,
                     name: str | None = None, city: str | None = None, postal_code: str | None = None,
                     admin_email: str | None = None, searchable: bool | None = None) -> Structure:
    if name is not None:
        structure.name = name.strip()
    if city is not None:
        structure.city = city.strip()
    if postal_code is not None:
        structure.postal_code = postal_code.strip()
    if admin_email is not None:
        structure.admin_email = normalize_email(admin_email) or None
    if searchable is not None:
        structure.searchable = searchable
    structure.search_text = _search_text(structure.name, structure.city, structure.code, structure.siret)
    structure.version += 1
    structure.updated_at = utcnow()
    audit(session, "structure.updated", origin, actor=actor, structure=structure.id)
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
    """Instant search by name, city, code or SIRET prefix (at least 2 characters)."""
    words = [w for w in text.lower().split() if len(w) >= 2][:5]
    if not words:
        return []
    query = select(Structure).where(Structure.searchable)
    for word in words:
        escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(or_(Structure.search_text.like(f"%{escaped}%", escape="\\"),
                                Structure.siret.startswith(word)))
    return list(session.scalars(query.order_by(func.length(Structure.name), Structure.name).limit(limit)))


def claim_designated_structures(session: Session, user: User, origin: Origin) -> list[Structure]:
    """SPEC §4.2: a usager whose verified login e-mail is a structure's account-admin e-mail becomes
    its admin without a join request (called when the e-mail is verified)."""
    from idp.core.memberships import grant_admin_by_email

    designated = session.scalars(select(Structure).where(Structure.admin_email == user.email)).all()
    return [s for s in designated if grant_admin_by_email(session, user, s, origin) is not None]
