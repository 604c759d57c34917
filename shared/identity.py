"""The logged-in person as the relying party sees them: a small value built from the claims (SPEC §5.2)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StructureRef:
    """A structure as named in the claims, with this application's roles there."""

    id: str
    siret: str
    name: str
    roles: tuple[str, ...] = ()
    admin: bool = False

    @classmethod
    def from_claim(cls, value: Any) -> StructureRef | None:
        if not isinstance(value, dict) or not value.get("siret"):
            return None
        roles = value.get("roles") or ()
        return cls(id=str(value.get("id", "")), siret=str(value["siret"]), name=str(value.get("name", "")),
                   roles=tuple(str(r) for r in roles if isinstance(r, str)), admin=bool(value.get("admin")))


@dataclass(frozen=True)
class Identity:
    """Who is logged in, the current structure ("casquette") and the roles held there."""

    sub: str
    sid: str | None = None
    email: str = ""
    name: str = ""
    given_name: str = ""
    family_name: str = ""
    structure: StructureRef | None = None
    roles: tuple[str, ...] = ()
    structures: tuple[StructureRef, ...] = field(default_factory=tuple)
    legacy_ids: tuple[str, ...] = ()
    locale: str = ""  # the `locale` claim (OIDC Core §5.1), when the IdP sends it

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> Identity:
        """Build from ID-token or userinfo claims; missing or malformed claims give empty values."""
        structures = tuple(s for s in (StructureRef.from_claim(v) for v in claims.get("structures") or ()) if s)
        roles = tuple(str(r) for r in claims.get("roles") or () if isinstance(r, str))
        current = StructureRef.from_claim(claims.get("structure"))
        if current is not None:
            current = StructureRef(current.id, current.siret, current.name, roles, current.admin)
        name = claims.get("name") or " ".join(p for p in (claims.get("given_name"), claims.get("family_name")) if p)
        return cls(
            sub=str(claims["sub"]), sid=claims.get("sid"), email=str(claims.get("email") or ""),
            name=str(name or claims.get("email") or ""), given_name=str(claims.get("given_name") or ""),
            family_name=str(claims.get("family_name") or ""), structure=current, roles=roles,
            structures=structures, legacy_ids=tuple(str(i) for i in claims.get("legacy_ids") or ()),
            locale=str(claims.get("locale") or ""),
        )

    # Flask-Login's user interface: `current_user` in the apps is this identity.
    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        return self.sub

    def has_role(self, *roles: str) -> bool:
        """True when one of `roles` is held in the current structure."""
        return any(role in self.roles for role in roles)

    def structure_for(self, siret: str) -> StructureRef | None:
        """One of the user's structures (those where they hold a role of this application)."""
        return next((s for s in self.structures if s.siret == siret), None)
