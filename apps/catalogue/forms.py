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
from shared import REQUIRED, Form, VersionedForm, choices, optional, required


def options(pairs: Any) -> list[SelectChoice]:
    """Select options (WTForms 3.3 wants `SelectChoice`, not tuples)."""
    return [SelectChoice(value, label) for value, label in pairs]


class Checkboxes(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def certification_choices() -> list[Any]:
    return choices((c.key, c.label) for c in sorted(referential.certifications().values(), key=lambda c: c.label))


class IdentificationForm(VersionedForm):
    name = StringField("Raison sociale", validators=required(250))
    sigle = StringField("Sigle", validators=optional(60))
    address = StringField("Adresse", validators=optional(200))
    postal_code = StringField("Code postal", validators=optional(5))
    city = StringField("Ville", validators=optional(100))
    phone = StringField("Téléphone", validators=optional(25))
    email = StringField("Courriel", validators=optional(254))
    website = StringField("Site web", validators=optional(200))


class PotentialForm(VersionedForm):
    potential = TextAreaField("Potentiel de formation (compétences, matières enseignées)", validators=optional(5000))
    certifications = SelectMultipleField("Certifications, habilitations, CQP préparés", choices=[], validate_choice=False)


class RequestForm(Form):
    topic = SelectField("Objet de la demande", choices=choices(TOPICS.items()),
                        validators=[InputRequired(message=REQUIRED)])
    text = TextAreaField("Demande particulière", validators=required(4000))


class AttestationForm(VersionedForm):
    checked = BooleanField("J'ai vérifié l'ensemble des informations de ma fiche",
                           validators=[InputRequired(message="Cochez la case pour attester la vérification.")])
    comment = TextAreaField("Commentaire divers", validators=optional(4000))


class ContactForm(Form):
    civility = SelectField("Civilité", choices=choices([("Mme", "Mme"), ("M.", "M.")]), validators=[Optional()])
    last_name = StringField("Nom", validators=required(100))
    first_name = StringField("Prénom", validators=optional(100))
    function = StringField("Fonction", validators=optional(100))
    phone = StringField("Téléphone (ligne directe)", validators=optional(25))
    email = StringField("Courriel", validators=optional(254))


class FormationForm(VersionedForm):
    certifying = RadioField("Formation diplômante, certifiante ou habilitante", choices=options([("non", "Non"), ("oui", "Oui")]),
                            default="non", validators=[InputRequired(message=REQUIRED)])
    certification_key = SelectField("Certification préparée (référentiel)", choices=[], validate_choice=False)
    title = StringField("Intitulé de la formation", validators=required(255))
    objectives = TextAreaField("Objectifs pédagogiques", validators=required(3000))
    expected_results = TextAreaField("Résultats attendus", validators=optional(3000))
    content = TextAreaField("Contenu", validators=required(3000))
    prerequisites = TextAreaField("Prérequis", validators=optional(3000))
    formacodes = StringField("Codes Formacode (séparés par des espaces, 5 au plus)", validators=optional(60))
    romes = StringField("Codes ROME (métiers visés, 5 au plus)", validators=optional(60))
    nsf = StringField("Codes NSF (3 au plus)", validators=optional(20))
    entry_level = SelectField("Niveau d'entrée", choices=options(LEVELS.items()), default="0")
    path = SelectField("Type de parcours", choices=options(PATHS.items()), default="1")
    keywords = StringField("Mots-clés", validators=optional(500))


class ActionForm(VersionedForm):
    place_name = StringField("Lieu (nom du centre)", validators=optional(200))
    address = StringField("Adresse du lieu de formation", validators=required(200))
    postal_code = StringField("Code postal", validators=required(5))
    city = StringField("Ville", validators=required(100))
    publics = Checkboxes("Public visé", choices=options(PUBLICS.items()), default=["83056"])
    public_info = TextAreaField("Précisions sur le public", validators=optional(3000))
    entry_mode = RadioField("Modalités d'entrée et de sortie", choices=options(ENTRY_MODES.items()), default="fixes",
                            validators=[InputRequired(message=REQUIRED)])
    rhythm = StringField("Rythme (temps plein, temps partiel…)", validators=optional(300))
    teaching_mode = SelectField("Modalité d'enseignement", choices=options(TEACHING.items()), default="0")
    hours = IntegerField("Durée (heures)", validators=[Optional(), NumberRange(1, 10000, "Entre 1 et 10 000 heures.")])
    entry_level_required = BooleanField("Le niveau d'entrée est obligatoire")
    accessibility = StringField("Accessibilité aux personnes handicapées", validators=optional(250))
    transport = StringField("Transport", validators=optional(250))
    accommodation = StringField("Hébergement", validators=optional(250))
    catering = StringField("Restauration", validators=optional(250))
    funders = StringField("Financeurs", validators=optional(250))


class SessionForm(VersionedForm):
    start = DateField("Date de début", validators=[InputRequired(message=REQUIRED)],
                      render_kw={"placeholder": "aaaa-mm-jj"})
    end = DateField("Date de fin", validators=[InputRequired(message=REQUIRED)], render_kw={"placeholder": "aaaa-mm-jj"})
    registration_address = StringField("Adresse d'inscription", validators=required(200))
    registration_postal_code = StringField("Code postal", validators=required(5))
    registration_city = StringField("Ville", validators=required(100))
    recruitment = SelectField("État du recrutement", choices=options(RECRUITMENT.items()), default="1")
    new_contact_name = StringField("Nom", validators=optional(100))
    new_contact_function = StringField("Fonction", validators=optional(100))
    new_contact_phone = StringField("Téléphone", validators=optional(25))
    new_contact_email = StringField("Courriel", validators=optional(254))



class VersionOnlyForm(VersionedForm):
    """A button acting on a versioned object (duplicate, delete, publish)."""


class ReturnForm(VersionedForm):
    comment = TextAreaField("Commentaire pour l'organisme (ce qu'il doit corriger)", validators=required(4000))


class RequestDecisionForm(Form):
    decision = RadioField("Décision", choices=options([("accept", "Traitée"), ("refuse", "Refusée")]),
                          validators=[InputRequired(message=REQUIRED)])
    answer = TextAreaField("Réponse à l'organisme", validators=optional(4000))
    nda = StringField("Nouveau numéro de déclaration d'activité (11 chiffres)", validators=optional(11))
    siret = StringField("Nouveau SIRET (14 chiffres)", validators=optional(14))


class PlainForm(Form):
    """A button without data (CSRF only)."""
