"""The Catalogue's forms: they check shape; the domain enforces the rules (STYLE §6)."""

from __future__ import annotations

from typing import Any

from wtforms import (
    BooleanField,
    DateField,
    IntegerField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from apps.catalogue import referential
from apps.catalogue.offers import ENTRY_MODES, LEVELS, PATHS, PUBLICS, RECRUITMENT, TEACHING
from apps.catalogue.organisations import TOPICS
from shared import REQUIRED, Form, VersionedForm, choices, day_in_range, optional, required
from shared import lazy_gettext as _l


def options(pairs: Any) -> list[SelectChoice]:
    """Select options (WTForms 3.3 wants `SelectChoice`, not tuples)."""
    return [SelectChoice(value, _l(label)) for value, label in pairs]  # French labels, shown translated


class Checkboxes(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def certification_choices() -> list[Any]:
    return choices((c.key, c.label) for c in sorted(referential.certifications().values(), key=lambda c: c.label))


class IdentificationForm(VersionedForm):
    name = StringField(_l("Raison sociale"), validators=required(250))
    sigle = StringField(_l("Sigle"), validators=optional(60))
    address = StringField(_l("Adresse"), validators=optional(200))
    postal_code = StringField(_l("Code postal"), validators=optional(5))
    city = StringField(_l("Ville"), validators=optional(100))
    phone = StringField(_l("Téléphone"), validators=optional(25))
    email = StringField(_l("Courriel"), validators=optional(254))
    website = StringField(_l("Site web"), validators=optional(200))


class PotentialForm(VersionedForm):
    potential = TextAreaField(_l("Potentiel de formation (compétences, matières enseignées)"), validators=optional(5000))
    certifications = SelectMultipleField(_l("Certifications, habilitations, CQP préparés"), choices=[], validate_choice=False)


class RequestForm(Form):
    topic = SelectField(_l("Objet de la demande"), choices=choices((key, _l(label)) for key, label in TOPICS.items()),
                        validators=[InputRequired(message=REQUIRED)])
    text = TextAreaField(_l("Demande particulière"), validators=required(4000))


class AttestationForm(VersionedForm):
    checked = BooleanField(_l("J'ai vérifié l'ensemble des informations de ma fiche"),
                           validators=[InputRequired(message=_l("Cochez la case pour attester la vérification."))])
    comment = TextAreaField(_l("Commentaire divers"), validators=optional(4000))


class ContactForm(Form):
    civility = SelectField(_l("Civilité"), choices=choices([("Mme", "Mme"), ("M.", "M.")]), validators=[Optional()])
    last_name = StringField(_l("Nom"), validators=required(100))
    first_name = StringField(_l("Prénom"), validators=optional(100))
    function = StringField(_l("Fonction"), validators=optional(100))
    phone = StringField(_l("Téléphone (ligne directe)"), validators=optional(25))
    email = StringField(_l("Courriel"), validators=optional(254))


class FormationForm(VersionedForm):
    certifying = RadioField(_l("Formation diplômante, certifiante ou habilitante"), choices=options([("non", "Non"), ("oui", "Oui")]),
                            default="non", validators=[InputRequired(message=REQUIRED)])
    certification_key = SelectField(_l("Certification préparée (référentiel)"), choices=[], validate_choice=False)
    title = StringField(_l("Intitulé de la formation"), validators=required(255))
    objectives = TextAreaField(_l("Objectifs pédagogiques"), validators=required(3000))
    expected_results = TextAreaField(_l("Résultats attendus"), validators=optional(3000))
    content = TextAreaField(_l("Contenu"), validators=required(3000))
    prerequisites = TextAreaField(_l("Prérequis"), validators=optional(3000))
    formacodes = StringField(_l("Codes Formacode (séparés par des espaces, 5 au plus)"), validators=optional(60))
    romes = StringField(_l("Codes ROME (métiers visés, 5 au plus)"), validators=optional(60))
    nsf = StringField(_l("Codes NSF (3 au plus)"), validators=optional(20))
    entry_level = SelectField(_l("Niveau d'entrée"), choices=options(LEVELS.items()), default="0")
    path = SelectField(_l("Type de parcours"), choices=options(PATHS.items()), default="1")
    keywords = StringField(_l("Mots-clés"), validators=optional(500))


class ActionForm(VersionedForm):
    place_name = StringField(_l("Lieu (nom du centre)"), validators=optional(200))
    address = StringField(_l("Adresse du lieu de formation"), validators=required(200))
    postal_code = StringField(_l("Code postal"), validators=required(5))
    city = StringField(_l("Ville"), validators=required(100))
    publics = Checkboxes(_l("Public visé"), choices=options(PUBLICS.items()), default=["83056"])
    public_info = TextAreaField(_l("Précisions sur le public"), validators=optional(3000))
    entry_mode = RadioField(_l("Modalités d'entrée et de sortie"), choices=options(ENTRY_MODES.items()), default="fixes",
                            validators=[InputRequired(message=REQUIRED)])
    rhythm = StringField(_l("Rythme (temps plein, temps partiel…)"), validators=optional(300))
    teaching_mode = SelectField(_l("Modalité d'enseignement"), choices=options(TEACHING.items()), default="0")
    hours = IntegerField(_l("Durée (heures)"), validators=[Optional(), NumberRange(1, 10000, "Entre 1 et 10 000 heures.")])
    entry_level_required = BooleanField(_l("Le niveau d'entrée est obligatoire"))
    accessibility = StringField(_l("Accessibilité aux personnes handicapées"), validators=optional(250))
    transport = StringField(_l("Transport"), validators=optional(250))
    accommodation = StringField(_l("Hébergement"), validators=optional(250))
    catering = StringField(_l("Restauration"), validators=optional(250))
    funders = StringField(_l("Financeurs"), validators=optional(250))


class SessionForm(VersionedForm):
    start = DateField(_l("Date de début"), validators=[InputRequired(message=REQUIRED), day_in_range],
                      render_kw={"placeholder": _l("aaaa-mm-jj")})
    end = DateField(_l("Date de fin"), validators=[InputRequired(message=REQUIRED), day_in_range],
                    render_kw={"placeholder": _l("aaaa-mm-jj")})
    registration_address = StringField(_l("Adresse d'inscription"), validators=required(200))
    registration_postal_code = StringField(_l("Code postal"), validators=required(5))
    registration_city = StringField(_l("Ville"), validators=required(100))
    recruitment = SelectField(_l("État du recrutement"), choices=options(RECRUITMENT.items()), default="1")
    new_contact_name = StringField(_l("Nom"), validators=optional(100))
    new_contact_function = StringField(_l("Fonction"), validators=optional(100))
    new_contact_phone = StringField(_l("Téléphone"), validators=optional(25))
    new_contact_email = StringField(_l("Courriel"), validators=optional(254))



class VersionOnlyForm(VersionedForm):
    """A button acting on a versioned object (duplicate, delete, publish)."""


class ReturnForm(VersionedForm):
    comment = TextAreaField(_l("Commentaire pour l'organisme (ce qu'il doit corriger)"), validators=required(4000))


class RequestDecisionForm(Form):
    decision = RadioField(_l("Décision"), choices=options([("accept", "Traitée"), ("refuse", "Refusée")]),
                          validators=[InputRequired(message=REQUIRED)])
    answer = TextAreaField(_l("Réponse à l'organisme"), validators=optional(4000))
    nda = StringField(_l("Nouveau numéro de déclaration d'activité (11 chiffres)"), validators=optional(11))
    siret = StringField(_l("Nouveau SIRET (14 chiffres)"), validators=optional(14))


class PlainForm(Form):
    """A button without data (CSRF only)."""
