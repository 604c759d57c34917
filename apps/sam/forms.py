"""SAM's forms: they check shape; the domain (consultations.py) enforces the rules (STYLE §6)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from decimal import Decimal
from typing import Any

from flask_babel import gettext as _
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    DecimalField,
    FieldList,
    FormField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from apps.sam.consultations import MAX_QUESTION, ConsultationData, LotData
from apps.sam.models import AWARDED, UNITS, UNSUCCESSFUL
from apps.sam.responses import (
    CANDIDATURE_FIELDS,
    GROUP,
    MAX_ROWS,
    OFFER_FIELDS,
    SOLO,
    CandidatureData,
    Member,
    OfferData,
    SessionDates,
    Site,
)
from shared import (
    REQUIRED,
    Form,
    VersionedForm,
    ascii_digits,
    choices,
    day_in_range,
    from_paris,
    optional,
    required,
)
from shared import lazy_gettext as _l

DATETIME = "%Y-%m-%dT%H:%M"
BAD_DATETIME = _l("Saisissez une date et une heure valides (jj/mm/aaaa hh:mm).")
YEARS = range(2000, 2101)  # far dates would overflow the conversion to UTC (year 1, year 9999)


def _check_deadline(field: Any) -> None:
    """Our message for a malformed or out-of-range date-time (WTForms' own is English)."""
    if field.errors and field.raw_data and field.raw_data[0]:
        field.errors = [str(BAD_DATETIME)]
    elif field.data is not None and field.data.year not in YEARS:
        field.errors = [_("Saisissez une date entre %(first)d et %(last)d.", first=YEARS.start, last=YEARS.stop - 1)]


def _deadline(label: Any) -> DateTimeLocalField:
    return DateTimeLocalField(label, format=DATETIME, validators=[InputRequired(message=REQUIRED)])


class ConsultationForm(VersionedForm):
    """A consultation's description and deadlines (times typed in Paris time)."""

    reference = StringField(_l("Référence"), required(40), render_kw={"placeholder": _l("ex. 2027-FORM-012")})
    title = StringField(_l("Intitulé"), required(200))
    device = StringField(_l("Dispositif"), required(120), render_kw={"placeholder": _l("ex. Programme régional de formation")})
    description = TextAreaField(_l("Description"), optional(10000))
    question_deadline = _deadline(_l("Date limite des questions (heure de Paris)"))
    response_deadline = _deadline(_l("Date limite de remise des offres (heure de Paris)"))
    signature_required = BooleanField(_l("Exiger la signature électronique (PAdES) des actes d'engagement au dépôt"))

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
            signature_required=bool(self.signature_required.data),
        )


class AmendmentForm(ConsultationForm):
    """An "avis rectificatif": the same fields, and its reason."""

    reason = TextAreaField(_l("Motif de l'avis rectificatif"), required(2000))


class LotForm(Form):
    """One lot: number, title, unit of work, place, estimated volume."""

    number = IntegerField(_l("N° de lot"), validators=[InputRequired(message=REQUIRED),
                                                  NumberRange(1, 999, message=_l("Entre 1 et 999."))])
    title = StringField(_l("Intitulé du lot"), required(200))
    unit = SelectField(_l("Unité d'œuvre"), choices=choices((code, _l(label)) for code, label in UNITS.items()), validators=[InputRequired(message=REQUIRED)])
    place = StringField(_l("Lieu d'exécution"), optional(120))
    volume = IntegerField(_l("Volume estimé (en unités d'œuvre)"), validators=[
        Optional(), NumberRange(0, 10**9, message=_l("Entre 0 et 1 000 000 000."))])

    def validate(self, extra_validators: Any = None) -> bool:
        ok = super().validate(extra_validators)
        for field in (self.number, self.volume):
            if field.errors and field.raw_data and field.raw_data[0] and not ascii_digits(str(field.raw_data[0]).strip()):
                field.errors = [_("Saisissez un nombre entier.")]
        return ok

    def data_for_domain(self) -> LotData:
        return LotData(number=self.number.data, title=self.title.data.strip(), unit=self.unit.data,
                       place=(self.place.data or "").strip(), volume=self.volume.data or 0)


class LotAmendmentForm(LotForm):
    """An "avis rectificatif" on one lot of a published consultation."""

    response_deadline = DateTimeLocalField(_l("Nouvelle date limite de remise des offres (heure de Paris), si reportée"),
                                           format=DATETIME, validators=[Optional()])
    reason = TextAreaField(_l("Motif de l'avis rectificatif"), required(2000))

    def validate(self, extra_validators: Any = None) -> bool:
        ok = super().validate(extra_validators)
        _check_deadline(self.response_deadline)
        return ok and not self.response_deadline.errors

    def new_deadline(self) -> Any:
        return from_paris(self.response_deadline.data) if self.response_deadline.data else None


class ReasonForm(Form):
    """A reason (cancellation)."""

    reason = TextAreaField(_l("Motif"), required(2000))


class ActionForm(Form):
    """A button (publish, remove a lot): CSRF only."""


