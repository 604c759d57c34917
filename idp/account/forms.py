"""Forms of "Mon compte"."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, RadioField, StringField
from wtforms.validators import DataRequired, EqualTo, Length
from wtforms.widgets import HiddenInput

from idp.auth.forms import CIVILITIES, EMAIL_SHAPE, DbIntegerField


class ProfileForm(FlaskForm):
    version = DbIntegerField(widget=HiddenInput())
    civility = RadioField(_l("Civilité"), choices=CIVILITIES,
                          validators=[DataRequired(_l("Choisissez une civilité."))])
    given_name = StringField(_l("Prénom"), validators=[DataRequired(_l("Saisissez votre prénom.")), Length(max=100)])
    family_name = StringField(_l("Nom de famille"), validators=[DataRequired(_l("Saisissez votre nom.")), Length(max=100)])


class PasswordForm(FlaskForm):
    current = PasswordField(_l("Mot de passe actuel"), validators=[DataRequired(_l("Saisissez votre mot de passe actuel."))])
    password = PasswordField(_l("Nouveau mot de passe"), validators=[DataRequired(_l("Choisissez un mot de passe."))])
    confirm = PasswordField(
        _l("Confirmation du mot de passe"),
        validators=[DataRequired(_l("Confirmez le mot de passe.")),
                    EqualTo("password", _l("Les deux mots de passe ne sont pas identiques."))],
    )


class ContactEmailForm(FlaskForm):
    email = EmailField(
        _l("Adresse e-mail de contact"),
        validators=[DataRequired(_l("Saisissez une adresse e-mail.")),
                    EMAIL_SHAPE, Length(max=254)],
    )


class TotpConfirmForm(FlaskForm):
    code = StringField(_l("Code affiché par l'application"),
                       validators=[DataRequired(_l("Saisissez le code affiché par votre application.")), Length(max=16)])


class TotpDisableForm(FlaskForm):
    password = PasswordField(_l("Mot de passe"), validators=[DataRequired(_l("Saisissez votre mot de passe."))])


class SessionForm(FlaskForm):
    session_id = HiddenField()


class SwitchStructureForm(FlaskForm):
    next = HiddenField()
    structure = RadioField(_l("Structure"), validators=[DataRequired(_l("Choisissez une structure."))])
