"""REPERNET's forms: they check shape; registry.py enforces the rules (STYLE §6)."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import DateField, HiddenField, RadioField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Optional, Regexp

from apps.repernet.reference import ACTION_LABELS, DOMAINS, LEGAL_CATEGORIES, SUBDOMAINS

REQUIRED = "Ce champ est obligatoire."
EMAIL = Regexp(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", message="Saisissez une adresse e-mail valide.")


class Form(FlaskForm):
    """WTForms' own French messages; a French message for an expired CSRF token too."""

    class Meta:
        locales = ["fr_FR", "fr"]

    def validate(self, extra_validators: Any = None) -> bool:
        ok = super().validate(extra_validators)
        csrf = getattr(self, "csrf_token", None)
        if csrf is not None and csrf.errors:
            csrf.errors = ["Le formulaire a expiré : vérifiez vos saisies puis validez à nouveau."]
        return ok


def _choices(pairs: Any) -> list[SelectChoice]:
    return [SelectChoice("", "— Choisissez —"), *(SelectChoice(value, label) for value, label in pairs)]


def _required(length: int) -> list[Any]:
    return [InputRequired(message=REQUIRED), Length(max=length, message=f"{length} caractères au maximum.")]


def _optional(length: int) -> list[Any]:
    return [Optional(), Length(max=length, message=f"{length} caractères au maximum.")]


class RecordForm(Form):
    """Legal identity, head-office address, legal representative."""

    raison_sociale = StringField("Raison sociale (telle qu'inscrite au répertoire SIRENE)", _required(200))
    sigle = StringField("Sigle", _optional(60))
    commercial_name = StringField("Dénomination commerciale", _optional(200))
    legal_category = SelectField("Catégorie juridique",
                                 choices=_choices((k, v[0]) for k, v in LEGAL_CATEGORIES.items()),
                                 validators=[InputRequired(message=REQUIRED)])
    ape_code = StringField("Code APE / NAF", [InputRequired(message=REQUIRED),
                                              Regexp(r"^\d{2}\.?\d{2}[A-Za-z]$",
                                                     message="Le code APE s'écrit comme 85.59A.")])
    address = StringField("Adresse", _required(200))
    address_complement = StringField("Complément d'adresse", _optional(200))
    postal_code = StringField("Code postal", [InputRequired(message=REQUIRED),
                                              Regexp(r"^\d{5}$", message="Le code postal compte 5 chiffres.")])
    city = StringField("Commune", _required(100))
    rep_first_name = StringField("Prénom du représentant légal", _required(100))
    rep_last_name = StringField("Nom du représentant légal", _required(100))
    rep_title = StringField("Qualité (président, gérant…)", _required(100))
    rep_email = StringField("E-mail du représentant légal", [*_required(254), EMAIL])
    rep_phone = StringField("Téléphone du représentant légal",
                            [Optional(), Regexp(r"^\+?[\d .]{6,20}$", message="Saisissez un numéro de téléphone valide.")])
    version = HiddenField()

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
    siret = StringField("SIRET de la structure", _required(20))
    domain = SelectField("Domaine", choices=_choices((d, d) for d in DOMAINS),
                         validators=[InputRequired(message=REQUIRED)])
    subdomain = SelectField("Sous-domaine", choices=_choices((d, d) for d in SUBDOMAINS),
                            validators=[InputRequired(message=REQUIRED)])
    action = SelectField("Action désirée", choices=_choices((a, a) for a in ACTION_LABELS),
                         validators=[InputRequired(message=REQUIRED)])
    admin_first_name = StringField("Prénom de l'administrateur du compte", _required(100))
    admin_last_name = StringField("Nom de l'administrateur du compte", _required(100))
    admin_email = StringField("E-mail de l'administrateur du compte", [*_required(254), EMAIL])
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
