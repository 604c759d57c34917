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
from zxcvbn import matching as zxcvbn_matching
from zxcvbn import zxcvbn

MIN_MIXED = 12  # CNIL: 12+ characters mixing the four classes
MIN_ANY = 15  # NIST SP 800-63B-4: 15+ characters of any kind
MAX_LENGTH = 256  # well above the 64 required; never truncated
# zxcvbn's score 4 ("very unguessable": 10^10 guesses or more) is required. Its dictionaries (30,000
# breached passwords, 30,000 English words, names, films: ~95,000 entries) plus our list (Django's
# 20,000 common passwords and French ones) make ~115,000 entries; patterns (repeats, sequences,
# keyboard rows, dates) are estimated too. Issue 15 finding 9: `Azerty123456!` is 10^8.
MIN_SCORE = 4
ZXCVBN_MAX_LENGTH = 72  # zxcvbn's own limit: longer passwords are judged on their first 72 characters
OUR_DICTIONARY = "portail_common"


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
def _common_list() -> tuple[str, ...]:
    """Our list in its file's order (most common first: zxcvbn ranks by position)."""
    text = resources.files("idp.data").joinpath("common-passwords.txt").read_text("utf-8")
    return tuple(dict.fromkeys(line.strip().casefold() for line in text.splitlines() if line.strip()))


@cache
def common_passwords() -> frozenset[str]:
    return frozenset(_common_list())


@cache
def _zxcvbn_ready() -> bool:
    """Add our list (French passwords included) to zxcvbn's dictionaries, once per process (zxcvbn
    keeps its dictionaries in its module: static data, the same for every app)."""
    zxcvbn_matching.add_frequency_lists({OUR_DICTIONARY: list(_common_list())})
    return True


# Why zxcvbn finds a password guessable, by the kind of its weakest parts (message keys).
_PATTERN_PROBLEMS = {
    "repeat": "weak_repeat",
    "sequence": "weak_sequence",
    "spatial": "weak_keyboard",
    "date": "weak_date",
    "regex": "weak_date",  # zxcvbn's only regex: recent years
}


def guessability_problems(password: str, context: list[str]) -> list[str]:
    """Why zxcvbn estimates the password guessable (empty when its score is 4).

    :param context: the user's and the portal's words, which zxcvbn tries first.
    """
    _zxcvbn_ready()
    result = zxcvbn(password[:ZXCVBN_MAX_LENGTH], user_inputs=[w for w in context if w])
    if result["score"] >= MIN_SCORE:
        return []
    problems: list[str] = []
    for match in result["sequence"]:
        pattern = match["pattern"]
        if pattern == "dictionary":
            name = match.get("dictionary_name")
            key = ("weak_common" if name in ("passwords", OUR_DICTIONARY)
                   else None if name == "user_inputs" else "weak_words")
        else:
            key = _PATTERN_PROBLEMS.get(pattern)
        if key and key not in problems:
            problems.append(key)
    return problems or ["weak_short"]


def _fold(value: str) -> str:
    """Case- and accent-insensitive form for the "contains your name" checks."""
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def password_problems(password: str, *, personal: list[str], portal_name: str) -> list[str]:
    """Return the policy rules the password breaks, as message keys (empty when acceptable).

    Keys: ``too_short``, ``too_long``, ``common``, ``personal``, ``portal``, and when zxcvbn finds
    it guessable, why: ``weak_common``, ``weak_words``, ``weak_repeat``, ``weak_sequence``,
    ``weak_keyboard``, ``weak_date`` or ``weak_short``.
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
    if not problems:  # say the plainest reason first; the estimate is for passwords that pass the rest
        problems.extend(guessability_problems(password, [*personal, portal_name]))
    return problems
