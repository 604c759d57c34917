"""The PDFs SAM generates (issue 13 §2) with fpdf2: the lettre de candidature (DC1), one acte
d'engagement per offer, and the receipt of a submission. French text; the consultation's
reference on every page (header and footer). Each function takes plain data (a dict) and returns
the PDF's bytes; the same data give the same bytes (fixed creation date), so a document is only
regenerated when its data change.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fpdf import FPDF

from shared import paris

# The core fonts are Latin-1: typographic characters outside it are written in their plain form.
_PLAIN = str.maketrans({"œ": "oe", "Œ": "OE", "’": "'", "‘": "'", "“": '"', "”": '"', "—": "-", "–": "-",
                        "…": "...", "€": "EUR", "\u202f": " ", "\u00a0": " "})
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def latin(text: Any) -> str:
    return str(text).translate(_PLAIN).encode("latin-1", "replace").decode("latin-1")


class _Document(FPDF):
    """A4 pages with the consultation's reference in the header and the footer of every page."""

    def __init__(self, reference: str, title: str, created: datetime) -> None:
        super().__init__(format="A4")
        self.reference, self.doc_title = latin(reference), latin(title)
        self.compress = False  # readable content streams: a reviewer (and the tests) can grep a page
        self.set_creation_date(created)
        self.set_title(self.doc_title)
        self.set_author("SAM - marchés de formation de la Région")
        self.set_auto_page_break(auto=True, margin=20)
        self.set_margins(18, 22, 18)
        self.alias_nb_pages()
        self.add_page()

    def header(self) -> None:
        self.set_font("helvetica", "", 8)
        self.cell(0, 5, f"Consultation {self.reference} - {self.doc_title}", align="R", new_x="LMARGIN", new_y="NEXT")
        self.ln(2)

    def footer(self) -> None:
        self.set_y(-14)
        self.set_font("helvetica", "", 8)
        self.cell(0, 5, f"Réf. {self.reference} - page {self.page_no()}/{{nb}}", align="C")

    def h1(self, text: str) -> None:
        self.set_font("helvetica", "B", 15)
        self.multi_cell(0, 8, latin(text), new_x="LMARGIN", new_y="NEXT")
        self.ln(2)

    def h2(self, text: str) -> None:
        self.ln(2)
        self.set_font("helvetica", "B", 11)
        self.multi_cell(0, 6, latin(text), new_x="LMARGIN", new_y="NEXT")

    def para(self, text: str) -> None:
        self.set_font("helvetica", "", 10)
        self.multi_cell(0, 5, latin(text), new_x="LMARGIN", new_y="NEXT")

    def fact(self, label: str, value: Any) -> None:
        self.set_font("helvetica", "B", 10)
        self.cell(62, 5, latin(label))
        self.set_font("helvetica", "", 10)
        self.multi_cell(0, 5, latin(value if value not in (None, "") else "-"), new_x="LMARGIN", new_y="NEXT")

    def bytes(self) -> bytes:
        return bytes(self.output())


def _candidate(pdf: _Document, data: dict[str, Any]) -> None:
    c = data["candidate"]
    pdf.fact("Dénomination", c["legal_name"])
    pdf.fact("SIRET", c["siret"])
    pdf.fact("Adresse", f"{c['address']}, {c['postal_code']} {c['city']}")
    pdf.fact("Représentant légal", f"{c['representative']} ({c['representative_title']})")
    pdf.fact("Signataire habilité", f"{c['signatory']} ({c['signatory_title']})")
    pdf.fact("Courriel / téléphone", f"{c['email']} / {c['phone']}")