class DceForm(Form):
    """Upload a (new version of the) DCE."""

    file = FileField(_l("Fichier du DCE"))


class QuestionForm(Form):
    text = TextAreaField(_l("Votre question"), required(MAX_QUESTION))


class AnswerForm(Form):
    answer = TextAreaField(_l("Réponse publiée"), required(MAX_QUESTION))


class DecisionForm(Form):
    outcome = RadioField(_l("Décision"), choices=[SelectChoice(AWARDED, _l("Attribuer le lot")),
                                              SelectChoice(UNSUCCESSFUL, _l("Déclarer le lot infructueux"))],
                         validators=[InputRequired(message=REQUIRED)])
    awardee = StringField(_l("Attributaire (si attribué)"), optional(200))


# ---------------------------------------------------------------- responses (issue 13)

class SiteRow(Form):
    """One delivery site (a row of the sites table)."""

    class Meta(Form.Meta):
        csrf = False

    name = StringField(_l("Nom du site"), optional(200))
    address = StringField(_l("Adresse (numéro et voie)"), optional(200))
    postal_code = StringField(_l("Code postal"), optional(5))
    city = StringField(_l("Ville"), optional(100))

    def value(self) -> Site:
        return Site(*((getattr(self, n).data or "").strip() for n in ("name", "address", "postal_code", "city")))


class MemberRow(Form):
    """One co-contractor of a group."""

    class Meta(Form.Meta):
        csrf = False

    name = StringField(_l("Dénomination"), optional(200))
    siret = StringField(_l("SIRET"), optional(14))
    share = StringField(_l("Répartition des prestations"), optional(300))

    def value(self) -> Member:
        return Member(*((getattr(self, n).data or "").strip() for n in ("name", "siret", "share")))


class SessionRow(Form):
    """One planned session: its site (number in the sites table) and dates."""

    class Meta(Form.Meta):
        csrf = False

    site = IntegerField(_l("Site n°"), validators=[Optional(), NumberRange(1, MAX_ROWS, message=_l("Entre 1 et %(max)d.", max=MAX_ROWS))])
    start = DateField(_l("Début"), validators=[Optional(), day_in_range])
    end = DateField(_l("Fin"), validators=[Optional(), day_in_range])

    def value(self) -> SessionDates | None:
        if not (self.start.data or self.end.data):
            return None
        return SessionDates(site=self.site.data or 1, start=self.start.data.isoformat() if self.start.data else "",
                            end=self.end.data.isoformat() if self.end.data else "")


def _rows(form_class: type[Form], label: Any) -> FieldList:
    return FieldList(FormField(form_class), label=label, min_entries=MAX_ROWS, max_entries=MAX_ROWS)


def _fill_rows(field_list: FieldList, rows: list[Any]) -> None:
    """Put stored rows in a FieldList shown for editing (the rest stay empty)."""
    for entry, row in zip(field_list.entries, rows, strict=False):
        for name, value in asdict(row).items():
            sub = getattr(entry.form, name)
            sub.data = date.fromisoformat(value) if isinstance(sub, DateField) and value else value


class CandidatureForm(VersionedForm):
    """The candidature (seed 003): candidate, group members, delivery sites (attachments apart)."""

    legal_name = StringField(_l("Dénomination (raison sociale)"), optional(200))
    legal_category = StringField(_l("Forme juridique"), optional(120))
    ape_code = StringField(_l("Code APE/NAF"), optional(6))
    address = StringField(_l("Adresse du siège"), optional(200))
    postal_code = StringField(_l("Code postal"), optional(5))
    city = StringField(_l("Ville"), optional(100))
    representative = StringField(_l("Représentant légal (prénom et nom)"), optional(200))
    representative_title = StringField(_l("Qualité du représentant légal"), optional(100))
    signatory = StringField(_l("Signataire habilité (prénom et nom)"), optional(200))
    signatory_title = StringField(_l("Qualité du signataire"), optional(100))
    email = StringField(_l("Courriel"), optional(254))
    phone = StringField(_l("Téléphone"), optional(25))
    group_kind = RadioField(_l("Type de candidature"), choices=[SelectChoice(SOLO, _l("Candidat seul")),
                                                            SelectChoice(GROUP, _l("Groupement (solidaire)"))],
                            default=SOLO, validators=[InputRequired(message=REQUIRED)])
    lead = SelectField(_l("Mandataire du groupement"), choices=[SelectChoice("0", _l("Le candidat")),
                                                            *(SelectChoice(str(i), _l("Membre n° %(number)d", number=i))
                                                              for i in range(1, MAX_ROWS + 1))],
                       default="0", coerce=lambda v: int(v) if ascii_digits(str(v).strip()) else 0)
    members = _rows(MemberRow, _l("Membres du groupement"))
    sites = _rows(SiteRow, _l("Sites de réalisation"))

    def fill(self, response: Any, data: CandidatureData) -> None:
        for name in CANDIDATURE_FIELDS:
            getattr(self, name).data = getattr(data, name)
        _fill_rows(self.members, data.members)
        _fill_rows(self.sites, data.sites)
        self.version.data = str(response.version)

    def data_for_domain(self) -> CandidatureData:
        data = CandidatureData(**{n: (getattr(self, n).data or "") for n in CANDIDATURE_FIELDS
                                  if n not in ("group_kind", "lead")})
        data.group_kind, data.lead = self.group_kind.data, self.lead.data or 0
        data.members = [e.form.value() for e in self.members.entries]
        data.sites = [e.form.value() for e in self.sites.entries]
        return data


