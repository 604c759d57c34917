"""Who may do what in the Catalogue, from the IdP's claims (SPEC §3, §9; seed 004).

- `editeur` ("accès en modification") edits its organisation's record and offers;
- `lecteur` ("accès en visualisation") sees them and changes nothing;
- `moderateur` (held in the Région's Carif-Oref structure) sees and moderates every organisation;
- a siège sees its établissements' offers (the link comes from the IdP's service API), read only.

Another structure's record or offer looks exactly like a missing one (404, the shell's guard).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import abort

from apps.catalogue.models import Organisation
from shared import Identity, RoleMissing, check_access

EDIT = ("editeur",)
READ = ("editeur", "lecteur")
MODERATE = ("moderateur",)
ANY = (*READ, *MODERATE)


@dataclass(frozen=True)
class Rights:
    read: bool = False
    edit: bool = False
    moderate: bool = False
    via_siege: bool = False  # seen as the siège of this établissement

    def require_edit(self) -> None:
        """:raises RoleMissing: French 403 naming the missing role."""
        if not self.edit:
            raise RoleMissing(EDIT)

    def require_moderation(self) -> None:
        if not self.moderate:
            raise RoleMissing(MODERATE)


def rights_for(identity: Identity | None, organisation: Organisation) -> Rights:
    """The person's rights on an organisation's record and offers.

    :raises NotFound: not theirs (nor their établissement's): it looks missing.
    :raises RoleMissing: theirs, without a Catalogue role (or they act for another structure).
    """
    if identity is None:
        abort(404)
    if identity.has_role(*MODERATE):
        return Rights(read=True, edit=True, moderate=True)
    current = identity.structure
    if (current is not None and organisation.parent_siret and organisation.parent_siret == current.siret
            and identity.has_role(*READ)):
        return Rights(read=True, via_siege=True)
    check_access(identity, organisation.siret, READ)
    return Rights(read=True, edit=identity.has_role(*EDIT))
