"""TOTP second factor (RFC 6238, pyotp) and single-use recovery codes (SPEC §4.1, STYLE §5).

pyotp keeps no state: the last accepted 30-second step is stored on the user and moved forward
with a conditional UPDATE, so a code (or an older one) is never accepted twice, even by two
concurrent requests.
"""

from __future__ import annotations

import re
import secrets
import time

import pyotp
import segno
from sqlalchemy import delete, or_, update
from sqlalchemy.orm import Session

from idp.core.audit import audit
from idp.core.errors import Conflict, InvalidInput
from idp.core.passwords import Hasher
from idp.core.security import Origin, constant_time_equal, sha256_hex
from idp.models import RecoveryCode, User, utcnow

INTERVAL = 30
VALID_WINDOW = 1  # one step either side: clocks drift, people type slowly
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i look-alikes


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    return pyotp.TOTP(secret, interval=INTERVAL).provisioning_uri(name=account, issuer_name=issuer)


def qr_data_uri(uri: str) -> str:
    """The QR code as a data: PNG (the CSP allows data: images, not inline styles)."""
    return segno.make(uri, error="m").png_data_uri(scale=5, border=2)


def current_code(secret: str, at: float | None = None) -> str:
    """The code an authenticator shows now (tests and the CLI use it)."""
    return pyotp.TOTP(secret, interval=INTERVAL).at(at if at is not None else time.time())


def _normalize(code: str) -> str:
    return re.sub(r"[\s-]+", "", code).lower()


def matching_step(secret: str, code: str, after: int | None, now: float | None = None) -> int | None:
    """The time step whose code equals `code`, within the window and later than `after`."""
    code = _normalize(code)
    if not re.fullmatch(r"\d{6}", code):
        return None
    totp = pyotp.TOTP(secret, interval=INTERVAL)
    current = int((now if now is not None else time.time()) // INTERVAL)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if (after is None or step > after) and constant_time_equal(totp.at(step * INTERVAL), code):
            return step
    return None


def begin_enrolment(session: Session, user: User) -> str:
    """Give the account a new, not yet enabled secret (kept server-side until confirmed).

    :raises Conflict: when TOTP is already enabled.
    """
    if user.totp_enabled:
        raise Conflict("totp_enabled")
    if not user.totp_secret:
        user.totp_secret = new_secret()
        session.flush()
    return user.totp_secret


def confirm_enrolment(session: Session, origin: Origin, user: User, code: str) -> list[str]:
    """Enable TOTP once the person proves their app shows the right code; returns the recovery codes.

    :raises Conflict: when TOTP is already enabled or no enrolment was started.
    :raises InvalidInput: ``totp_invalid`` when the code is wrong.
    """
    if user.totp_enabled or not user.totp_secret:
        raise Conflict("totp_state")
    step = matching_step(user.totp_secret, code, None)
    if step is None:
        raise InvalidInput("totp_invalid")
    user.totp_last_step = step
    user.totp_enabled_at = utcnow()
    codes = _new_recovery_codes(session, user)
    audit(session, "totp.enabled", origin, actor=user.id, subject=user.id)
    session.flush()
    return codes


def _new_recovery_codes(session: Session, user: User) -> list[str]:
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    session.expire(user, ["recovery_codes"])
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
        session.add(RecoveryCode(user_id=user.id, code_digest=sha256_hex(raw)))
    return codes


def regenerate_recovery_codes(session: Session, origin: Origin, user: User) -> list[str]:
    """Replace the ten recovery codes; the old ones stop working.

    :raises Conflict: when TOTP is not enabled.
    """
    if not user.totp_enabled:
        raise Conflict("totp_disabled")
    codes = _new_recovery_codes(session, user)
    audit(session, "totp.recovery_codes_regenerated", origin, actor=user.id, subject=user.id)
    session.flush()
    return codes


def remaining_recovery_codes(user: User) -> int:
    return sum(1 for code in user.recovery_codes if code.used_at is None)


def verify_second_factor(session: Session, origin: Origin, user: User, code: str) -> str:
    """Check a TOTP code (never one already used) or a recovery code (once each).

    :returns: ``"otp"`` or ``"recovery"``.
    :raises InvalidInput: ``totp_invalid``.
    """
    if not user.totp_enabled or not user.totp_secret:
        raise InvalidInput("totp_invalid")
    step = matching_step(user.totp_secret, code, user.totp_last_step)
    if step is not None:
        moved = session.execute(
            update(User)
            .where(User.id == user.id, or_(User.totp_last_step.is_(None), User.totp_last_step < step))
            .values(totp_last_step=step)
        ).rowcount
        if moved == 1:
            user.totp_last_step = step
            return "otp"
        raise InvalidInput("totp_invalid")  # a concurrent request used it (or a later one) first
    normalized = _normalize(code)
    if re.fullmatch(r"[a-z0-9]{10}", normalized):
        used = session.execute(
            update(RecoveryCode)
            .where(RecoveryCode.user_id == user.id, RecoveryCode.code_digest == sha256_hex(normalized),
                   RecoveryCode.used_at.is_(None))
            .values(used_at=utcnow())
        ).rowcount
        if used == 1:
            session.expire(user, ["recovery_codes"])
            audit(session, "totp.recovery_code_used", origin, actor=user.id, subject=user.id)
            return "recovery"
    raise InvalidInput("totp_invalid")


def disable(session: Session, hasher: Hasher, origin: Origin, user: User, password: str) -> User:
    """Turn TOTP off after re-entering the password.

    :raises InvalidInput: ``bad_password``.
    """
    if not hasher.verify(user.password_hash, password):
        raise InvalidInput("bad_password")
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    session.expire(user, ["recovery_codes"])
    audit(session, "totp.disabled", origin, actor=user.id, subject=user.id)
    session.flush()
    return user
