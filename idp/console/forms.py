"""The console's forms: they check shape; idp/core/console.py enforces the rules."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, RadioField, StringField
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import HiddenInput

from idp.auth.forms import CIVILITIES, EMAIL_SHAPE, DbIntegerField


class AccountForm(FlaskForm):
    """A new account: its owner sets the password from the link mailed to them."""

    email = EmailField(_l("Adresse e-mail de connexion"), validators=[
        DataRequired(_l("Saisissez une adresse e-mail.")), EMAIL_SHAPE, Length(max=254)])
    civility = RadioField(_l("Civilité"), choices=CIVILITIES, validators=[Optional()])
    given_name = StringField(_l("Prénom"), validators=[DataRequired(_l("Saisissez le prénom.")), Length(max=100)])
    family_name = StringField(_l("Nom de famille"), validators=[DataRequired(_l("Saisissez le nom.")), Length(max=100)])


class EditAccountForm(FlaskForm):
    version = DbIntegerField(widget=HiddenInput())
    civility = RadioField(_l("Civilité"), choices=CIVILITIES, validators=[Optional()])
    given_name = StringField(_l("Prénom"), validators=[DataRequired(_l("Saisissez le prénom.")), Length(max=100)])
    family_name = StringField(_l("Nom de famille"), validators=[DataRequired(_l("Saisissez le nom.")), Length(max=100)])
    contact_email = EmailField(_l("Adresse e-mail de contact (facultative)"), validators=[
        Optional(), EMAIL_SHAPE, Length(max=254)])


class ScopeForm(FlaskForm):
    scope = StringField(_l("Portées autorisées (séparées par des espaces)"),
                        validators=[DataRequired(_l("Saisissez au moins une portée.")), Length(max=500)])
