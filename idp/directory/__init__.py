"""The legacy SICORRA directory over LDAP (SPEC §4.6): the only package that imports ldap3
(in `idp.directory.ldap`, loaded on first use so the app starts without it).

The rest of the code sees `LegacyEntry` (id, SIRET, mail, application roles, admin flag, and the
structure's name, kind and address) and three operations: `find`, `verify` (a bind as the entry)
and `entries` (the whole directory, for the migration). Attribute names and base DNs come from the
configuration (`LEGACY_LDAP_*`).

With an empty `LEGACY_LDAP_URL` (the embedded demo) the same ldap3 code runs against ldap3's offline
mock (MOCK_SYNC) loaded from the bundled LDIF `idp/data/legacy_demo.ldif`.

Safety: ids go into filters through `escape_filter_chars` and into DNs through `escape_rdn`; the
password is passed to one bind and never kept, logged nor put in an exception message.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from idp.directory.entries import (
    DEFAULT_ATTRIBUTES,
    MAX_ID_LENGTH,
    DirectorySettings,
    DirectoryUnavailable,
    LegacyEntry,
    plausible_id,
    read_ldif,
)

if TYPE_CHECKING:
    from idp.directory.ldap import Directory

__all__ = ["DEFAULT_ATTRIBUTES", "MAX_ID_LENGTH", "DirectorySettings", "DirectoryUnavailable",
           "LegacyEntry", "close_all", "directory_for", "plausible_id", "read_ldif"]

_directories: dict[DirectorySettings, Directory] = {}
_directories_lock = threading.Lock()


def directory_for(config: Mapping[str, Any]) -> Directory:
    """The directory for these settings, built once per process (its pool is reused)."""
    settings = DirectorySettings.from_config(config)
    with _directories_lock:
        directory = _directories.get(settings)
        if directory is None:
            from idp.directory.ldap import Directory  # ldap3 loads on first use

            directory = _directories[settings] = Directory(settings)
        return directory


def close_all() -> None:
    """Close every pooled connection (tests, shutdown)."""
    with _directories_lock:
        for directory in _directories.values():
            directory.close()
        _directories.clear()
