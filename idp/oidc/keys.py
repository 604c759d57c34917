"""Signing keys: stored in the database (shared by every worker), parsed once per process.

Rotation publishes a new key `KEY_PUBLISH_BEFORE_USE` seconds before it signs, so relying
parties that cache the JWKS see it first; the retired key stays published until every token it
signed has expired (SPEC §4.7).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from joserfc.jwk import ECKey, KeySet, RSAKey
from sqlalchemy import Connection, bindparam, func, or_, select
from sqlalchemy.orm import Session

from idp.core.audit import audit
from idp.core.security import Origin, random_token
from idp.models import Client, SigningKey, utcnow

ALGORITHMS = ("RS256", "ES256")
Key = RSAKey | ECKey
# The hot paths read through a plain Core connection (userinfo before Flask), the rest through the
# request's session: the key ring takes either.
Bind = Session | Connection


def connection_of(bind: Bind) -> Connection:
    """The Core connection behind a session, or the connection itself."""
    return bind.connection() if isinstance(bind, Session) else bind


def _generate(alg: str) -> tuple[str, Key]:
    if alg == "RS256":
        private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    key = (RSAKey if alg == "RS256" else ECKey).import_key(pem)
    return pem, key


def key_retention(session: Session, config: Mapping[str, Any]) -> timedelta:
    """How long a retired key stays published: past the longest-lived JWT it may have signed, the
    platform's or a client's own lifetime (issue 16 point 9), plus a minute."""
    own = session.execute(select(func.max(Client.id_token_lifetime), func.max(Client.access_token_lifetime))).one()
    return timedelta(seconds=max(config["ID_TOKEN_LIFETIME"], config["ACCESS_TOKEN_LIFETIME"],
                                 *(value or 0 for value in own)) + 60)


def extend_retired_keys(session: Session, config: Mapping[str, Any]) -> None:
    """A client's token lifetime was raised: a key still signing but due to retire stays published
    long enough for the tokens it signs until then (a key already retired signs no new token)."""
    keep = key_retention(session, config)
    for key in session.scalars(select(SigningKey).where(SigningKey.retired_at > utcnow())):
        if key.retired_at is not None and (key.expires_at is None or key.expires_at < key.retired_at + keep):
            key.expires_at = key.retired_at + keep


def rotate_keys(session: Session, config: Mapping[str, Any], *, immediate: bool = False) -> list[SigningKey]:
    """Add one new key per algorithm and schedule the current ones to retire when it starts."""
    now = utcnow()
    starts = now if immediate else now + timedelta(seconds=config["KEY_PUBLISH_BEFORE_USE"])
    # A retired key must verify every token it signed: until the longest-lived JWT expires.
    keep = key_retention(session, config)
    created = []
    for alg in ALGORITHMS:
        for old in session.scalars(
            select(SigningKey).where(SigningKey.alg == alg, SigningKey.retired_at.is_(None))
        ):
            old.retired_at = starts
            old.expires_at = starts + keep
        pem, key = _generate(alg)
        kid = f"{alg.lower()}-{now:%Y%m%d}-{random_token(6)}"
        public = key.as_dict(private=False)
        public.update(kid=kid, alg=alg, use="sig")
        record = SigningKey(kid=kid, alg=alg, private_pem=pem, public_jwk=public, published_at=now, active_at=starts)
        session.add(record)
        created.append(record)
    session.flush()
    return created


def jws_signature(key: Key, alg: str, signing_input: bytes) -> bytes:
    """The JWS signature of `signing_input` with one of our private keys (RFC 7515 §5.1, RFC 7518
    §3.3-3.4: ES256 as R and S, 32 octets each), straight from `cryptography`."""
    private: Any = key.private_key
    if alg == "ES256":
        r, s = decode_dss_signature(private.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return private.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())


@dataclass(frozen=True)
class Verifier:
    """One key's public half, parsed once per process, checking a JWS signature (RFC 7515 §5.2)
    with the key's own algorithm only: an RS256 key never verifies an ES256 header, nor back."""

    alg: str
    public: Any

    def verify(self, signing_input: bytes, signature: bytes) -> bool:
        try:
            if self.alg == "ES256":
                if len(signature) != 64:  # RFC 7518 §3.4: R and S, 32 octets each
                    return False
                der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
                self.public.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
            else:
                self.public.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class KeyRecord:
    """A signing key's columns, copied out of the database: the key ring outlives every request, so
    it must never keep ORM instances (a request's rollback expires them, and once their session is
    gone every attribute read raises DetachedInstanceError: issue 15, finding 13)."""

    kid: str
    alg: str
    private_pem: str
    public_jwk: dict[str, Any]
    published_at: datetime
    active_at: datetime
    retired_at: datetime | None


_KEYS = SigningKey.__table__
SELECT_KEYS = (
    select(_KEYS.c.kid, _KEYS.c.alg, _KEYS.c.private_pem, _KEYS.c.public_jwk, _KEYS.c.published_at,
           _KEYS.c.active_at, _KEYS.c.retired_at)
    .where(or_(_KEYS.c.expires_at.is_(None), _KEYS.c.expires_at > bindparam("now")))
    .order_by(_KEYS.c.active_at)
)
# A kid we don't know makes the ring re-read the table at most this often (anyone can send one).
UNKNOWN_KID_RELOAD_SECONDS = 5.0
MAX_KID_LENGTH = 64  # the column's size: a longer kid cannot be ours


