"""Forms of "Se lier à un ancien compte" (shape only; the directory decides)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from idp.directory import MAX_ID_LENGTH

ID_LENGTH = Length(max=MAX_ID_LENGTH, message=_l("L'identifiant comporte au plus %(max)d caractères."))


class LinkForm(FlaskForm):
    """Method 1: I know the legacy id and its password."""

    legacy_id = StringField(_l("Identifiant de votre ancien compte"),
                            validators=[DataRequired(_l("Saisissez l'identifiant de l'ancien compte.")), ID_LENGTH])
    password = PasswordField(_l("Mot de passe de l'ancien compte"),
                             validators=[DataRequired(_l("Saisissez le mot de passe de l'ancien compte.")),
                                         Length(max=256)])


class ForgotForm(FlaskForm):
    """Method 2: I only know the legacy id."""

    legacy_id = StringField(_l("Identifiant de votre ancien compte"),
                            validators=[DataRequired(_l("Saisissez l'identifiant de l'ancien compte.")), ID_LENGTH])


class ConfirmLinkForm(FlaskForm):
    """The link mailed to the legacy account's address: confirm with a POST (CSRF)."""
