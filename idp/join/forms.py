"""Forms of "Se rattacher à une structure" (shape only; the core checks the SIRET key and the rules)."""

from __future__ import annotations

import re
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import Field, RadioField, StringField, TextAreaField
from wtforms.validators import Length, ValidationError

from shared.bounds import ascii_digits

MESSAGE_MAX = 500
QUERY_MAX = 100
# What a person may type between the digits of a SIRET: spaces (also non-breaking), dots, dashes.
SIRET_SEPARATORS = re.compile(r"[\s.\-\u00a0\u202f]+")


def siret_digits(value: str | None) -> str:
    """The SIRET without the separators people type ("123 456 789 00012")."""
    return SIRET_SEPARATORS.sub("", value or "")


def siret_shape(form: FlaskForm, field: Field) -> None:
    """Say precisely what is wrong with the shape; the Luhn key is checked by the core."""
    digits = siret_digits(field.data)
    if not digits:
        raise ValidationError(_l("Saisissez le SIRET de la structure (14 chiffres)."))
    if not ascii_digits(digits):
        raise ValidationError(_l("Le SIRET ne contient que des chiffres (les espaces sont acceptés)."))
    if len(digits) != 14:
        raise ValidationError(_l("Le SIRET comporte 14 chiffres ; vous en avez saisi %(n)d.", n=len(digits)))


class SiretForm(FlaskForm):
    """Step 1: the SIRET of the structure (a GET form: looking up changes nothing)."""

    class Meta:
        csrf = False

    siret = StringField(_l("SIRET de la structure"), validators=[Length(max=64, message=_l(
        "Le SIRET comporte 14 chiffres.")), siret_shape])


class SearchForm(FlaskForm):
    """The instant search without JavaScript: a plain GET form listing results."""

    class Meta:
        csrf = False

    q = StringField(_l("Rechercher une structure (nom, ville ou code)"))


def profile_choice(form: FlaskForm, field: Field) -> None:
    """One of the structure's profiles; none to choose when its kind offers none (the admin decides)."""
    offered = {value for value, _label in field.choices or []}
    if not offered:
        field.data = None
        return
    if not field.data:
        raise ValidationError(_l("Choisissez un profil."))
    if field.data not in offered:
        raise ValidationError(_l("Choisissez l'un des profils proposés."))


def printable_text(value: str | None) -> str | None:
    """Keep line breaks, drop other control characters (NUL cannot be stored in PostgreSQL text)."""
    if value is None:
        return None
    return "".join(ch for ch in value if ch.isprintable() or ch in "\n\t").strip()


class JoinForm(FlaskForm):
    """Step 2: the profile wanted and an optional message to the administrators."""

    profile = RadioField(_l("Profil demandé"), coerce=str, validate_choice=False, validators=[profile_choice])
    message = TextAreaField(_l("Message à l'administrateur (facultatif)"), filters=[printable_text], validators=[Length(
        max=MESSAGE_MAX, message=_l("Le message comporte au plus %(max)d caractères."))])

    def __init__(self, *args: Any, profiles: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.profile.choices = [(str(p.id), p.name) for p in profiles]


class CancelForm(FlaskForm):
    """Cancel one of my pending requests (a POST with its CSRF token, nothing else)."""
