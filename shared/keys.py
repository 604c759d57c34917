"""Secret-key rotation for the four services: the new key signs, the old ones still verify.

Flask reads `SECRET_KEY_FALLBACKS` for its session cookie only; Flask-WTF's CSRF tokens and our
itsdangerous links need the same list, given as itsdangerous wants it (oldest first, the signing
key last). Set `<PREFIX>_SECRET_KEY_FALLBACKS` to the retired keys (a JSON list, or separated by
spaces or commas) for as long as the longest-lived signed value (compose/README.md).
"""

from __future__ import annotations

from typing import Any

from flask import Flask


def fallback_keys(value: Any) -> list[str]:
    """The retired keys as a list, whether the environment gave JSON, a list or a plain string."""
    if not value:
        return []
    if isinstance(value, str):
        return [key for key in value.replace(",", " ").split() if key]
    return [str(key) for key in value if key]


def signing_keys(app: Flask) -> list[str]:
    """Every key that verifies, the one that signs last (itsdangerous' rotation order)."""
    return [*app.config["SECRET_KEY_FALLBACKS"], app.config["SECRET_KEY"]]


def init_rotation(app: Flask) -> None:
    """Normalise the fallbacks (Flask would iterate a plain string's characters) and hand the list
    to Flask-WTF, which otherwise knows only SECRET_KEY: a form opened before a rotation still posts."""
    app.config["SECRET_KEY_FALLBACKS"] = fallback_keys(app.config.get("SECRET_KEY_FALLBACKS"))
    if not app.config.get("WTF_CSRF_SECRET_KEY") or isinstance(app.config["WTF_CSRF_SECRET_KEY"], list):
        app.config["WTF_CSRF_SECRET_KEY"] = signing_keys(app)
