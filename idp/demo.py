"""`idp demo seed`: demo accounts, clients and keys, created once (running it again changes nothing)."""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.core.accounts import create_user, find_user
from idp.core.memberships import (
    add_member,
    authority,
    grants_by_key,
    membership_of,
    request_join,
    structure_admins,
)
from idp.core.security import SYSTEM
from idp.core.structures import StructureData, create_structure, find_by_siret
from idp.extensions import db
from idp.models import Civility, Client, JoinRequest, Profile, StructureKind
from idp.oidc.clients import ClientSpec, create_client
from idp.oidc.keys import ensure_keys

DEMO_ACCOUNTS = [
    # email, password, given, family, civility, admin, note
    ("admin@portail.test", "Admin-Portail-2026!", "Alice", "Administratrice", Civility.MADAME, True,
     "administratrice de la plateforme"),
    ("marie.durand@formation.test", "Formation-Durand-2026!", "Marie", "Durand", Civility.MADAME, False,
     "usagère d'un organisme de formation"),
    ("paul.martin@lycee.test", "Lycee-Martin-2026!", "Paul", "Martin", Civility.MONSIEUR, False,
     "chef d'établissement, administrateur du lycée"),
    ("jean.dupont@formation.test", "Formation-Dupont-2026!", "Jean", "Dupont", Civility.MONSIEUR, False,
     "membre de deux structures (siège et établissement)"),
    ("claire.bernard@region.test", "Region-Bernard-2026!", "Claire", "Bernard", Civility.MADAME, False,
     "agente de la Région : acheteuse, instructrice, modératrice"),
    ("sophie.leroy@lycee.test", "Lycee-Leroy-2026!", "Sophie", "Leroy", Civility.MADAME, False,
     "enseignante, demande de rattachement en attente"),
]

# name, SIRET (Luhn-valid), kind, city, postal code, code (UAI)
DEMO_STRUCTURES = [
    ("Formation Plus", "12345678200010", StructureKind.ORGANISME, "Lyon", "69003", None),
    ("Formation Plus — établissement de Grenoble", "12345678200028", StructureKind.ORGANISME, "Grenoble", "38000", None),
    ("Lycée Jean Moulin", "19690001300018", StructureKind.LYCEE, "Lyon", "69005", "0690001A"),
    ("Région Auvergne-Rhône-Alpes", "20005372600010", StructureKind.REGION, "Lyon", "69002", None),
    ("Société Compétences Sud", "98765432400019", StructureKind.ORGANISME, "Valence", "26000", None),
]

# email, SIRET, admin, grants (app:role)
DEMO_MEMBERSHIPS = [
    ("marie.durand@formation.test", "12345678200010", True,
     ["sam:redacteur", "sam:signataire", "repernet:gestionnaire", "repernet:lecteur", "catalogue:editeur",
      "catalogue:lecteur"]),
    ("marie.durand@formation.test", "12345678200028", True, ["sam:redacteur", "repernet:gestionnaire"]),
    ("jean.dupont@formation.test", "12345678200010", False, ["sam:redacteur", "repernet:lecteur", "catalogue:lecteur"]),
    ("jean.dupont@formation.test", "12345678200028", False, ["sam:redacteur"]),
    ("paul.martin@lycee.test", "19690001300018", True,
     ["sam:redacteur", "sam:signataire", "repernet:gestionnaire", "repernet:lecteur", "catalogue:editeur",
      "catalogue:lecteur"]),
    ("claire.bernard@region.test", "20005372600010", True,
     ["sam:acheteur", "repernet:instructeur", "catalogue:moderateur", "repernet:lecteur", "catalogue:lecteur"]),
]

# email, SIRET, profile name (pending join requests: a badge for the admins, the moderation queue)
DEMO_REQUESTS = [
    ("sophie.leroy@lycee.test", "19690001300018", "Enseignant"),
    ("sophie.leroy@lycee.test", "98765432400019", None),
]

