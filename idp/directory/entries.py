"""What the directory adapter hands the rest of the code, without ldap3: the settings, the entry
(`LegacyEntry`), its refusal (`DirectoryUnavailable`), and the LDIF reader of the offline mock.
`idp.directory.ldap` builds on this module; `idp.directory` publishes it."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEMO_LDIF = Path(__file__).resolve().parent.parent / "data" / "legacy_demo.ldif"

# The names the code understands → the directory's attribute names (LEGACY_LDAP_ATTRIBUTES).
DEFAULT_ATTRIBUTES = {
    "id": "uid",
    "siret": "employeeNumber",
    "mail": "mail",
    "roles": "businessCategory",  # "app:role", one value per application role
    "name": "o",
    "kind": "employeeType",  # organisme, lycee, region, autre
    "city": "l",
    "postal_code": "postalCode",
    "code": "departmentNumber",  # UAI of a lycée
}

MAX_ID_LENGTH = 64


class DirectoryUnavailable(Exception):  # noqa: N818 - reads better at the call sites
    """The directory cannot be reached or answered with an error (never carries a password)."""


@dataclass(frozen=True)
class DirectorySettings:
    url: str = ""  # one or more ldap:// or ldaps:// URLs separated by spaces (a server pool)
    bind_dn: str = ""  # the service account that searches ("" = anonymous)
    bind_password: str = field(default="", repr=False)
    base_dn: str = "ou=comptes,dc=sicorra,dc=fr"
    object_class: str = "inetOrgPerson"
    admin_group_dn: str = ""
    group_member_attribute: str = "member"
    attributes: tuple[tuple[str, str], ...] = tuple(DEFAULT_ATTRIBUTES.items())
    connect_timeout: int = 3  # seconds (ldap3 wants whole seconds for the socket timeouts)
    receive_timeout: int = 5
    pool_size: int = 4
    ldif: str = str(DEMO_LDIF)  # the offline mock's content when url is empty

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DirectorySettings:
        attributes = {**DEFAULT_ATTRIBUTES, **(config.get("LEGACY_LDAP_ATTRIBUTES") or {})}
        return cls(
            url=(config.get("LEGACY_LDAP_URL") or "").strip(),
            bind_dn=config.get("LEGACY_LDAP_BIND_DN") or "",
            bind_password=config.get("LEGACY_LDAP_BIND_PASSWORD") or "",
            base_dn=config.get("LEGACY_LDAP_BASE_DN") or cls.base_dn,
            object_class=config.get("LEGACY_LDAP_OBJECT_CLASS") or cls.object_class,
            admin_group_dn=config.get("LEGACY_LDAP_ADMIN_GROUP_DN") or "",
            group_member_attribute=config.get("LEGACY_LDAP_GROUP_MEMBER_ATTRIBUTE") or "member",
            attributes=tuple(sorted(attributes.items())),
            connect_timeout=int(config.get("LEGACY_LDAP_CONNECT_TIMEOUT") or 3),
            receive_timeout=int(config.get("LEGACY_LDAP_RECEIVE_TIMEOUT") or 5),
            pool_size=int(config.get("LEGACY_LDAP_POOL_SIZE") or 4),
            ldif=config.get("LEGACY_LDAP_DEMO_LDIF") or str(DEMO_LDIF),
        )

    @property
    def offline(self) -> bool:
        return not self.url


@dataclass(frozen=True)
class LegacyEntry:
    """A legacy shared account, in the code's own names."""

    id: str
    dn: str
    siret: str
    mail: str
    roles: tuple[str, ...]  # "app:role" keys
    admin: bool  # the id ends in _ADM, or the entry is in the admin group
    name: str = ""
    kind: str = ""
    city: str = ""
    postal_code: str = ""
    code: str = ""


def plausible_id(legacy_id: str) -> bool:
    """Worth asking the directory: not empty, not too long, no control characters."""
    return 0 < len(legacy_id) <= MAX_ID_LENGTH and legacy_id.isprintable()


def read_ldif(text: str) -> list[tuple[str, dict[str, list[str]]]]:
    """Entries of an LDIF content file (RFC 2849: folded lines, comments, base64 values)."""
    lines: list[str] = []
    for raw in text.splitlines():
        if raw.startswith(" ") and lines:
            lines[-1] += raw[1:]
        elif not raw.startswith("#"):
            lines.append(raw)
    entries: list[tuple[str, dict[str, list[str]]]] = []
    dn, attributes = "", {}  # type: tuple[str, dict[str, list[str]]]
    for line in [*lines, ""]:
        if not line.strip():
            if dn:
                entries.append((dn, attributes))
            dn, attributes = "", {}
            continue
        name, _, value = line.partition(":")
        if value.startswith(":"):
            value = base64.b64decode(value[1:].strip()).decode("utf-8")
        else:
            value = value.strip()
        if name.lower() == "dn":
            dn = value
        elif name.lower() != "version":
            attributes.setdefault(name, []).append(value)
    return entries
