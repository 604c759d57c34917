"""Security primitives, one small place each (STYLE §5): signed links, digests, safe redirects."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from shared.bounds import MAX_REDIRECT, redirect_length


@dataclass(frozen=True)
class Origin:
    """Where a request came from, for the audit trail and rate limits."""

    ip: str | None = None
    user_agent: str | None = None


SYSTEM = Origin(ip=None, user_agent="idp-cli")


def serializer(secret_key: str | list[str], purpose: str) -> URLSafeTimedSerializer:
    """A serializer for one purpose: a link signed for 'verify' never passes as 'reset'.

    :param secret_key: the key, or the keys of a rotation (oldest first: the last one signs).
    """
    return URLSafeTimedSerializer(secret_key, salt=f"portail.{purpose}")


class LinkInvalid(Exception):
    """A signed link is tampered, expired, or for another purpose."""

    def __init__(self, expired: bool) -> None:
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


def sign_link(secret_key: str | list[str], purpose: str, payload: Any) -> str:
    return serializer(secret_key, purpose).dumps(payload)


def read_link(secret_key: str | list[str], purpose: str, token: str, max_age: int) -> Any:
    """Return the payload of a signed link; max_age is mandatory (STYLE §5)."""
    try:
        return serializer(secret_key, purpose).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise LinkInvalid(expired=True) from exc
    except BadSignature as exc:
        raise LinkInvalid(expired=False) from exc


def random_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def sha256_hex(value: str) -> str:
    """Digest of a high-entropy secret (codes, refresh tokens): fast on purpose, lookups by equality."""
    return hashlib.sha256(value.encode()).hexdigest()


def hmac_hex(key: str, value: str) -> str:
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


_CONTROL = re.compile(r"[\x00-\x1f]")


def is_safe_redirect(target: str | None, host_url: str) -> bool:
    """Only same-origin redirects after login (no open redirect through `next`), short enough for
    a `Location` header (shared.bounds.MAX_REDIRECT)."""
    if not target or "\\" in target or _CONTROL.search(target) or redirect_length(target) > MAX_REDIRECT:
        return False
    base = urlsplit(host_url)
    resolved = urlsplit(urljoin(host_url, target))
    return resolved.scheme in ("http", "https") and (resolved.scheme, resolved.netloc) == (
        base.scheme,
        base.netloc,
    )
