"""Reference lists of the registry: legal categories, the legal documents each one requires,
and the domain / sub-domain / desired action of a registration (seed 000 §3.A, SPEC §8). In
French (stored values, the API): pages show them translated, `_(label)`."""

from __future__ import annotations

from dataclasses import dataclass

from shared import N_


@dataclass(frozen=True)
class DocumentKind:
    code: str
    label: str
    valid_months: int | None = None  # None: no expiry; else counted from the date of issue


DOCUMENT_KINDS = {kind.code: kind for kind in [
    DocumentKind("kbis", N_("Extrait Kbis de moins de 3 mois"), 3),
    DocumentKind("statuts", N_("Statuts à jour, datés et signés")),
    DocumentKind("sirene", N_("Avis de situation au répertoire SIRENE")),
    DocumentKind("urssaf", N_("Attestation de vigilance URSSAF"), 6),
    DocumentKind("fiscale", N_("Attestation de régularité fiscale"), 12),
    DocumentKind("rib", N_("Relevé d'identité bancaire (RIB)")),
    DocumentKind("prefecture", N_("Récépissé de déclaration en préfecture")),
    DocumentKind("dirigeants", N_("Liste des membres du conseil d'administration et du bureau"), 12),
    DocumentKind("nomination", N_("Acte de nomination du représentant légal")),
]}

_COMPANY = ("kbis", "statuts", "urssaf", "fiscale", "rib")
_PUBLIC = ("nomination", "rib")

# code INSEE of the legal category → (label, required documents)
LEGAL_CATEGORIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "1000": (N_("Entrepreneur individuel"), ("sirene", "urssaf", "fiscale", "rib")),
    "5499": (N_("Société à responsabilité limitée (SARL)"), _COMPANY),
    "5599": (N_("Société anonyme (SA)"), _COMPANY),
    "5710": (N_("Société par actions simplifiée (SAS)"), _COMPANY),
    "6540": (N_("Société civile"), _COMPANY),
    "9220": (N_("Association déclarée"), ("statuts", "prefecture", "dirigeants", "urssaf", "rib")),
    "7331": (N_("Établissement public local d'enseignement"), _PUBLIC),
    "7490": (N_("Autre personne morale de droit public"), _PUBLIC),
}

# (domain, sub-domain, desired action) as offered by the registration form; the action names the
# IdP profile the registrant will ask for when joining.
ACTIONS: list[tuple[str, str, str]] = [
    (N_("Emploi et formation"), N_("Formation professionnelle"),
     N_("Déposer une offre de formation en réponse à un appel d'offres")),
    (N_("Emploi et formation"), N_("Formation professionnelle"), N_("Saisir l'offre de formation")),
    (N_("Emploi et formation"), N_("Formation professionnelle"), N_("Gérer la fiche structure")),
    (N_("Emploi et formation"), N_("Apprentissage"), N_("Gérer la fiche structure")),
]
DOMAINS = sorted({a[0] for a in ACTIONS})
SUBDOMAINS = sorted({a[1] for a in ACTIONS})
ACTION_LABELS = sorted({a[2] for a in ACTIONS})


def required_documents(legal_category: str) -> list[DocumentKind]:
    """The documents a structure of this legal category must provide."""
    codes = LEGAL_CATEGORIES.get(legal_category, ("", ()))[1]
    return [DOCUMENT_KINDS[code] for code in codes]
