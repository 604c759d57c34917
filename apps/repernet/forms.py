"""REPERNET's forms: they check shape; registry.py enforces the rules (STYLE §6)."""

from __future__ import annotations

from typing import Any

from flask_wtf.file import FileField
from wtforms import DateField, HiddenField, RadioField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Optional, Regexp

from apps.repernet.reference import ACTION_LABELS, DOMAINS, LEGAL_CATEGORIES, SUBDOMAINS
from shared import EMAIL, REQUIRED, Form, VersionedForm, choices, day_in_range, optional, required
from shared import lazy_gettext as _l


class RecordForm(VersionedForm):
    """Legal identity, head-office address, legal representative."""

    raison_sociale = StringField(_l("Raison sociale (telle qu'inscrite au répertoire SIRENE)"), required(200))
    sigle = StringField(_l("Sigle"), optional(60))
    commercial_name = StringField(_l("Dénomination commerciale"), optional(200))
    legal_category = SelectField(_l("Catégorie juridique"),
                                 choices=choices((k, _l(v[0])) for k, v in LEGAL_CATEGORIES.items()),
                                 validators=[InputRequired(message=REQUIRED)])
    ape_code = StringField(_l("Code APE / NAF"), [InputRequired(message=REQUIRED),
                                              Regexp(r"^[0-9]{2}\.?[0-9]{2}[A-Za-z]\Z",
                                                     message=_l("Le code APE s'écrit comme 85.59A."))])
    address = StringField(_l("Adresse"), required(200))
    address_complement = StringField(_l("Complément d'adresse"), optional(200))
    postal_code = StringField(_l("Code postal"), [InputRequired(message=REQUIRED),
                                              Regexp(r"^[0-9]{5}\Z", message=_l("Le code postal compte 5 chiffres."))])
    city = StringField(_l("Commune"), required(100))
    rep_first_name = StringField(_l("Prénom du représentant légal"), required(100))
    rep_last_name = StringField(_l("Nom du représentant légal"), required(100))
    rep_title = StringField(_l("Qualité (président, gérant…)"), required(100))
    rep_email = StringField(_l("E-mail du représentant légal"), [*required(254), EMAIL])
    rep_phone = StringField(_l("Téléphone du représentant légal"),
                            [Optional(), Regexp(r"^\+?[0-9 .]{6,20}\Z", message=_l("Saisissez un numéro de téléphone valide."))])

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

    is_siege = RadioField(_l("Vous êtes"), choices=[SelectChoice("siege", _l("Siège social")), SelectChoice("etablissement", _l("Établissement secondaire"))],
                          default="siege", validators=[InputRequired(message=REQUIRED)])
    siret = StringField(_l("SIRET de la structure"), required(20))
    domain = SelectField(_l("Domaine"), choices=choices((d, _l(d)) for d in DOMAINS),
                         validators=[InputRequired(message=REQUIRED)])
    subdomain = SelectField(_l("Sous-domaine"), choices=choices((d, _l(d)) for d in SUBDOMAINS),
                            validators=[InputRequired(message=REQUIRED)])
    action = SelectField(_l("Action désirée"), choices=choices((a, _l(a)) for a in ACTION_LABELS),
                         validators=[InputRequired(message=REQUIRED)])
    admin_first_name = StringField(_l("Prénom de l'administrateur du compte"), required(100))
    admin_last_name = StringField(_l("Nom de l'administrateur du compte"), required(100))
    admin_email = StringField(_l("E-mail de l'administrateur du compte"), [*required(254), EMAIL])
    challenge_answer = StringField(_l("Code de vérification"), [InputRequired(message=REQUIRED)])
    challenge_token = HiddenField()
    website = StringField(_l("Ne pas remplir"))  # honeypot, hidden by CSS
    return_to = HiddenField()


class DocumentForm(Form):
    """Upload or replace one legal document."""

    file = FileField(_l("Fichier (PDF, PNG ou JPEG)"))
    issued_on = DateField(_l("Date de délivrance"), validators=[Optional(), day_in_range],
                          render_kw={"placeholder": _l("AAAA-MM-JJ")})


class ReviewForm(Form):
    """The instructeur's "marquer comme examinée" button (CSRF only)."""
