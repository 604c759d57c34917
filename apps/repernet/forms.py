"""REPERNET's forms: they check shape; registry.py enforces the rules (STYLE §6)."""

from __future__ import annotations

from typing import Any

from flask_wtf.file import FileField
from wtforms import DateField, HiddenField, RadioField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Optional, Regexp

from apps.repernet.reference import ACTION_LABELS, DOMAINS, LEGAL_CATEGORIES, SUBDOMAINS
from shared import EMAIL, REQUIRED, Form, VersionedForm, choices, optional, required


class RecordForm(VersionedForm):
    """Legal identity, head-office address, legal representative."""

    raison_sociale = StringField("Raison sociale (telle qu'inscrite au répertoire SIRENE)", required(200))
    sigle = StringField("Sigle", optional(60))
    commercial_name = StringField("Dénomination commerciale", optional(200))
    legal_category = SelectField("Catégorie juridique",
                                 choices=choices((k, v[0]) for k, v in LEGAL_CATEGORIES.items()),
                                 validators=[InputRequired(message=REQUIRED)])
    ape_code = StringField("Code APE / NAF", [InputRequired(message=REQUIRED),
                                              Regexp(r"^\d{2}\.?\d{2}[A-Za-z]$",
                                                     message="Le code APE s'écrit comme 85.59A.")])
    address = StringField("Adresse", required(200))
    address_complement = StringField("Complément d'adresse", optional(200))
    postal_code = StringField("Code postal", [InputRequired(message=REQUIRED),
                                              Regexp(r"^\d{5}$", message="Le code postal compte 5 chiffres.")])
    city = StringField("Commune", required(100))
    rep_first_name = StringField("Prénom du représentant légal", required(100))
    rep_last_name = StringField("Nom du représentant légal", required(100))
    rep_title = StringField("Qualité (président, gérant…)", required(100))
    rep_email = StringField("E-mail du représentant légal", [*required(254), EMAIL])
    rep_phone = StringField("Téléphone du représentant légal",
                            [Optional(), Regexp(r"^\+?[\d .]{6,20}$", message="Saisissez un numéro de téléphone valide.")])

    def record_values(self) -> dict[str, Any]:
        names = ("raison_sociale", "sigle", "commercial_name", "legal_category", "ape_code", "address",
                 "address_complement", "postal_code", "city", "rep_first_name", "rep_last_name", "rep_title",
                 "rep_email", "rep_phone")
        values = {name: (getattr(self, name).data or "").strip() for name in names}
        values["ape_code"] = values["ape_code"].replace(".", "").upper()
        values["ape_code"] = values["ape_code"][:2] + "." + values["ape_code"][2:]
        return values


class RegistrationForm(RecordForm):
    """The whole registration (seed 000 §3.A: the REPERAGE screens on one page)."""

    is_siege = RadioField("Vous êtes", choices=[SelectChoice("siege", "Siège social"), SelectChoice("etablissement", "Établissement secondaire")],
                          default="siege", validators=[InputRequired(message=REQUIRED)])
    siret = StringField("SIRET de la structure", required(20))
    domain = SelectField("Domaine", choices=choices((d, d) for d in DOMAINS),
                         validators=[InputRequired(message=REQUIRED)])
    subdomain = SelectField("Sous-domaine", choices=choices((d, d) for d in SUBDOMAINS),
                            validators=[InputRequired(message=REQUIRED)])
    action = SelectField("Action désirée", choices=choices((a, a) for a in ACTION_LABELS),
                         validators=[InputRequired(message=REQUIRED)])
    admin_first_name = StringField("Prénom de l'administrateur du compte", required(100))
    admin_last_name = StringField("Nom de l'administrateur du compte", required(100))
    admin_email = StringField("E-mail de l'administrateur du compte", [*required(254), EMAIL])
    challenge_answer = StringField("Code de vérification", [InputRequired(message=REQUIRED)])
    challenge_token = HiddenField()
    website = StringField("Ne pas remplir")  # honeypot, hidden by CSS
    return_to = HiddenField()


class DocumentForm(Form):
    """Upload or replace one legal document."""

    file = FileField("Fichier (PDF, PNG ou JPEG)")
    issued_on = DateField("Date de délivrance", validators=[Optional()],
                          render_kw={"placeholder": "AAAA-MM-JJ"})


class ReviewForm(Form):
    """The instructeur's "marquer comme examinée" button (CSRF only)."""
