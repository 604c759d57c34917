"""Forms of the platform console: they check shape, the rules live in core/platform.py."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, HiddenInput, ListWidget

from idp.auth.forms import EMAIL_SHAPE, DbIntegerField, db_int
from idp.core.platform import GRANT_TYPES
from idp.models import StructureKind

KINDS = [
    SelectChoice(StructureKind.ORGANISME.value, _l("Organisme")),
    SelectChoice(StructureKind.LYCEE.value, _l("Lycée")),
    SelectChoice(StructureKind.REGION.value, _l("Région")),
    SelectChoice(StructureKind.AUTRE.value, _l("Autre")),
]


class MultiCheckboxField(SelectMultipleField):
    """Several checkboxes for one name (roles, grant types); choices are ints or strings."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def lines(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


class ConfirmForm(FlaskForm):
    """A bare confirmation: its CSRF token is the whole point."""


class StructureForm(FlaskForm):
    version = DbIntegerField(widget=HiddenInput(), validators=[Optional()])
    siret = StringField(_l("SIRET"), validators=[DataRequired(_l("Saisissez le SIRET.")), Length(max=20)])
    name = StringField(_l("Raison sociale"), validators=[DataRequired(_l("Saisissez le nom de la structure.")),
                                                         Length(max=200)])
    kind = RadioField(_l("Type de structure"), choices=KINDS, default=StructureKind.ORGANISME.value,
                      validators=[DataRequired(_l("Choisissez un type de structure."))])
    siege_siret = StringField(_l("SIRET du siège (vide si la structure est un siège)"),
                              validators=[Optional(), Length(max=20)])
    city = StringField(_l("Ville"), validators=[Length(max=100)])
    postal_code = StringField(_l("Code postal"), validators=[Length(max=10)])
    code = StringField(_l("Code (UAI d'un lycée, code interne)"), validators=[Length(max=20)])
    admin_email = StringField(_l("Adresse e-mail de l'administrateur du compte"),
                              validators=[Optional(), EMAIL_SHAPE, Length(max=254)])
    searchable = BooleanField(_l("Visible dans la recherche instantanée"), default=True)


class EntitlementsForm(FlaskForm):
    roles = MultiCheckboxField(_l("Rôles que la structure peut détenir"), coerce=db_int, validate_choice=False)
    confirmed = HiddenField()


class ApplicationForm(FlaskForm):
    label = StringField(_l("Libellé"), validators=[DataRequired(_l("Saisissez un libellé.")), Length(max=120)])
    url = StringField(_l("Adresse de l'application"), validators=[Optional(), Length(max=500)])
    description = TextAreaField(_l("Description"), validators=[Length(max=2000)])


class RoleForm(FlaskForm):
    name = StringField(_l("Nom technique (ex. : valideur)"),
                       validators=[DataRequired(_l("Saisissez le nom technique du rôle.")), Length(max=40)])
    label = StringField(_l("Libellé"), validators=[DataRequired(_l("Saisissez le libellé du rôle.")),
                                                   Length(max=120)])
    region_only = BooleanField(_l("Réservé aux structures de la Région"))


class ProfileForm(FlaskForm):
    name = StringField(_l("Nom du profil"), validators=[DataRequired(_l("Saisissez le nom du profil.")),
                                                       Length(max=120)])
    kind = RadioField(_l("Type de structure"), choices=KINDS,
                      validators=[DataRequired(_l("Choisissez un type de structure."))])
    description = TextAreaField(_l("Description"), validators=[Length(max=2000)])
    roles = MultiCheckboxField(_l("Rôles"), coerce=db_int, validate_choice=False)


class ClientForm(FlaskForm):
    name = StringField(_l("Nom du client"), validators=[DataRequired(_l("Saisissez un nom.")), Length(max=120)])
    app = SelectField(_l("Application (rôles transmis dans les jetons)"), validate_choice=False)
    redirect_uris = TextAreaField(_l("Adresses de retour (une par ligne)"), validators=[Length(max=5000)])
    post_logout_redirect_uris = TextAreaField(_l("Adresses après déconnexion (une par ligne)"),
                                              validators=[Length(max=5000)])
    backchannel_logout_uri = StringField(_l("Adresse de déconnexion back-channel"),
                                         validators=[Optional(), Length(max=500)])
    trusted = BooleanField(_l("Application de confiance (pas d'écran de consentement)"))
    public = BooleanField(_l("Client public (sans secret, PKCE obligatoire)"))
    grant_types = MultiCheckboxField(_l("Types d'autorisation"), choices=[SelectChoice(g, g) for g in GRANT_TYPES],
                                     validators=[DataRequired(_l("Choisissez au moins un type d'autorisation."))])
    scope = StringField(_l("Portées (séparées par des espaces)"), default="openid profile email structures",
                        validators=[Length(max=500)])


class ClientUrisForm(FlaskForm):
    redirect_uris = TextAreaField(_l("Adresses de retour (une par ligne)"), validators=[Length(max=5000)])
    post_logout_redirect_uris = TextAreaField(_l("Adresses après déconnexion (une par ligne)"),
                                              validators=[Length(max=5000)])
    backchannel_logout_uri = StringField(_l("Adresse de déconnexion back-channel"),
                                         validators=[Optional(), Length(max=500)])


class AcceptForm(FlaskForm):
    roles = MultiCheckboxField(_l("Droits applicatifs accordés"), coerce=db_int, validate_choice=False)


class DeclineForm(FlaskForm):
    reason = TextAreaField(_l("Motif (transmis au demandeur)"), validators=[Length(max=500)])
