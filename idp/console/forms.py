"""The console's forms: they check shape; idp/core/console.py enforces the rules."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, RadioField, StringField
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import HiddenInput

from idp.auth.forms import CIVILITIES, EMAIL_SHAPE, DbIntegerField
from shared.bounds import bounded_int


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


class LifetimeField(StringField):
    """A number of seconds, or empty for the platform's setting (bounds are the core's)."""

    def process_formdata(self, valuelist: list[object]) -> None:
        super().process_formdata(valuelist)
        self.typed = str(self.data or "")[:40]  # shown again as typed when refused
        text = self.typed.strip().replace(" ", "").replace("\u202f", "")
        if not text:
            self.data = None
        elif (number := bounded_int(text, 0, 999_999_999)) is not None:
            self.data = number
        else:
            self.data = None
            raise ValueError(_l("Saisissez un nombre entier de secondes, ou laissez vide."))

    def _value(self) -> str:
        return getattr(self, "typed", "") if self.data is None else str(self.data)


class LifetimeForm(FlaskForm):
    """A client's own token lifetimes, in seconds; empty: the platform's."""

    access_token_lifetime = LifetimeField(_l("Jeton d'accès (secondes)"))
    id_token_lifetime = LifetimeField(_l("Jeton d'identité (secondes)"))
    refresh_token_lifetime = LifetimeField(_l("Jeton de rafraîchissement (secondes)"))


class ScopeForm(FlaskForm):
    scope = StringField(_l("Portées autorisées (séparées par des espaces)"),
                        validators=[DataRequired(_l("Saisissez au moins une portée.")), Length(max=500)])
