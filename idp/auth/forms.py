"""Forms of the public pages: they check shape; the password policy lives in core (STYLE §6)."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, IntegerField, PasswordField, RadioField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length, Regexp

from idp.core.passwords import MAX_LENGTH
from idp.guard import column_int

# Shape only (no email_validator dependency): the verification link proves the address.
EMAIL_SHAPE = Regexp(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", message=_l("Cette adresse e-mail n'est pas valide."))



class DbIntegerField(IntegerField):
    """An integer a database column can hold (a version, an id): a forged larger one is a form error,
    not an overflow in the database driver."""

    def process_formdata(self, valuelist: list[object]) -> None:
        if not valuelist:
            return
        self.data = column_int(valuelist[0])  # ASCII digits only: int() would take "٣", refuse "²"
        if self.data is None:
            raise ValueError(_("Rechargez la page et recommencez."))


def db_int(value: object) -> int:
    """`coerce` for checkbox lists of ids: ValueError (a form error) beyond a column's range."""
    number = column_int(value)
    if number is None:
        raise ValueError(value)
    return number


CIVILITIES = [SelectChoice("mme", _l("Madame")), SelectChoice("m", _l("Monsieur"))]


def password_messages(problems: list[str], portal_name: str) -> list[str]:
    """One clear French sentence per broken rule of the password policy (SPEC §4.1)."""
    messages = {
        "too_short": _("Le mot de passe doit comporter au moins 12 caractères mêlant minuscules, "
                       "majuscules, chiffres et caractères spéciaux, ou au moins 15 caractères "
                       "de tout type."),
        "too_long": _("Le mot de passe ne doit pas dépasser %(max)d caractères.", max=MAX_LENGTH),
        "common": _("Ce mot de passe fait partie des mots de passe les plus courants : "
                    "choisissez-en un autre."),
        "personal": _("Le mot de passe ne doit contenir ni votre nom, ni votre prénom, ni votre "
                      "adresse e-mail."),
        "portal": _("Le mot de passe ne doit pas contenir le nom du portail (%(name)s).",
                    name=portal_name),
        # zxcvbn's estimate (issue 15 finding 9): what makes it guessable, in French.
        "weak_common": _("Ce mot de passe est trop facile à deviner : il est fait de mots de passe "
                         "courants (comme « azerty » ou « 123456 »)."),
        "weak_words": _("Ce mot de passe est trop facile à deviner : il est fait de mots ou de noms "
                        "courants. Ajoutez un ou deux mots peu courants."),
        "weak_repeat": _("Ce mot de passe est trop facile à deviner : il répète les mêmes caractères "
                         "ou le même motif."),
        "weak_sequence": _("Ce mot de passe est trop facile à deviner : il contient une suite "
                           "prévisible (comme « abcd » ou « 6543 »)."),
        "weak_keyboard": _("Ce mot de passe est trop facile à deviner : il suit des touches voisines "
                           "du clavier."),
        "weak_date": _("Ce mot de passe est trop facile à deviner : il contient une date ou une année."),
        "weak_short": _("Ce mot de passe est trop facile à deviner : allongez-le, par exemple avec "
                        "quelques mots peu courants."),
    }
    return [messages[p] for p in problems if p in messages]


class _NextForm(FlaskForm):
    next = HiddenField()
    force = HiddenField()


class LoginForm(_NextForm):
    email = EmailField(_l("Adresse e-mail de connexion"), validators=[DataRequired(_l("Saisissez votre adresse e-mail."))])
    password = PasswordField(_l("Mot de passe"), validators=[DataRequired(_l("Saisissez votre mot de passe."))])


class TotpForm(_NextForm):
    code = StringField(
        _l("Code à usage unique"),
        validators=[DataRequired(_l("Saisissez le code affiché par votre application.")), Length(max=32)],
    )


class SignupForm(FlaskForm):
    email = EmailField(
        _l("Adresse e-mail de connexion"),
        validators=[DataRequired(_l("Saisissez votre adresse e-mail.")),
                    EMAIL_SHAPE, Length(max=254)],
    )
    password = PasswordField(_l("Mot de passe"), validators=[DataRequired(_l("Choisissez un mot de passe."))])
    confirm = PasswordField(
        _l("Confirmation du mot de passe"),
        validators=[DataRequired(_l("Confirmez le mot de passe.")),
                    EqualTo("password", _l("Les deux mots de passe ne sont pas identiques."))],
    )
    civility = RadioField(_l("Civilité"), choices=CIVILITIES,
                          validators=[DataRequired(_l("Choisissez une civilité."))])
    given_name = StringField(_l("Prénom"), validators=[DataRequired(_l("Saisissez votre prénom.")), Length(max=100)])
    family_name = StringField(_l("Nom de famille"), validators=[DataRequired(_l("Saisissez votre nom.")), Length(max=100)])


class EmailForm(FlaskForm):
    email = EmailField(
        _l("Adresse e-mail de connexion"),
        validators=[DataRequired(_l("Saisissez votre adresse e-mail.")),
                    EMAIL_SHAPE, Length(max=254)],
    )


class NewPasswordForm(FlaskForm):
    password = PasswordField(_l("Nouveau mot de passe"), validators=[DataRequired(_l("Choisissez un mot de passe."))])
    confirm = PasswordField(
        _l("Confirmation du mot de passe"),
        validators=[DataRequired(_l("Confirmez le mot de passe.")),
                    EqualTo("password", _l("Les deux mots de passe ne sont pas identiques."))],
    )


class ConfirmForm(FlaskForm):
    """A button and its CSRF token (logout, revoke...)."""