RP_URLS = {"sam": "http://127.0.0.1:8001", "repernet": "http://127.0.0.1:8002", "catalogue": "http://127.0.0.1:8003"}

# SAM calls the Catalogue (awarded offers) and REPERNET (a candidate's record): SPEC §7.
APP_API_SCOPES = {"sam": " catalogue:write repernet:read"}

DEMO_CLIENTS = [
    ClientSpec(name="Application de démonstration", client_id="demo-client", client_secret="demo-secret-change-me",
               redirect_uris=["http://127.0.0.1:9999/callback"],
               post_logout_redirect_uris=["http://127.0.0.1:9999/"], trusted=False),
    *[
        ClientSpec(
            name=name, client_id=app, client_secret=f"{app}-demo-secret", app=app,
            redirect_uris=[f"{RP_URLS[app]}/auth/callback"], post_logout_redirect_uris=[f"{RP_URLS[app]}/"],
            backchannel_logout_uri=f"{RP_URLS[app]}/auth/backchannel-logout", trusted=True,
            grant_types=["authorization_code", "refresh_token", "client_credentials"],
            scope="openid profile email structures structures:read structures:write members:read"
                  + APP_API_SCOPES.get(app, ""),
        )
        for app, name in (("sam", "SAM"), ("repernet", "REPERNET"), ("catalogue", "Catalogue de l'offre de formation"))
    ],
]


def seed() -> dict[str, Any]:
    session = db.session
    hasher = current_app.extensions["hasher"]
    ensure_keys(session, current_app.config)
    accounts = []
    for email, password, given, family, civility, admin, note in DEMO_ACCOUNTS:
        if find_user(session, email) is None:
            create_user(session, hasher, SYSTEM, email=email, password=password, given_name=given,
                        family_name=family, civility=civility, verified=True, is_admin=admin)
        accounts.append({"email": email, "password": password, "note": note})
    clients = []
    for spec in DEMO_CLIENTS:
        if session.scalar(select(Client.id).where(Client.client_id == spec.client_id)) is None:
            create_client(session, spec, SYSTEM)
        clients.append({"client_id": spec.client_id, "client_secret": spec.client_secret})
    structures = _seed_structures(session)
    session.commit()
    return {"accounts": accounts, "clients": clients, "structures": structures}


def _seed_structures(session: Session) -> list[dict[str, Any]]:
    """Structures, memberships with grants and pending requests, through the domain core."""
    platform = find_user(session, DEMO_ACCOUNTS[0][0])
    assert platform is not None
    by_siret = {}
    for name, siret, kind, city, postal_code, code in DEMO_STRUCTURES:
        structure = find_by_siret(session, siret) or create_structure(
            session, StructureData(siret=siret, name=name, kind=kind, city=city, postal_code=postal_code, code=code),
            SYSTEM, actor=platform.id)
        by_siret[siret] = structure
    for email, siret, admin, grants in DEMO_MEMBERSHIPS:
        user, structure = find_user(session, email), by_siret[siret]
        if user is not None and membership_of(session, user.id, structure.id) is None:
            add_member(session, authority(session, platform, structure), user, SYSTEM,
                       role_ids=grants_by_key(session, grants), admin=admin)
    for email, siret, profile_name in DEMO_REQUESTS:
        user, structure = find_user(session, email), by_siret[siret]
        profile = session.scalar(select(Profile).where(Profile.kind == structure.kind, Profile.name == profile_name))
        already = session.scalar(select(JoinRequest.id).where(JoinRequest.user_id == user.id,
                                                              JoinRequest.structure_id == structure.id))
        if user is not None and already is None:
            request_join(session, user, structure, SYSTEM, profile=profile,
                         message="Bonjour, je rejoins l'équipe pédagogique à la rentrée.")
    return [{"siret": s.siret, "name": s.name, "kind": s.kind.value,
             "admins": [u.email for u in structure_admins(session, s.id)]} for s in by_siret.values()]
