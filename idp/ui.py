"""What every IdP page reads the way a person does (issue 16): times in Europe/Paris (the shell's
`paris` filter), roles and applications by their human labels (the shell's table), the audit
trail as French sentences, and the language chosen (cookie, then the account)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from flask import Flask, request
from flask_babel import get_locale, gettext, lazy_gettext
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.models import AppRole, AuditEvent, Structure, User
from shared.applications import app_label, role_label, role_title
from shared.timefmt import PARIS

LANGUAGE_NAMES = {"fr": "Français", "en": "English"}

def _english() -> bool:
    locale = get_locale()
    return bool(locale and locale.language == "en")


def _language() -> str:
    return "en" if _english() else "fr"


def human_role(app: str, role: str) -> str:
    """ "SAM — Rédacteur" (or "SAM — Drafter" in English) for ("sam", "redacteur")."""
    return role_label(app, role, _language())


def human_role_key(key: str) -> str:
    """ "SAM — Rédacteur" for the key "sam:redacteur"."""
    app, _, role = key.partition(":")
    return human_role(app, role)


def human_role_title(app: str, role: str) -> str:
    return role_title(app, role, _language())


def human_app_label(name: str) -> str:
    """ "SAM — marchés de formation" (or its English label); an unknown name as it is."""
    return app_label(name, _language())


def paris(value: datetime | None, fmt: str = "%d/%m/%Y %H:%M", zone: bool = False) -> str:
    """A UTC time as read in the Région: Europe/Paris, "—" when missing; `zone` names it."""
    from shared.timefmt import paris as shell_paris

    text = shell_paris(value, fmt)
    if zone and value is not None:
        return f"{text} ({gettext('heure de Paris')})"
    return text


def paris_iso(value: datetime) -> str:
    """ISO 8601 with the Paris offset (exports: the zone is in the value, `+01:00`)."""
    from datetime import UTC

    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(PARIS).isoformat(timespec="seconds")


# ---------------------------------------------------------------- the audit trail in words

# Each event as a sentence; {actor}, {subject}, {structure}, {roles}, {client} and the details'
# own keys are filled in. Unknown events fall back to their raw name (the CSV keeps every field).
EVENT_SENTENCES: dict[str, Any] = {
    "account.blocked": lazy_gettext("Le compte de {subject} a été bloqué."),
    "account.created": lazy_gettext("{actor} a créé le compte de {subject}."),
    "account.deactivated": lazy_gettext("{actor} a mis en sommeil le compte de {subject}."),
    "account.deleted": lazy_gettext("{actor} a supprimé le compte de {subject}."),
    "account.invited": lazy_gettext("{actor} a invité {subject}."),
    "account.platform_admin_granted": lazy_gettext("{actor} a nommé {subject} administrateur de la plateforme."),
    "account.reactivated": lazy_gettext("{actor} a réactivé le compte de {subject}."),
    "account.signup_existing": lazy_gettext("Inscription tentée avec l'adresse de {subject}."),
    "account.unblocked": lazy_gettext("{actor} a débloqué le compte de {subject}."),
    "account.updated": lazy_gettext("{actor} a modifié le compte de {subject}."),
    "account.verified": lazy_gettext("{subject} a confirmé son adresse e-mail."),
    "account.totp_reset": lazy_gettext("{actor} a réinitialisé la double authentification de {subject}."),
    "account.reset_mail_sent": lazy_gettext("{actor} a envoyé un lien de réinitialisation à {subject}."),
    "account.sessions_ended": lazy_gettext("{actor} a fermé les sessions de {subject}."),
    "audit.exported": lazy_gettext("{actor} a exporté le journal."),
    "client.created": lazy_gettext("{actor} a déclaré le client {client}."),
    "client.registered": lazy_gettext("Le client {client} a été enregistré."),
    "client.secret_regenerated": lazy_gettext("{actor} a régénéré le secret du client {client}."),
    "client.updated": lazy_gettext("{actor} a modifié le client {client}."),
    "client.disabled": lazy_gettext("{actor} a désactivé le client {client}."),
    "client.enabled": lazy_gettext("{actor} a réactivé le client {client}."),
    "client.deleted": lazy_gettext("{actor} a supprimé le client {client}."),
    "consent.granted": lazy_gettext("{actor} a donné son consentement au client {client}."),
    "consent.denied": lazy_gettext("{actor} a refusé son consentement au client {client}."),
    "consent.revoked": lazy_gettext("{actor} a retiré le consentement de {subject} au client {client}."),
    "email.contact_changed": lazy_gettext("{subject} a changé son adresse e-mail de contact."),
    "grants.changed": lazy_gettext("{actor} a modifié les droits de {subject} dans {structure} "
                                   "(ajoutés : {added} ; retirés : {removed})."),
    "invitation.accepted": lazy_gettext("{subject} a accepté l'invitation."),
    "invitation.sent": lazy_gettext("{actor} a envoyé une invitation à {subject}."),
    "join.accepted": lazy_gettext("{actor} a accepté la demande de {subject} pour {structure}."),
    "join.cancelled": lazy_gettext("{subject} a annulé sa demande pour {structure}."),
    "join.declined": lazy_gettext("{actor} a décliné la demande de {subject} pour {structure}."),
    "join.expired": lazy_gettext("La demande de {subject} pour {structure} a expiré."),
    "join.requested": lazy_gettext("{subject} a demandé à rejoindre {structure}."),
    "keys.rotated": lazy_gettext("{actor} a renouvelé les clés de signature."),
    "legacy.failure": lazy_gettext("Échec de liaison à un ancien compte par {actor}."),
    "legacy.linked": lazy_gettext("{subject} a lié un ancien compte dans {structure}."),
    "legacy.requested": lazy_gettext("{subject} a demandé l'accès via un ancien compte dans {structure}."),
    "login.failure": lazy_gettext("Échec de connexion pour {subject}."),
    "login.success": lazy_gettext("{subject} s'est connecté(e)."),
    "logout": lazy_gettext("{subject} s'est déconnecté(e)."),
    "mail.resent": lazy_gettext("{actor} a renvoyé un e-mail."),
    "membership.account_unblocked": lazy_gettext("{actor} a débloqué le compte de {subject} ({structure})."),
    "membership.added": lazy_gettext("{actor} a rattaché {subject} à {structure} : {roles}."),
    "membership.admin_by_email": lazy_gettext("{subject} est devenu(e) administrateur de {structure} "
                                              "(adresse désignée)."),
    "membership.detached": lazy_gettext("{actor} a détaché {subject} de {structure}."),
    "membership.promoted": lazy_gettext("{actor} a nommé {subject} administrateur de {structure}."),
    "membership.demoted": lazy_gettext("{actor} a retiré à {subject} le rôle d'administrateur de {structure}."),
    "membership.suspended": lazy_gettext("{actor} a suspendu le rattachement de {subject} à {structure}."),
    "membership.reactivated": lazy_gettext("{actor} a réactivé le rattachement de {subject} à {structure}."),
    "password.changed": lazy_gettext("{subject} a changé son mot de passe."),
    "password.reset": lazy_gettext("{subject} a réinitialisé son mot de passe."),
    "password.reset_requested": lazy_gettext("Réinitialisation du mot de passe demandée pour {subject}."),
    "profile.created": lazy_gettext("{actor} a créé un profil."),
    "session.revoked": lazy_gettext("{actor} a fermé une session de {subject}."),
    "structure.created": lazy_gettext("{actor} a créé la structure {structure}."),
    "structure.entitlements_changed": lazy_gettext("{actor} a modifié les applications de {structure}."),
    "structure.switched": lazy_gettext("{subject} agit désormais pour {structure}."),
    "structure.updated": lazy_gettext("{actor} a modifié la structure {structure}."),
    "settings.viewed": lazy_gettext("{actor} a consulté les réglages."),
    "token.revoked": lazy_gettext("Un jeton du client {client} a été révoqué."),
    "totp.disabled": lazy_gettext("{subject} a désactivé la double authentification."),
    "totp.enabled": lazy_gettext("{subject} a activé la double authentification."),
    "totp.recovery_code_used": lazy_gettext("{subject} a utilisé un code de secours."),
    "totp.recovery_codes_regenerated": lazy_gettext("{subject} a généré de nouveaux codes de secours."),
}


class Describer:
    """Turns a page of audit events into sentences with names, structure names and role labels,
    loading each name once (three queries for a page, whatever its size)."""

    def __init__(self, session: Session, events: Iterable[AuditEvent]) -> None:
        events = list(events)
        people = {e.actor_id for e in events} | {e.subject_id for e in events}
        people.discard(None)
        self.people: dict[uuid.UUID, str] = {}
        self.emails: dict[uuid.UUID, str] = {}
        if people:
            for user in session.scalars(select(User).where(User.id.in_(people))):
                self.people[user.id] = user.name or user.email
                self.emails[user.id] = user.email
        structures = {e.structure_id for e in events if e.structure_id}
        self.structures: dict[uuid.UUID, str] = dict(session.execute(
            select(Structure.id, Structure.name).where(Structure.id.in_(structures))).all()) if structures else {}
        role_ids = {r for e in events for key in ("roles", "added", "removed") for r in _role_ids(e.details, key)}
        self.roles: dict[int, str] = {}
        if role_ids:
            for role in session.scalars(select(AppRole).where(AppRole.id.in_(role_ids))):
                self.roles[role.id] = human_role(role.app, role.name)

    def person(self, ident: uuid.UUID | None) -> str:
        if ident is None:
            return gettext("le système")
        return self.people.get(ident) or gettext("un compte supprimé")

    def email(self, ident: uuid.UUID | None) -> str:
        return self.emails.get(ident, "—") if ident else "—"

    def __call__(self, event: AuditEvent) -> str:
        """The event as a sentence ("Agathe Admin a rattaché Jules Demandeur à Atelier : SAM — Rédacteur.")."""
        sentence = EVENT_SENTENCES.get(event.event)
        def labels(key: str) -> str:
            ids = _role_ids(event.details, key)
            return ", ".join(self.roles.get(i, str(i)) for i in ids) if ids else gettext("aucun droit")

        values: Mapping[str, str] = _Defaulting({
            "actor": self.person(event.actor_id) if event.actor_id else gettext("le système"),
            "subject": self.person(event.subject_id) if event.subject_id else (
                self.person(event.actor_id) if event.actor_id else gettext("une personne")),
            "structure": self.structures.get(event.structure_id, "—") if event.structure_id else "—",
            "client": event.client_id or event.details.get("client_id", "—"),
            "roles": labels("roles"), "added": labels("added"), "removed": labels("removed"),
        })
        if sentence is None:
            return event.event
        return str(sentence).format_map(values)


class _Defaulting(dict):  # type: ignore[type-arg]
    def __missing__(self, key: str) -> str:
        return "—"


def _role_ids(details: Mapping[str, Any], key: str) -> list[int]:
    value = details.get(key)
    return list(value) if isinstance(value, list) and all(isinstance(v, int) for v in value) else []


_ELIDING = tuple("aeiouyhàâäéèêëîïôöùûüÿœæAEIOUYHÀÂÄÉÈÊËÎÏÔÖÙÛÜŸŒÆ")


def de(name: str) -> str:
    """French elision: "d'Atelier", "d'Hôpital", but "de Lycée Jean Moulin"."""
    return f"d'{name}" if name[:1] in _ELIDING else f"de {name}"


def init_app(app: Flask) -> None:
    app.jinja_env.filters["paris"] = paris
    app.jinja_env.filters["de"] = de
    def describe_events(events: Iterable[AuditEvent]) -> Describer:
        from idp.extensions import db

        return Describer(db.session, events)

    app.jinja_env.globals.update(describe_events=describe_events, role_label=human_role, role_key_label=human_role_key, role_title=human_role_title,
                                 app_label=human_app_label, LANGUAGE_NAMES=LANGUAGE_NAMES)

    @app.context_processor
    def switcher() -> dict[str, Any]:
        return {"here": request.full_path.rstrip("?") if request else "/"}
