"""A bot challenge with no outside service (SPEC §8, seed 000 "code de vérification"): a small
sum whose answer travels only as an HMAC inside a signed, time-stamped token, plus a honeypot
field and a minimum fill time. `keys` are the app's secret keys in itsdangerous' rotation order (the
retired ones first, the signing key last: `shared.signing_keys`), so a question asked before a key
rotation can still be answered after it."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from flask_babel import gettext as _
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

SALT = "repernet.challenge"


def _mac(secret: str, nonce: str, answer: str) -> str:
    return hmac.new(secret.encode(), f"{nonce}:{answer}".encode(), hashlib.sha256).hexdigest()


def new_challenge(keys: list[str]) -> tuple[str, str]:
    """A question ("Combien font 7 + 4 ?") and the token to send back with the answer."""
    a, b = secrets.randbelow(9) + 1, secrets.randbelow(9) + 1
    nonce = secrets.token_urlsafe(8)
    token = URLSafeTimedSerializer(keys, salt=SALT).dumps(
        {"q": f"{a} + {b}", "n": nonce, "m": _mac(keys[-1], nonce, str(a + b)), "t": time.time()})
    return _("Combien font %(a)d + %(b)d ?", a=a, b=b), token


def check_challenge(keys: list[str], token: str, answer: str, honeypot: str, *, min_seconds: float,
                    max_age: int = 3600) -> str | None:
    """None when the challenge is passed, else a message in the page's language."""
    if honeypot:
        return _("La vérification anti-robot a échoué.")
    try:
        data = URLSafeTimedSerializer(keys, salt=SALT).loads(token or "", max_age=max_age)
    except SignatureExpired:
        return _("Le code de vérification a expiré : répondez à la nouvelle question.")
    except BadSignature:
        return _("Le code de vérification est invalide : répondez à la nouvelle question.")
    if time.time() - float(data.get("t", 0)) < min_seconds:
        return _("Formulaire envoyé trop vite : relisez-le puis validez à nouveau.")
    given = (answer or "").strip()
    if not any(hmac.compare_digest(data.get("m", ""), _mac(key, data.get("n", ""), given)) for key in keys):
        return _("Le code de vérification est incorrect : répondez à la nouvelle question.")
    return None
