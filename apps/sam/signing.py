"""PAdES signatures of the generated documents with pyHanko, and their verification (issue 13 §3).

- In the demo and the tests, a small certification authority (made at seed time or first use,
  kept in `signing_keys`) issues one certificate per signataire.
- In production, a signataire uploads their own PKCS#12 for the operation; it is read in memory
  and never stored.
- Verification uses pyHanko's validation with explicit trust roots (the demo CA and the roots
  configured in `SIGNING_TRUST_ROOTS`), no network fetching: it reports the signer, the signing
  time, whether the document changed after signing, and whether the certificate chains to a root.

Nothing here knows Flask.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID
from sqlalchemy import select
from sqlalchemy.orm import Session

from apps.sam.models import SigningKey
from shared import N_

with warnings.catch_warnings():
    # pyHanko imports cryptography's DSA names, deprecated by cryptography (the suite runs warnings as errors).
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign import fields, signers
    from pyhanko.sign.general import SigningError
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext
    from pyhanko_certvalidator.registry import SimpleCertificateStore

log = logging.getLogger(__name__)
CA, SIGNER = "ca", "signer"
CA_NAME = "Autorité de certification de démonstration SAM"


class SigningFailed(Exception):
    """The signature could not be made (bad PKCS#12, wrong passphrase, unreadable PDF); French message
    (marked N_, shown translated)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Verification:
    """What a verification shows (issue 13 §3)."""

    signed: bool
    signer: str = ""
    signing_time: datetime | None = None
    intact: bool = False  # the signed bytes are unchanged
    covers_whole_file: bool = False  # nothing was added after the signature
    trusted: bool = False  # the certificate chains to a trusted root
    error: str = ""

    @property
    def modified(self) -> bool:
        return not (self.intact and self.covers_whole_file)

    @property
    def valid(self) -> bool:
        return self.signed and not self.modified and self.trusted


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SAM (démonstration)"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64] or "Signataire")])


def _usage(*, sign_certs: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=not sign_certs, content_commitment=not sign_certs, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=sign_certs, crl_sign=sign_certs,
                         encipher_only=False, decipher_only=False)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def demo_authority(session: Session, now: datetime) -> SigningKey:
    """The demo CA, made on first use (ten years, ECDSA P-256)."""
    found = session.scalar(select(SigningKey).where(SigningKey.kind == CA, SigningKey.owner_sub == ""))
    if found is not None:
        return found
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(CA_NAME)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_usage(sign_certs=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    row = SigningKey(kind=CA, owner_sub="", owner_name=CA_NAME, created_at=now, key_pem=_pem_key(key),
                     certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode())
    session.add(row)
    session.flush()
    return row


def demo_certificate(session: Session, sub: str, name: str, now: datetime) -> SigningKey:
    """The signataire's demo certificate (two years), issued by the demo CA on first use."""
    found = session.scalar(select(SigningKey).where(SigningKey.kind == SIGNER, SigningKey.owner_sub == sub))
    if found is not None:
        return found
    authority = demo_authority(session, now)
    ca_cert = x509.load_pem_x509_certificate(authority.certificate_pem.encode())
    ca_key = serialization.load_pem_private_key(authority.key_pem.encode(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=730))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(sign_certs=False), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    row = SigningKey(kind=SIGNER, owner_sub=sub, owner_name=name[:200], created_at=now, key_pem=_pem_key(key),
                     certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode())
    session.add(row)
    session.flush()
    return row


def _asn1_cert(pem: str) -> asn1_x509.Certificate:
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    return asn1_x509.Certificate.load(der)


def demo_signer(session: Session, sub: str, name: str, now: datetime) -> signers.Signer:
    """A pyHanko signer with the signataire's demo certificate (and the CA in its chain)."""
    row = demo_certificate(session, sub, name, now)
    authority = demo_authority(session, now)
    key = serialization.load_pem_private_key(row.key_pem.encode(), password=None)
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return signers.SimpleSigner(signing_cert=_asn1_cert(row.certificate_pem),
                                signing_key=asn1_keys.PrivateKeyInfo.load(der),
                                cert_registry=SimpleCertificateStore.from_certs([_asn1_cert(authority.certificate_pem)]))


def pkcs12_signer(data: bytes, passphrase: str) -> signers.Signer:
    """A pyHanko signer from an uploaded PKCS#12 (read in memory, never stored).

    :raises SigningFailed: unreadable file or wrong passphrase.
    """
    try:
        signer = signers.SimpleSigner.load_pkcs12_data(data, other_certs=None,
                                                       passphrase=passphrase.encode() if passphrase else None)
    except (ValueError, TypeError, OSError, SigningError) as exc:
        log.info("PKCS#12 refused: %s", exc)
        signer = None
    if signer is None:
        raise SigningFailed(N_("Le certificat (PKCS#12) n'a pas pu être lu : vérifiez le fichier et sa phrase secrète."))
    return signer


def sign_pdf(pdf: bytes, signer: signers.Signer, *, name: str, reason: str, location: str = "") -> bytes:
    """The PDF with a PAdES signature (an incremental update over the original bytes).

    :raises SigningFailed: the PDF or the certificate could not be used.
    """
    meta = signers.PdfSignatureMetadata(field_name="Signature", subfilter=fields.SigSeedSubFilter.PADES,
                                        md_algorithm="sha256", name=name[:200], reason=reason, location=location)
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        return signers.sign_pdf(writer, meta, signer=signer).getvalue()
    except (SigningError, ValueError, TypeError, KeyError) as exc:
        log.warning("PAdES signing failed: %s", exc)
        raise SigningFailed(N_("La signature n'a pas pu être apposée sur ce document.")) from exc


def trust_roots(session: Session, extra_pem: str = "") -> list[asn1_x509.Certificate]:
    """The roots a signature must chain to: the demo CA (when it exists) and `extra_pem`'s certificates."""
    roots = []
    authority = session.scalar(select(SigningKey).where(SigningKey.kind == CA, SigningKey.owner_sub == ""))
    if authority is not None:
        roots.append(_asn1_cert(authority.certificate_pem))
    if extra_pem.strip():
        for cert in x509.load_pem_x509_certificates(extra_pem.encode()):
            roots.append(asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER)))
    return roots


def verify_pdf(pdf: bytes, roots: list[asn1_x509.Certificate]) -> Verification:
    """Verify the last signature of `pdf` against `roots` only (no fetching, no system store)."""
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        embedded = reader.embedded_signatures
    except Exception as exc:  # noqa: BLE001 - any unreadable PDF is "not a signed PDF" to the user
        log.info("unreadable PDF: %s", exc)
        return Verification(signed=False, error=N_("Ce fichier n'est pas un PDF lisible."))
    if not embedded:
        return Verification(signed=False, error=N_("Ce document ne porte aucune signature électronique."))
    context = ValidationContext(trust_roots=roots, allow_fetching=False, revocation_mode="soft-fail")
    try:
        status = validate_pdf_signature(embedded[-1], context)
    except Exception as exc:  # noqa: BLE001 - a mangled signature is an invalid one, never a 500
        log.info("signature validation failed: %s", exc)
        return Verification(signed=True, error=N_("La signature est illisible ou corrompue."))
    signer = status.signing_cert.subject.native.get("common_name", "") if status.signing_cert else ""
    coverage = getattr(status, "coverage", None)
    return Verification(signed=True, signer=str(signer), signing_time=status.signer_reported_dt,
                        intact=bool(status.intact and status.valid),
                        covers_whole_file=coverage is not None and coverage.name == "ENTIRE_FILE",
                        trusted=bool(status.trusted))
