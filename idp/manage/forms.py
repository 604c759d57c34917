"""Forms of "Gérer ma structure": they check shape; the grant rule lives in core/memberships.py."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, StringField, TextAreaField
from wtforms.validators import DataRequired, EqualTo, InputRequired, Length, Optional
from wtforms.widgets import HiddenInput

from idp.auth.forms import EMAIL_SHAPE, DbIntegerField


class ConfirmForm(FlaskForm):
    """A confirmation button: its CSRF token is the point."""


class VersionForm(FlaskForm):
    """An action on a member, with the version the page showed (optimistic locking)."""

    version = DbIntegerField(widget=HiddenInput(), validators=[InputRequired(_l("Rechargez la page et recommencez."))])


class FlagForm(VersionForm):
    """Promote/demote, suspend/reactivate: the wanted value ("1" or "0")."""

    value = HiddenField(validators=[DataRequired()])


class GrantsForm(VersionForm):
    """The roles come from request.form (one checkbox per entitled role, a date per role)."""


class DeclineForm(FlaskForm):
    reason = TextAreaField(_l("Motif (transmis au demandeur, facultatif)"), validators=[Length(max=500)])


class AttachForm(FlaskForm):
    email = EmailField(_l("Adresse e-mail de connexion"),
                       validators=[DataRequired(_l("Saisissez l'adresse e-mail de connexion.")),
                                   EMAIL_SHAPE, Length(max=254)])
    given_name = StringField(_l("Prénom (si la personne n'a pas encore de compte)"),
                             validators=[Optional(), Length(max=100)])
    family_name = StringField(_l("Nom (si la personne n'a pas encore de compte)"),
                              validators=[Optional(), Length(max=100)])


class InvitationPasswordForm(FlaskForm):
    password = PasswordField(_l("Mot de passe"), validators=[DataRequired(_l("Choisissez un mot de passe."))])
    confirm = PasswordField(
        _l("Confirmation du mot de passe"),
        validators=[DataRequired(_l("Confirmez le mot de passe.")),
                    EqualTo("password", _l("Les deux mots de passe ne sont pas identiques."))],
    )