def rotate_signing_keys(session: Session, config: Mapping[str, Any], origin: Origin, *,
                        actor: uuid.UUID) -> list[SigningKey]:
    """An operator's rotation from the console: a new key per algorithm, signing after
    KEY_PUBLISH_BEFORE_USE (SPEC §4.7), audited."""
    created = rotate_keys(session, config)
    audit(session, "keys.rotated", origin, actor=actor, kids=[k.kid for k in created])
    return created


def plausible_kid(kid: Any) -> bool:
    """A kid that could be one of ours: a short printable string (no NUL, no control character)."""
    return isinstance(kid, str) and 0 < len(kid) <= MAX_KID_LENGTH and kid.isprintable()


@dataclass
class KeyRing:
    """The keys of one process: re-read from the table at most every `ttl` seconds."""

    ttl: float
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _loaded_at: float = -1e9
    _records: list[KeyRecord] = field(default_factory=list)
    _parsed: dict[str, Key] = field(default_factory=dict)
    _verifiers: dict[str, Verifier] = field(default_factory=dict)  # the keys in the table now, by kid
    _jwks: dict[str, Any] = field(default_factory=dict)
    _jwks_bytes: bytes = b""
    _jwks_etag: str = ""
    _keyset: KeySet | None = None

    def refresh(self, session: Bind, force: bool = False) -> None:
        if not force and time.monotonic() - self._loaded_at < self.ttl:
            return
        with self._lock:
            now = utcnow()
            # Plain rows (Core), copied: nothing here belongs to the caller's session.
            records = [KeyRecord(**row._mapping) for row in connection_of(session).execute(SELECT_KEYS, {"now": now})]
            for record in records:
                if record.kid not in self._parsed:  # parsing a PEM costs ~60 ms: once per process
                    cls = RSAKey if record.alg == "RS256" else ECKey
                    self._parsed[record.kid] = cls.import_key(record.private_pem)
            # Only keys still in the table (not expired) verify anything.
            self._verifiers = {r.kid: self._verifiers.get(r.kid) or Verifier(r.alg, self._parsed[r.kid].public_key)
                               for r in records}
            self._records = records
            jwks = {"keys": [r.public_jwk for r in records if r.published_at <= now]}
            if jwks != self._jwks or self._keyset is None:  # built once per key-set change
                self._jwks = jwks
                self._jwks_bytes = json.dumps(jwks, separators=(",", ":")).encode()
                self._jwks_etag = etag_of(self._jwks_bytes)
                self._keyset = KeySet.import_key_set(jwks)
            self._loaded_at = time.monotonic()

    def signing_key(self, session: Bind, alg: str) -> tuple[str, Key]:
        """The newest key of `alg` that is active now: (kid, key)."""
        self.refresh(session)
        now = utcnow()
        for record in reversed(self._records):
            if record.alg == alg and record.active_at <= now and (record.retired_at is None or record.retired_at > now):
                return record.kid, self._parsed[record.kid]
        # Nothing active (first start, or the cache predates a rotation): look again, then fail.
        if time.monotonic() - self._loaded_at > 1:
            self._loaded_at = -1e9
            return self.signing_key(session, alg)
        raise LookupError(f"no active {alg} signing key: run `idp keys rotate --now`")

    def verifier(self, session: Bind, kid: Any) -> Verifier | None:
        """The public key named `kid`, if it is ours and still in the table. An unknown kid re-reads
        the table (a key rotated by another worker) at most once every UNKNOWN_KID_RELOAD_SECONDS,
        whatever the traffic."""
        if not plausible_kid(kid):
            return None
        self.refresh(session)
        if kid not in self._verifiers and time.monotonic() - self._loaded_at >= UNKNOWN_KID_RELOAD_SECONDS:
            self.refresh(session, force=True)
        return self._verifiers.get(kid)

    def jwks(self, session: Session) -> dict[str, Any]:
        self.refresh(session)
        return self._jwks

    def jwks_bytes(self, session: Session) -> bytes:
        """The JWKS serialised, once per refresh."""
        self.refresh(session)
        return self._jwks_bytes

    def jwks_etag(self, session: Session) -> str:
        self.refresh(session)
        return self._jwks_etag

    def cached_jwks(self) -> tuple[bytes, str] | None:
        """The serialised JWKS and its ETag while fresh, without touching the database; else None."""
        if self._jwks_bytes and time.monotonic() - self._loaded_at < self.ttl:
            return self._jwks_bytes, self._jwks_etag
        return None

    def keyset(self, session: Session) -> KeySet:
        """The published public keys, parsed (for verifying our own ID tokens)."""
        self.refresh(session)
        assert self._keyset is not None
        return self._keyset


def etag_of(body: bytes) -> str:
    """A strong ETag for a published document: the same bytes give the same tag in every worker."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def ensure_keys(session: Session, config: Mapping[str, Any]) -> None:
    """First start: create keys that sign at once when there are none."""
    if session.scalar(select(SigningKey.kid).limit(1)) is None:
        rotate_keys(session, config, immediate=True)
