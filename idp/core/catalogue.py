"""The default application catalogue, entitlements and profiles (SPEC §3), created idempotently."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.models import Application, AppRole, Entitlement, Profile, Structure, StructureKind
from shared.applications import APPLICATIONS as SHELL_APPLICATIONS

# name: (label, url, [(role, label, region_only)]), from the shell's table of applications.
APPLICATIONS: dict[str, tuple[str, str, list[tuple[str, str, bool]]]] = {
    name: (app.label, app.url, [(r.name, f"{r.title} : {r.description}", r.region_only) for r in app.roles])
    for name, app in SHELL_APPLICATIONS.items()
}

# Entitlements by kind (SPEC §3): a région holds every role.
DEFAULT_ENTITLEMENTS: dict[StructureKind, list[str]] = {
    StructureKind.ORGANISME: ["sam:redacteur", "sam:signataire", "repernet:gestionnaire", "repernet:lecteur",
                              "catalogue:editeur", "catalogue:lecteur"],
    StructureKind.LYCEE: ["sam:redacteur", "sam:signataire", "repernet:gestionnaire", "repernet:lecteur",
                          "catalogue:editeur", "catalogue:lecteur"],
    StructureKind.AUTRE: ["repernet:gestionnaire", "repernet:lecteur", "catalogue:lecteur"],
    StructureKind.REGION: [f"{app}:{role}" for app, (_, _, roles) in APPLICATIONS.items() for role, _, _ in roles],
}

PROFILES: dict[StructureKind, list[tuple[str, str, list[str]]]] = {
    StructureKind.ORGANISME: [
        ("Répondre aux appels d'offres", "Préparer, signer et déposer les réponses aux consultations",
         ["sam:redacteur", "sam:signataire"]),
        ("Saisir l'offre de formation", "Décrire les actions et sessions de formation", ["catalogue:editeur"]),
        ("Gérer la fiche structure", "Tenir à jour la fiche et les pièces juridiques", ["repernet:gestionnaire"]),
    ],
    StructureKind.LYCEE: [
        ("Enseignant", "Consulter l'offre et la fiche de l'établissement", ["catalogue:lecteur", "repernet:lecteur"]),
        ("Chef d'établissement", "Piloter les réponses et la fiche de l'établissement",
         ["sam:signataire", "repernet:gestionnaire", "catalogue:editeur"]),
        ("Gestionnaire", "Préparer les dossiers de l'établissement", ["sam:redacteur", "repernet:gestionnaire"]),
        ("Équipement", "Suivre les marchés d'équipement", ["sam:redacteur"]),
    ],
    StructureKind.REGION: [
        ("Acheteur", "Publier les consultations et ouvrir les plis", ["sam:acheteur"]),
        ("Instructeur", "Examiner les structures et leurs pièces", ["repernet:instructeur"]),
        ("Modérateur", "Valider l'offre de formation avant publication", ["catalogue:moderateur"]),
    ],
}


def roles_by_key(session: Session) -> dict[str, AppRole]:
    return {role.key: role for role in session.scalars(select(AppRole))}


def ensure_catalogue(session: Session) -> None:
    """Create the applications, roles and profiles that are missing; never changes existing ones."""
    apps = {a.name: a for a in session.scalars(select(Application))}
    for name, (label, url, _roles) in APPLICATIONS.items():
        if name not in apps:
            session.add(Application(name=name, label=label, url=url))
    session.flush()
    existing = roles_by_key(session)
    for name, (_, _, roles) in APPLICATIONS.items():
        for role, label, region_only in roles:
            if f"{name}:{role}" not in existing:
                session.add(AppRole(app=name, name=role, label=label, region_only=region_only))
    session.flush()
    by_key = roles_by_key(session)
    known = {(p.kind, p.name) for p in session.scalars(select(Profile))}
    for kind, profiles in PROFILES.items():
        for name, description, keys in profiles:
            if (kind, name) not in known:
                session.add(Profile(name=name, kind=kind, description=description, roles=[by_key[k] for k in keys]))
    session.flush()


def entitle_defaults(session: Session, structure: Structure) -> None:
    """Give a new structure the default entitlements of its kind."""
    by_key = roles_by_key(session)
    for key in DEFAULT_ENTITLEMENTS.get(structure.kind, []):
        session.add(Entitlement(structure_id=structure.id, role_id=by_key[key].id))
    session.flush()