def lettre_de_candidature(data: dict[str, Any]) -> bytes:
    """DC1: buyer, object, lots answered, candidate alone or group, members and their share, lead
    member, sworn statements."""
    pdf = _Document(data["reference"], "Lettre de candidature (DC1)", EPOCH)
    pdf.h1("DC1 - Lettre de candidature et habilitation du mandataire par ses co-traitants")
    pdf.h2("A - Identification de l'acheteur")
    pdf.para(data["buyer"])
    pdf.h2("B - Objet de la consultation")
    pdf.fact("Référence", data["reference"])
    pdf.para(data["title"])
    pdf.h2("C - Objet de la candidature")
    pdf.para("La candidature est présentée pour les lots suivants :")
    for lot in data["lots"]:
        pdf.para(f"- Lot n° {lot['number']} : {lot['title']}")
    if not data["lots"]:
        pdf.para("- (aucune offre validée)")
    pdf.h2("D - Présentation du candidat")
    if data["group_kind"] == "groupement":
        pdf.para("Le candidat se présente en groupement (groupement solidaire).")
    else:
        pdf.para("Le candidat se présente seul.")
    _candidate(pdf, data)
    if data["group_kind"] == "groupement":
        pdf.h2("E - Membres du groupement et répartition des prestations")
        for i, member in enumerate(data["members"], start=1):
            lead = " (mandataire)" if data["lead"] == i else ""
            pdf.para(f"{i}. {member['name']} - SIRET {member['siret']}{lead} : {member['share']}")
        lead_name = data["candidate"]["legal_name"] if data["lead"] == 0 else \
            data["members"][data["lead"] - 1]["name"] if 0 < data["lead"] <= len(data["members"]) else "-"
        pdf.fact("Mandataire du groupement", lead_name)
    pdf.h2("F - Engagements du candidat")
    pdf.para("Le candidat déclare sur l'honneur :\n"
             "- ne pas faire l'objet d'une exclusion de la participation à la procédure (articles L. 2141-1 à "
             "L. 2141-5 et L. 2141-7 à L. 2141-11 du code de la commande publique) ;\n"
             "- être en règle au regard des articles L. 5212-1 à L. 5212-11 du code du travail (emploi des "
             "travailleurs handicapés) ;\n"
             "- que les renseignements fournis sont exacts.")
    pdf.h2("G - Signature")
    pdf.para(f"Le signataire habilité : {data['candidate']['signatory']}, {data['candidate']['signatory_title']}.")
    return pdf.bytes()


def acte_d_engagement(data: dict[str, Any]) -> bytes:
    """One acte d'engagement per lot: candidate, lot, price per unit of work, duration."""
    lot = data["lot"]
    pdf = _Document(data["reference"], f"Acte d'engagement - lot {lot['number']}", EPOCH)
    pdf.h1(f"Acte d'engagement - lot n° {lot['number']}")
    pdf.h2("Objet")
    pdf.fact("Consultation", f"{data['reference']} - {data['title']}")
    pdf.fact("Acheteur", data["buyer"])
    pdf.fact("Lot", f"n° {lot['number']} - {lot['title']}")
    pdf.h2("Le candidat")
    _candidate(pdf, data)
    if data["group_kind"] == "groupement":
        pdf.fact("Groupement", ", ".join(m["name"] for m in data["members"]))
    pdf.h2("Prix")
    pdf.fact("Unité d'oeuvre", lot["unit_label"])
    pdf.fact("Prix unitaire (HT)", data["unit_price"])
    pdf.h2("Durée et volume")
    pdf.fact("Durée par stagiaire", f"{data['hours']} heures")
    pdf.fact("Effectif prévu", f"{data['headcount']} stagiaires")
    sessions = data["sessions"]
    if sessions:
        pdf.fact("Période d'exécution", f"du {sessions[0]['start']} au {max(s['end'] for s in sessions)}")
    pdf.h2("Engagement")
    pdf.para("Après avoir pris connaissance des pièces du dossier de consultation, le candidat s'engage, sans "
             "réserve, à exécuter les prestations du lot ci-dessus aux conditions de prix indiquées, conformément "
             "aux documents de la consultation. L'offre est valable 120 jours à compter de la date limite de "
             "remise des offres.")
    pdf.h2("Signature du candidat")
    pdf.para(f"{data['candidate']['signatory']}, {data['candidate']['signatory_title']}.")
    return pdf.bytes()


def receipt(data: dict[str, Any]) -> bytes:
    """The receipt ("accusé de réception") of a submission, as a PDF."""
    pdf = _Document(data["reference"], "Accusé de réception", data["submitted_at"])
    pdf.h1("Accusé de réception d'un pli électronique")
    pdf.fact("Consultation", f"{data['reference']} - {data['title']}")
    pdf.fact("Candidat", f"{data['candidate']} (SIRET {data['siret']})")
    pdf.fact("Dépôt n°", data["number"])
    pdf.fact("Date et heure du serveur", paris(data["submitted_at"], "%d/%m/%Y à %H:%M:%S", zone=True))
    pdf.fact("Déposé par", data["submitted_by"])
    pdf.h2("Empreinte du pli (SHA-256)")
    pdf.set_font("courier", "", 9)
    pdf.multi_cell(0, 5, data["digest"], new_x="LMARGIN", new_y="NEXT")
    pdf.h2("Pièces du pli")
    for item in data["files"]:
        pdf.para(f"- {item['name']} ({item['size']} octets)")
        pdf.set_font("courier", "", 8)
        pdf.multi_cell(0, 4, f"  SHA-256 {item['sha256']}", new_x="LMARGIN", new_y="NEXT")
    pdf.h2("Portée")
    pdf.para("L'empreinte est calculée sur la sérialisation canonique du pli (formulaires et empreintes des "
             "fichiers). Le pli reste scellé jusqu'à la date limite de remise des offres.")
    return pdf.bytes()
