"""Demo data of `make run` (issue 14 §8): Formation Plus with two published offers (one with a
pending change), its établissement de Grenoble with one, and the Région's moderator with a queue.

Seeded by the demo server itself on its first start (`serve --demo`), once the schema is current
and only into an empty database; the SIRETs are those of `idp demo seed`.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

from flask import Flask
from sqlalchemy import func, inspect, select

from apps.catalogue import offers, organisations, search
from apps.catalogue.models import Organisation, db

log = logging.getLogger(__name__)
SIEGE, ETABLISSEMENT = "12345678200010", "12345678200028"
MODERATOR = "Claire Bernard (Carif-Oref)"


def seed_when_empty(app: Flask) -> None:
    """Seed the demo into an empty, migrated database (anything else: left alone)."""
    try:
        with app.app_context():
            if not inspect(db.engine).has_table("public_actions"):
                return  # not migrated yet: `python -m apps.catalogue db upgrade` comes first
            if db.session.scalar(select(func.count()).select_from(Organisation)):
                return
            seed(date.today())
            db.session.commit()
    except Exception:  # noqa: BLE001 - a demo convenience must never keep the server from starting
        log.exception("catalogue demo seed failed")


def _session(start: date, weeks: int, contact: dict[str, object], address: str, postal_code: str,
             city: str) -> dict[str, object]:
    return {"key": offers.new_key(), "start": start.isoformat(), "end": (start + timedelta(weeks=weeks)).isoformat(),
            "registration_address": address, "registration_postal_code": postal_code, "registration_city": city,
            "recruitment": "1", "contact": contact}


def _action(address: str, postal_code: str, city: str, sessions: list[dict[str, object]],
            mode: str = "fixes") -> dict[str, object]:
    return {"key": offers.new_key(), "place_name": "", "address": address, "postal_code": postal_code, "city": city,
            "publics": ["80006", "82045"], "public_info": "", "entry_mode": mode, "rhythm": "Temps plein, 35 h par semaine",
            "teaching_mode": "0", "hours": 630, "entry_level_required": False,
            "accessibility": "Locaux accessibles aux personnes à mobilité réduite", "transport": "Tram T1 arrêt Part-Dieu",
            "accommodation": "", "catering": "Restaurant d'entreprise", "funders": "Région Auvergne-Rhône-Alpes",
            "sessions": sessions}


def _publish(offer: offers.Offer) -> None:
    offers.publish(db.session, offer, actor=MODERATOR, expected_version=offer.version)
    search.reindex_offer(db.session, offer, date.today())


def seed(today: date) -> None:
    siege = organisations.ensure(db.session, SIEGE, "Formation Plus")
    siege.nda, siege.address, siege.postal_code, siege.city = "84691234569", "12 rue de la Part-Dieu", "69003", "Lyon"
    siege.phone, siege.email, siege.website = "04 72 00 00 01", "contact@formation.test", "https://formation.test"
    siege.potential = "Formations aux métiers du bâtiment et du secrétariat, remise à niveau, bureautique."
    grenoble = organisations.ensure(db.session, ETABLISSEMENT, "Formation Plus — établissement de Grenoble")
    grenoble.parent_siret, grenoble.address, grenoble.postal_code, grenoble.city = SIEGE, "3 cours Berriat", "38000", "Grenoble"
    grenoble.email = "grenoble@formation.test"
    db.session.flush()
    marie = organisations.add_contact(db.session, siege, last_name="Durand", first_name="Marie", civility="Mme",
                                      function="Responsable pédagogique", phone="04 72 00 00 02",
                                      email="marie.durand@formation.test", actor=MODERATOR)
    paul = organisations.add_contact(db.session, grenoble, last_name="Roux", first_name="Paul", civility="M.",
                                     function="Conseiller formation", phone="04 76 00 00 03",
                                     email="paul.roux@formation.test", actor=MODERATOR)
    contact, contact_grenoble = offers.contact_snapshot(marie), offers.contact_snapshot(paul)

    macon = offers.create_offer(db.session, siege, offers.formation_part(offers.apply_certification(
        offers.FormationData(title="", objectives="Réaliser des ouvrages en maçonnerie : murs, dalles, enduits.",
                             content="Lecture de plans. Implantation. Maçonnerie de blocs et de briques. Coffrage et béton armé.",
                             expected_results="Titre professionnel de niveau 3"),
        "titre-professionnel-macon")), actor="Marie Durand", email="marie.durand@formation.test",
        actions=[_action("12 rue de la Part-Dieu", "69003", "Lyon",
                         [_session(today + timedelta(days=20), 26, contact, "12 rue de la Part-Dieu", "69003", "Lyon"),
                          _session(today + timedelta(days=120), 26, contact, "12 rue de la Part-Dieu", "69003", "Lyon")])])
    _publish(macon)

    secretariat = offers.create_offer(db.session, siege, offers.formation_part(offers.FormationData(
        title="Secrétariat et bureautique", objectives="Assurer les travaux courants de secrétariat et d'accueil.",
        content="Accueil physique et téléphonique. Traitement de texte et tableur. Classement et archivage.",
        formacodes=["35054", "35066"], romes=["M1607"], nsf=["324"])), actor="Marie Durand",
        email="marie.durand@formation.test",
        actions=[_action("12 rue de la Part-Dieu", "69003", "Lyon",
                         [_session(date(today.year, 1, 1), 52, contact, "12 rue de la Part-Dieu", "69003", "Lyon")],
                         mode="permanentes")])
    _publish(secretariat)
    # A pending change: the published version stays public until the moderator decides.
    doc = offers.with_formation(secretariat.document, {**secretariat.document["formation"],
                                                       "title": "Secrétariat, accueil et bureautique"})
    offers.save_document(db.session, secretariat, doc, actor="Marie Durand", email="marie.durand@formation.test",
                         expected_version=secretariat.version)

    electricite = offers.create_offer(db.session, grenoble, offers.formation_part(offers.FormationData(
        title="Électricité du bâtiment", objectives="Installer et mettre en service les équipements électriques des bâtiments.",
        content="Habilitation électrique. Lecture de schémas. Câblage, tableaux, mise en service.",
        romes=["F1602"], nsf=["255"])), actor="Paul Roux", email="paul.roux@formation.test",
        actions=[_action("3 cours Berriat", "38000", "Grenoble",
                         [_session(today + timedelta(days=45), 20, contact_grenoble, "3 cours Berriat", "38000",
                                   "Grenoble")])])
    _publish(electricite)

    # The moderator's queue: a new offer awaiting its first validation.
    offers.create_offer(db.session, siege, offers.formation_part(offers.FormationData(
        title="Remise à niveau en français et mathématiques",
        objectives="Consolider les savoirs de base avant une formation qualifiante.",
        content="Expression écrite et orale. Calcul, proportionnalité, pourcentages.", nsf=["412"])),
        actor="Marie Durand", email="marie.durand@formation.test",
        actions=[_action("12 rue de la Part-Dieu", "69003", "Lyon",
                         [_session(today + timedelta(days=30), 8, contact, "12 rue de la Part-Dieu", "69003", "Lyon")])])
    organisations.request_change(db.session, siege, "identification",
                                 "Notre numéro de déclaration d'activité a changé : 84691234570.",
                                 actor="Marie Durand", email="marie.durand@formation.test")
    db.session.flush()
