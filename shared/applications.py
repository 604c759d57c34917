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
    title_en: str = ""  # "Drafter"


@dataclass(frozen=True)
class AppInfo:
    name: str
    title: str  # "SAM"
    label: str  # "SAM — marchés de formation"
    url: str
    roles: tuple[RoleInfo, ...]
    label_en: str = ""


APPLICATIONS: dict[str, AppInfo] = {app.name: app for app in (
    AppInfo("sam", "SAM", "SAM — marchés de formation", "http://127.0.0.1:8001", (
        RoleInfo("redacteur", "Rédacteur", "prépare candidatures et offres", title_en="Drafter"),
        RoleInfo("signataire", "Signataire", "valide, signe et dépose la réponse", title_en="Signatory"),
        RoleInfo("acheteur", "Acheteur (Région)", "publie les consultations", region_only=True,
                 title_en="Buyer (Région)"),
    ), label_en="SAM — training contracts"),
    AppInfo("repernet", "REPERNET", "REPERNET — référentiel des structures", "http://127.0.0.1:8002", (
        RoleInfo("gestionnaire", "Gestionnaire", "modifie la fiche et les pièces juridiques", title_en="Manager"),
        RoleInfo("lecteur", "Lecteur", "consulte la fiche de la structure", title_en="Reader"),
        RoleInfo("instructeur", "Instructeur (Région)", "examine toutes les structures", region_only=True,
                 title_en="Examiner (Région)"),
    ), label_en="REPERNET — register of organisations"),
    AppInfo("catalogue", "Catalogue", "Catalogue de l'offre de formation", "http://127.0.0.1:8003", (
        RoleInfo("editeur", "Éditeur", "accès en modification", title_en="Editor"),
        RoleInfo("lecteur", "Lecteur", "accès en visualisation", title_en="Reader"),
        RoleInfo("moderateur", "Modérateur (Carif-Oref)", "valide avant publication", region_only=True,
                  title_en="Moderator (Carif-Oref)"),
    ), label_en="Training offer catalogue"),
)}


def role_title(app: str, role: str, language: str = "fr") -> str:
    """ "Rédacteur" (or "Drafter" in English) for ("sam", "redacteur"); an unknown code as it is."""
    info = APPLICATIONS.get(app)
    found = next((r for r in info.roles if r.name == role), None) if info else None
    if found is None:
        return role
    return found.title_en if language == "en" and found.title_en else found.title


def role_label(app: str, role: str, language: str = "fr") -> str:
    """ "SAM — Rédacteur" for ("sam", "redacteur"); an unknown code is shown as it is."""
    info = APPLICATIONS.get(app)
    return f"{info.title if info else app} — {role_title(app, role, language)}"


def app_label(app: str, language: str = "fr") -> str:
    """ "SAM — marchés de formation" (or its English label); an unknown name as it is."""
    info = APPLICATIONS.get(app)
    if info is None:
        return app
    return info.label_en if language == "en" and info.label_en else info.label
