"""The base form of the apps: WTForms' messages in the page's language, a French message for an expired CSRF
token, and the hidden `version` field of optimistic locking (SPEC §6)."""

from __future__ import annotations

import re
from typing import Any

from flask_wtf import FlaskForm
from wtforms import FieldList, FormField, HiddenField, PasswordField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.utils import unset_value
from wtforms.validators import InputRequired, Length, Optional, Regexp, ValidationError

from shared.bounds import FIRST_DAY, LAST_DAY
from shared.i18n import lazy_gettext as _l

REQUIRED = _l("Ce champ est obligatoire.")
EMAIL = Regexp(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", message=_l("Saisissez une adresse e-mail valide."))
CSRF_EXPIRED = _l("Le formulaire a expiré : vérifiez vos saisies puis validez à nouveau.")
# A stale save (`shared.locking.StaleVersion`), as the person reads it above their kept input.
CONFLICT_MESSAGE = _l("Cette fiche a été modifiée par quelqu'un d'autre depuis que vous l'avez ouverte. "
                      "Vos saisies sont conservées ci-dessous : vérifiez la version actuelle puis enregistrez à nouveau.")


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def strip_control(value: Any) -> Any:
    """No NUL or other control characters in stored text (PostgreSQL refuses NUL bytes, and they
    have no business in a name or an address); tabs and line breaks stay."""
    return _CONTROL.sub("", value) if isinstance(value, str) else value


_LINE_BREAKS = re.compile(r"[\t\n\r\v\f\x85\u2028\u2029]+")


def one_line(value: Any) -> Any:
    """A one-line field's text on one line: a browser never sends a line break from a text input,
    a forged post may, and a reference or a name then breaks a header, a CSV row or a PDF line."""
    return _LINE_BREAKS.sub(" ", value) if isinstance(value, str) else value


def day_in_range(form: Any, field: Any) -> None:
    """Validator of a date field: a day between FIRST_DAY and LAST_DAY (shared.bounds). 0001-01-01
    and 9999-12-31 parse, then overflow as soon as a day is added or a zone applied."""
    if field.data is not None and not FIRST_DAY <= field.data <= LAST_DAY:
        raise ValidationError(_l("Saisissez une date entre le %(first)s et le %(last)s.",
                                 first=FIRST_DAY.strftime("%d/%m/%Y"), last=LAST_DAY.strftime("%d/%m/%Y")))


class Form(FlaskForm):
    """A French form (STYLE §6: forms check shape, the domain enforces rules) whose text is cleaned
    of control characters before it is validated, and whose one-line fields stay on one line."""

    class Meta:
        locales = ["fr_FR", "fr"]

        def bind_field(self, form: Any, unbound_field: Any, options: dict[str, Any]) -> Any:
            cls = unbound_field.field_class
            if issubclass(cls, (FieldList, FormField)):
                return unbound_field.bind(form=form, **options)  # their inner fields are cleaned
            one_line_text = issubclass(cls, StringField) and not issubclass(cls, (TextAreaField, PasswordField))
            filters = [strip_control, *([one_line] if one_line_text else []), *unbound_field.kwargs.get("filters", ())]
            return unbound_field.bind(form=form, filters=filters, **options)

    def validate(self, extra_validators: Any = None) -> bool:
        ok = super().validate(extra_validators)
        csrf = getattr(self, "csrf_token", None)
        if csrf is not None and csrf.errors:
            csrf.errors = [str(CSRF_EXPIRED)]
        return ok


class VersionField(HiddenField):
    """The version the form was shown: on a submission, only what the browser sent back, never the
    stored object's (a save without it is stale, not a silent overwrite)."""

    def process(self, formdata: Any, data: Any = unset_value, extra_filters: Any = None) -> None:
        super().process(formdata, data, extra_filters)
        if formdata is not None and not self.raw_data:
            self.data = None


class VersionedForm(Form):
    """An edit form of a `Versioned` object: it sends back the version it was shown."""

    version = VersionField()


def required(length: int) -> list[Any]:
    """Validators of a mandatory text field of at most `length` characters."""
    return [InputRequired(message=REQUIRED), Length(max=length, message=_l("%(num)d caractères au maximum.", num=length))]


def optional(length: int) -> list[Any]:
    """Validators of an optional text field of at most `length` characters."""
    return [Optional(), Length(max=length, message=_l("%(num)d caractères au maximum.", num=length))]


def choices(pairs: Any) -> list[SelectChoice]:
    """Select options with a first empty "— Choisissez —"."""
    return [SelectChoice("", _l("— Choisissez —")), *(SelectChoice(value, label) for value, label in pairs)]
