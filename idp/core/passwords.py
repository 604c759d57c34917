"""Password policy (CNIL / NIST SP 800-63B-4) and argon2id hashing (SPEC §4.1)."""

from __future__ import annotations

import contextlib
import os
import re
import threading
import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_MIXED = 12  # CNIL: 12+ characters mixing the four classes
MIN_ANY = 15  # NIST SP 800-63B-4: 15+ characters of any kind
MAX_LENGTH = 256  # well above the 64 required; never truncated


@dataclass(frozen=True)
class Hasher:
    """argon2id with bounded concurrency: at most `slots` hashes at once in a process."""

    hasher: PasswordHasher
    slots: threading.BoundedSemaphore

    def hash(self, password: str) -> str:
        with self.slots:
            return self.hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        with self.slots:
            if not password_hash:
                # Same work as a real check: the response time never tells whether an account exists.
                with contextlib.suppress(VerificationError):
                    self.hasher.verify(_dummy_hash(self.hasher), password)
                return False
            try:
                return self.hasher.verify(password_hash, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self.hasher.check_needs_rehash(password_hash)


_dummy_lock = threading.Lock()
_dummy_hashes: dict[tuple[int, int, int], str] = {}


def _dummy_hash(hasher: PasswordHasher) -> str:
    key = (hasher.time_cost, hasher.memory_cost, hasher.parallelism)
    with _dummy_lock:
        if key not in _dummy_hashes:
            _dummy_hashes[key] = hasher.hash(os.urandom(16).hex())
        return _dummy_hashes[key]


def make_hasher(time_cost: int, memory_cost: int, parallelism: int, max_concurrency: int = 0) -> Hasher:
    slots = max_concurrency or os.cpu_count() or 1
    return Hasher(
        PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism),
        threading.BoundedSemaphore(slots),
    )


@cache
def common_passwords() -> frozenset[str]:
    text = resources.files("idp.data").joinpath("common-passwords.txt").read_text("utf-8")
    return frozenset(line.strip().casefold() for line in text.splitlines() if line.strip())


def _fold(value: str) -> str:
    """Case- and accent-insensitive form for the "contains your name" checks."""
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def password_problems(password: str, *, personal: list[str], portal_name: str) -> list[str]:
    """Return the policy rules the password breaks, as message keys (empty when acceptable).

    Keys: ``too_short``, ``too_long``, ``common``, ``personal``, ``portal``.
    """
    problems: list[str] = []
    length = len(password)
    classes = sum(
        bool(re.search(pattern, password))
        for pattern in (r"[a-zà-ÿ]", r"[A-ZÀ-Ý]", r"\d", r"[^\w\s]|_|\s")
    )
    if length > MAX_LENGTH:
        problems.append("too_long")
    elif length < MIN_ANY and not (length >= MIN_MIXED and classes == 4):
        problems.append("too_short")
    folded = _fold(password)
    if folded in common_passwords() or folded.strip() in common_passwords():
        problems.append("common")
    for value in personal:
        # Each word of the name or the e-mail's local part, when long enough to mean something.
        for part in re.split(r"[\s@._+-]+", _fold(value)):
            if len(part) >= 3 and part in folded:
                problems.append("personal")
                break
        if "personal" in problems:
            break
    if _fold(portal_name) in folded:
        problems.append("portal")
    return problems
