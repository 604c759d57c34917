"""SAM's demo data (`make run`): the Région's buyer, Claire Bernard, with one published consultation
of three lots and a DCE, one closed consultation and one draft. Made through the domain functions,
once (an existing demo reference means it is already there)."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime, timedelta
from pathlib import Path

from flask import Flask
from sqlalchemy import inspect, select, update
from sqlalchemy.orm import Session

from apps.sam import consultations as domain
from apps.sam import signing
from apps.sam.models import Consultation, db
from shared import utcnow

# The demo Région as `idp demo seed` creates it (SAM knows structures by their SIRET, from the claims).
REGION_SIRET = "20005372600010"
REGION_NAME = "Région Auvergne-Rhône-Alpes"
# The owner is named by the SIRET: the IdP's own structure id (in the claims beside the SIRET) is
# made by the IdP's database and unknown here, and the guard accepts either (shared/guard.py).
BUYER = domain.Actor(sub="demo", name="Claire Bernard", email="claire.bernard@region.test",
                     structure_id=REGION_SIRET, structure_siret=REGION_SIRET, structure_name=REGION_NAME)
PUBLISHED_REFERENCE = "2027-PRF-001"


def _pdf(title: str) -> bytes:
    """A tiny valid one-page PDF showing `title`."""
    text = title.encode("latin-1", "replace").replace(b"(", b"[").replace(b")", b"]")
    stream = b"BT /F1 14 Tf 60 760 Td (" + text + b") Tj ET"
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer << /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def _dce(reference: str) -> bytes:
    """A DCE as buyers publish it: a ZIP of the consultation rules and the specifications."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("RC - Reglement de consultation.pdf", _pdf(f"{reference} - Reglement de la consultation"))
        archive.writestr("CCTP - Cahier des clauses techniques.pdf", _pdf(f"{reference} - CCTP"))
        archive.writestr("BPU - Bordereau des prix.pdf", _pdf(f"{reference} - Bordereau des prix unitaires"))
    return buffer.getvalue()


def _consultation(session: Session, now: datetime, reference: str, title: str, device: str, description: str,
                  lots: list[tuple[str, str, str, int]], days: int) -> Consultation:
    data = domain.ConsultationData(reference=reference, title=title, device=device, description=description,
                                   question_deadline=now + timedelta(days=days - 10),
                                   response_deadline=now + timedelta(days=days))
    consultation = domain.create_consultation(session, data, actor=BUYER, now=now)
    for number, (lot_title, unit, place, volume) in enumerate(lots, start=1):
        domain.add_lot(session, consultation, domain.LotData(number, lot_title, unit, place, volume), actor=BUYER, now=now)
    return consultation


def seed(session: Session, files_dir: Path, now: datetime | None = None) -> bool:
    """Create the demo consultations unless they exist; True when created."""
    if session.scalar(select(Consultation.id).where(Consultation.reference == PUBLISHED_REFERENCE)) is not None:
        # A demo seeded before its owner was named: give the Région's consultations to the Région.
        session.execute(update(Consultation).where(Consultation.structure_siret == REGION_SIRET,
                                                   Consultation.structure_id == "").values(structure_id=REGION_SIRET))
        return False
    now = (now or utcnow()).replace(second=0, microsecond=0)

    current = _consultation(
        session, now - timedelta(days=2), PUBLISHED_REFERENCE,
        "Formations aux métiers du bâtiment et de l'énergie", "Programme régional de formation (PRF)",
        "Actions de formation qualifiantes pour les demandeurs d'emploi, de l'électricité au génie climatique.\n"
        "Les organismes répondent par lot ; un groupement est possible.",
        [("Électricien d'équipement du bâtiment", "HSTA", "Lyon", 24000),
         ("Installateur thermique et sanitaire", "HSTA", "Grenoble", 18000),
         ("Savoirs de base et remise à niveau", "HGRO", "Valence", 1200)], days=32)
    domain.store_dce(session, files_dir, current, f"DCE {PUBLISHED_REFERENCE}.zip", io.BytesIO(_dce(PUBLISHED_REFERENCE)),
                     max_bytes=10 * 1024 * 1024, actor=BUYER, now=now - timedelta(days=2))
    domain.publish(session, current, actor=BUYER, now=now - timedelta(days=2))
    question = domain.ask(session, current, "Les sessions peuvent-elles démarrer en entrées et sorties permanentes ?",
                          asker=domain.Actor(sub="demo-organisme", name="", email=""), now=now - timedelta(days=1))
    domain.answer(session, current, question, "Oui pour le lot 3 ; les lots 1 et 2 démarrent à dates fixes.",
                  actor=BUYER, now=now - timedelta(hours=20))

    closed = _consultation(
        session, now - timedelta(days=60), "2026-QUAL-014", "Actions qualifiantes — aide et soins à la personne",
        "Programme régional de formation (PRF)",
        "Parcours certifiants vers les titres d'assistant de vie aux familles et d'aide-soignant.",
        [("Assistant de vie aux familles", "FORP", "Clermont-Ferrand", 80),
         ("Préparation au concours d'aide-soignant", "HSTA", "Saint-Étienne", 9000)], days=40)
    domain.store_dce(session, files_dir, closed, "DCE 2026-QUAL-014.zip", io.BytesIO(_dce("2026-QUAL-014")),
                     max_bytes=10 * 1024 * 1024, actor=BUYER, now=now - timedelta(days=60))
    domain.publish(session, closed, actor=BUYER, now=now - timedelta(days=60))
    closed.question_deadline, closed.response_deadline = now - timedelta(days=25), now - timedelta(days=20)

    _consultation(
        session, now, "2027-SAN-003", "Formations sanitaires et sociales — entrées 2027", "Formations sanitaires et sociales",
        "Brouillon en préparation.", [("Accompagnant éducatif et social", "HSTA", "Lyon", 15000)], days=45)
    signing.demo_authority(session, now)  # the demo CA that issues the signataires' test certificates
    session.flush()
    return True


def seed_app(app: Flask) -> bool:
    """Seed the demo in `app`'s database once it is migrated (nothing before `db upgrade`)."""
    with app.app_context():
        if not inspect(db.engine).has_table("consultations"):
            return False
        created = seed(db.session, Path(app.config["FILES_DIR"]).resolve())
        db.session.commit()
        return created
