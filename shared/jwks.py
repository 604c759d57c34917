"""The issuer's published keys as an app keeps them: fetched once, fetched again only for a token
whose `kid` is not among them, and then at most once every `refetch_interval` seconds.

Tokens reach an app from anyone (a back-channel logout token, a Bearer token on its API): a forged
one must not make the app fetch the JWKS again, or a flood of them becomes a flood at the IdP. A key
the IdP has just published (rotation, OIDC Core §10.1.1) still gets fetched: it comes with a new `kid`.
The IdP's own key ring follows the same rule (idp.oidc.keys, UNKNOWN_KID_RELOAD_SECONDS).
"""

from __future__ import annotations

import base64
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from joserfc.jwk import KeySet

log = logging.getLogger(__name__)


class KeysUnavailable(Exception):  # noqa: N818 - says what happened, as requests' errors do
    """The keys could not be fetched and none are known yet."""


def token_kid(value: str) -> str | None:
    """The `kid` of a compact JWS's protected header, unverified; None when absent or unreadable."""
    head = value.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, TypeError):
        return None
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else None


class RemoteKeys:
    """A JWKS kept in memory, shared by the threads of one process.

    :param fetch: returns the JWKS document (a dict), raising on any failure.
    :param refetch_interval: seconds between two fetches, whatever the tokens ask for.
    """

    def __init__(self, fetch: Callable[[], dict[str, Any]], refetch_interval: float = 30.0) -> None:
        self.fetch = fetch
        self.refetch_interval = refetch_interval
        self.fetches = 0  # observable: tests count them
        self._lock = threading.Lock()
        self._keys: KeySet | None = None
        self._kids: frozenset[str] = frozenset()
        self._attempted_at = -math.inf

    def for_token(self, value: str) -> KeySet:
        """The keys to verify `value` with, fetched first when none are known yet or when its `kid`
        is unknown (and the last fetch is older than `refetch_interval`).

        :raises KeysUnavailable: no keys known and none could be fetched.
        """
        kid = token_kid(value)
        with self._lock:
            unknown = self._keys is None or (kid is not None and kid not in self._kids)
            # With no keys at all (the IdP was down at the first call), try again sooner.
            wait = self.refetch_interval if self._keys is not None else min(self.refetch_interval, 1.0)
            if unknown and time.monotonic() - self._attempted_at >= wait:
                self._load()
            if self._keys is None:
                raise KeysUnavailable("the issuer's keys could not be fetched")
            return self._keys

    def _load(self) -> None:
        self._attempted_at = time.monotonic()  # a failure waits its turn too: no retry per request
        self.fetches += 1
        try:
            document = self.fetch()
            keys = KeySet.import_key_set(document)
        except Exception as exc:  # noqa: BLE001 - any failure keeps the keys we had
            log.warning("cannot fetch the issuer's keys: %s", exc)
            return
        self._keys = keys
        self._kids = frozenset(k["kid"] for k in document.get("keys", []) if isinstance(k, dict)
                               and isinstance(k.get("kid"), str))