class EuroField(DecimalField):
    """An amount in euros as French people type it ("12,50", "1 250,00"); only finite numbers."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        if valuelist:
            valuelist = [str(valuelist[0]).replace("\u202f", "").replace("\xa0", "").replace(" ", "").replace(",", ".")]
        super().process_formdata(valuelist)
        if self.data is not None and not self.data.is_finite():
            self.data = None
            raise ValueError(_("Saisissez un nombre."))


class OfferForm(VersionedForm):
    """An offer on a lot: pedagogy, volumes, price per unit of work, sites, sessions, contact."""

    formacode = StringField(_l("Formacode (5 chiffres)"), optional(5))
    objectives = TextAreaField(_l("Objectifs de la formation"), optional(3000))
    prerequisites = TextAreaField(_l("Pré-requis"), optional(3000))
    content = TextAreaField(_l("Contenu (modules et blocs de compétences)"), optional(3000))
    hours = IntegerField(_l("Durée par stagiaire (heures)"), validators=[Optional(), NumberRange(1, 10000, message=_l("Entre 1 et 10 000."))])
    headcount = IntegerField(_l("Effectif prévu (stagiaires)"), validators=[Optional(), NumberRange(1, 100000, message=_l("Entre 1 et 100 000."))])
    unit_price = EuroField(_l("Prix unitaire HT (€) par unité d'œuvre"), places=2,
                              validators=[Optional(), NumberRange(0, 10**7, message=_l("Entre 0 et 10 000 000 €."))])
    accessibility = StringField(_l("Accessibilité aux personnes en situation de handicap"), optional(250))
    contact_name = StringField(_l("Contact des sessions (nom)"), optional(100))
    contact_phone = StringField(_l("Téléphone du contact"), optional(25))
    contact_email = StringField(_l("Courriel du contact"), optional(254))
    sites = _rows(SiteRow, _l("Sites de réalisation"))
    sessions = _rows(SessionRow, _l("Sessions prévues"))

    def validate(self, extra_validators: Any = None) -> bool:
        ok = super().validate(extra_validators)
        for field in (self.hours, self.headcount, self.unit_price):
            if field.errors and field.raw_data and field.raw_data[0] and field.data is None:
                field.errors = [_("Saisissez un nombre.")]
        return ok

    def fill(self, offer: Any, data: OfferData) -> None:
        for name in OFFER_FIELDS:
            if name != "unit_price_cents":
                getattr(self, name).data = getattr(data, name)
        self.unit_price.data = Decimal(data.unit_price_cents) / 100 if data.unit_price_cents is not None else None
        _fill_rows(self.sites, data.sites)
        _fill_rows(self.sessions, data.sessions)
        self.version.data = str(offer.version)

    def data_for_domain(self) -> OfferData:
        data = OfferData(**{n: getattr(self, n).data for n in OFFER_FIELDS if n != "unit_price_cents"})
        for name in ("formacode", "objectives", "prerequisites", "content", "accessibility", "contact_name",
                     "contact_phone", "contact_email"):
            setattr(data, name, getattr(data, name) or "")
        price = self.unit_price.data
        data.unit_price_cents = int((price * 100).to_integral_value()) if price is not None else None
        data.sites = [e.form.value() for e in self.sites.entries]
        data.sessions = [s for s in (e.form.value() for e in self.sessions.entries) if s is not None]
        return data


class NewOfferForm(Form):
    lot = SelectField(_l("Lot"), coerce=int, validators=[InputRequired(message=REQUIRED)])


class AttachmentForm(Form):
    kind = SelectField(_l("Type de pièce"), validators=[InputRequired(message=REQUIRED)])
    file = FileField(_l("Fichier"))


class SignForm(Form):
    """Sign a document: with one's own PKCS#12 (never stored), or the demo certificate."""

    certificate = FileField(_l("Certificat personnel (PKCS#12, .p12 / .pfx) — facultatif en démonstration"))
    passphrase = PasswordField(_l("Phrase secrète du certificat"), validators=[Optional(), Length(max=200)])


class VerifyForm(Form):
    file = FileField(_l("Document PDF signé"))


class AdmissibilityForm(Form):
    admissible = RadioField(_l("Admissibilité"), choices=[SelectChoice("1", _l("Admissible")), SelectChoice("0", _l("Non admissible"))],
                            validators=[InputRequired(message=REQUIRED)])
    reason = TextAreaField(_l("Motif"), required(2000))
