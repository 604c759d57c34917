"""The applications and their roles (SPEC §3), with the human labels every page and mail shows
("SAM — Rédacteur", never `sam:redacteur`). The IdP seeds its catalogue from the same table."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RoleInfo:
    name: str
    title: str  # "Rédacteur"
    description: str  # "prépare candidatures et offres"
    region_only: bool = False


@dataclass(frozen=True)
class AppInfo:
    name: str
    title: str  # "SAM"
    label: str  # "SAM — marchés de formation"
    url: str
    roles: tuple[RoleInfo, ...]


APPLICATIONS: dict[str, AppInfo] = {app.name: app for app in (
    AppInfo("sam", "SAM", "SAM — marchés de formation", "http://127.0.0.1:8001", (
        RoleInfo("redacteur", "Rédacteur", "prépare candidatures et offres"),
        RoleInfo("signataire", "Signataire", "valide, signe et dépose la réponse"),
        RoleInfo("acheteur", "Acheteur (Région)", "publie les consultations", region_only=True),
    )),
    AppInfo("repernet", "REPERNET", "REPERNET — référentiel des structures", "http://127.0.0.1:8002", (
        RoleInfo("gestionnaire", "Gestionnaire", "modifie la fiche et les pièces juridiques"),
        RoleInfo("lecteur", "Lecteur", "consulte la fiche de la structure"),
        RoleInfo("instructeur", "Instructeur (Région)", "examine toutes les structures", region_only=True),
    )),
    AppInfo("catalogue", "Catalogue", "Catalogue de l'offre de formation", "http://127.0.0.1:8003", (
        RoleInfo("editeur", "Éditeur", "accès en modification"),
        RoleInfo("lecteur", "Lecteur", "accès en visualisation"),
        RoleInfo("moderateur", "Modérateur (Carif-Oref)", "valide avant publication", region_only=True),
    )),
)}


def role_label(app: str, role: str) -> str:
    """ "SAM — Rédacteur" for ("sam", "redacteur"); an unknown code is shown as it is."""
    info = APPLICATIONS.get(app)
    title = next((r.title for r in info.roles if r.name == role), role) if info else role
    return f"{info.title} — {title}" if info else f"{app} — {role}"


def role_title(app: str, role: str) -> str:
    """ "Rédacteur" for ("sam", "redacteur")."""
    info = APPLICATIONS.get(app)
    return next((r.title for r in info.roles if r.name == role), role) if info else role
