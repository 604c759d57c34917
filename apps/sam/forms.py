"""SAM's forms: they check shape; the domain (consultations.py) enforces the rules (STYLE §6)."""

from __future__ import annotations

import re
from typing import Any

from flask_wtf.file import FileField
from wtforms import (
    DateTimeLocalField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, NumberRange, Optional

from apps.sam.consultations import MAX_QUESTION, ConsultationData, LotData
from apps.sam.models import AWARDED, UNITS, UNSUCCESSFUL
from shared import REQUIRED, Form, VersionedForm, choices, from_paris, optional, required

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _clean(value: Any) -> Any:
    """No NUL or other control characters in stored text (PostgreSQL refuses NUL bytes)."""
    return _CONTROL.sub("", value) if isinstance(value, str) else value


class SamForm(Form):
    """Every text field of SAM's forms is cleaned of control characters before validation."""

    class Meta(Form.Meta):
        def bind_field(self, form: Any, unbound_field: Any, options: dict[str, Any]) -> Any:
            filters = [_clean, *unbound_field.kwargs.get("filters", ())]
            return unbound_field.bind(form=form, filters=filters, **options)


class SamVersionedForm(SamForm, VersionedForm):
    """A SAM edit form that sends back the version it was shown (409 on a stale save)."""


DATETIME = "%Y-%m-%dT%H:%M"
BAD_DATETIME = "Saisissez une date et une heure valides (jj/mm/aaaa hh:mm)."
YEARS = range(2000, 2101)  # far dates would overflow the conversion to UTC (year 1, year 9999)


def _check_deadline(field: Any) -> None:
    """A French message for a malformed or out-of-range date-time (WTForms' own is English)."""
    if field.errors and field.raw_data and field.raw_data[0]:
        field.errors = [BAD_DATETIME]
    elif field.data is not None and field.data.year not in YEARS:
        field.errors = [f"Saisissez une date entre {YEARS.start} et {YEARS.stop - 1}."]


def _deadline(label: str) -> DateTimeLocalField:
    return DateTimeLocalField(label, format=DATETIME, validators=[InputRequired(message=REQUIRED)])


class ConsultationForm(SamVersionedForm):
    """A consultation's description and deadlines (times typed in Paris time)."""

    reference = StringField("Référence", required(40), render_kw={"placeholder": "ex. 2027-FORM-012"})
    title = StringField("Intitulé", required(200))
    device = StringField("Dispositif", required(120), render_kw={"placeholder": "ex. Programme régional de formation"})
    description = TextAreaField("Description", optional(10000))
    question_deadline = _deadline("Date limite des questions (heure de Paris)")
    response_deadline = _deadline("Date limite de remise des offres (heure de Paris)")

    def validate(self, extra_validators: Any = None) -> bool:
        ok = super().validate(extra_validators)
        for deadline in (self.question_deadline, self.response_deadline):
            _check_deadline(deadline)
        return ok and not (self.question_deadline.errors or self.response_deadline.errors)

    def data_for_domain(self) -> ConsultationData:
        return ConsultationData(
            reference=self.reference.data.strip(), title=self.title.data.strip(), device=self.device.data.strip(),
            description=(self.description.data or "").strip(),
            question_deadline=from_paris(self.question_deadline.data),
            response_deadline=from_paris(self.response_deadline.data),
        )


class AmendmentForm(ConsultationForm):
    """An "avis rectificatif": the same fields, and its reason."""

    reason = TextAreaField("Motif de l'avis rectificatif", required(2000))


class LotForm(SamForm):
    """One lot: number, title, unit of work, place, estimated volume."""

    number = IntegerField("N° de lot", validators=[InputRequired(message=REQUIRED),
                                                  NumberRange(1, 999, message="Entre 1 et 999.")])
    title = StringField("Intitulé du lot", required(200))
    unit = SelectField("Unité d'œuvre", choices=choices(UNITS.items()), validators=[InputRequired(message=REQUIRED)])
    place = StringField("Lieu d'exécution", optional(120))
    volume = IntegerField("Volume estimé (en unités d'œuvre)", validators=[
        Optional(), NumberRange(0, 10**9, message="Entre 0 et 1 000 000 000.")])

    def validate(self, extra_validators: Any = None) -> bool:
        ok = super().validate(extra_validators)
        for field in (self.number, self.volume):
            if field.errors and field.raw_data and field.raw_data[0] and not str(field.raw_data[0]).strip().isdigit():
                field.errors = ["Saisissez un nombre entier."]
        return ok

    def data_for_domain(self) -> LotData:
        return LotData(number=self.number.data, title=self.title.data.strip(), unit=self.unit.data,
                       place=(self.place.data or "").strip(), volume=self.volume.data or 0)


class LotAmendmentForm(LotForm):
    """An "avis rectificatif" on one lot of a published consultation."""

    response_deadline = DateTimeLocalField("Nouvelle date limite de remise des offres (heure de Paris), si reportée",
                                           format=DATETIME, validators=[Optional()])
    reason = TextAreaField("Motif de l'avis rectificatif", required(2000))

    def validate(self, extra_validators: Any = None) -> bool:
        ok = super().validate(extra_validators)
        _check_deadline(self.response_deadline)
        return ok and not self.response_deadline.errors

    def new_deadline(self) -> Any:
        return from_paris(self.response_deadline.data) if self.response_deadline.data else None


class ReasonForm(SamForm):
    """A reason (cancellation)."""

    reason = TextAreaField("Motif", required(2000))


class ActionForm(SamForm):
    """A button (publish, remove a lot): CSRF only."""


class DceForm(SamForm):
    """Upload a (new version of the) DCE."""

    file = FileField("Fichier du DCE")


class QuestionForm(SamForm):
    text = TextAreaField("Votre question", required(MAX_QUESTION))


class AnswerForm(SamForm):
    answer = TextAreaField("Réponse publiée", required(MAX_QUESTION))


class DecisionForm(SamForm):
    outcome = RadioField("Décision", choices=[SelectChoice(AWARDED, "Attribuer le lot"),
                                              SelectChoice(UNSUCCESSFUL, "Déclarer le lot infructueux")],
                         validators=[InputRequired(message=REQUIRED)])
    awardee = StringField("Attributaire (si attribué)", optional(200))
