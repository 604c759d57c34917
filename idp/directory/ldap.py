"""The ldap3 side of the directory adapter (imported on first use: the app starts without it)."""

from __future__ import annotations

import contextlib
import queue
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

with warnings.catch_warnings():
    # ldap3 2.9 imports names pyasn1 has deprecated (tagMap, typeMap): harmless, and not ours to fix.
    warnings.simplefilter("ignore", DeprecationWarning)
    import ldap3
    import ldap3.strategy.mockSync
    import ldap3.strategy.sync
    import ldap3.utils.asn1  # noqa: F401 - imported here, under the filter
    from ldap3.core import exceptions as ldap_errors
    from ldap3.utils.conv import escape_filter_chars
    from ldap3.utils.dn import escape_rdn

from idp.directory.entries import (
    DirectorySettings,
    DirectoryUnavailable,
    LegacyEntry,
    plausible_id,
    read_ldif,
)

T = TypeVar("T")


class Directory:
    """One directory (or the offline mock) with a small pool of service connections."""

    def __init__(self, settings: DirectorySettings) -> None:
        self.settings = settings
        self.names = dict(settings.attributes)
        self._pool: queue.LifoQueue[ldap3.Connection] = queue.LifoQueue(maxsize=max(settings.pool_size, 1))
        self._mock_server: ldap3.Server | None = None
        if settings.offline:
            self._mock_server = self._load_mock()

    # ---------------------------------------------------------------- connections

    def _server(self) -> Any:
        if self._mock_server is not None:
            return self._mock_server
        servers = [ldap3.Server(url, connect_timeout=self.settings.connect_timeout, get_info=ldap3.NONE)
                   for url in self.settings.url.split()]
        return servers[0] if len(servers) == 1 else ldap3.ServerPool(servers, ldap3.FIRST, active=1, exhaust=True)

    def _connection(self, user: str | None, password: str | None) -> ldap3.Connection:
        strategy = ldap3.MOCK_SYNC if self._mock_server is not None else ldap3.SYNC
        return ldap3.Connection(self._server(), user=user or None, password=password or None,
                                client_strategy=strategy, receive_timeout=self.settings.receive_timeout,
                                raise_exceptions=False, read_only=True, auto_referrals=False)

    def _load_mock(self) -> ldap3.Server:
        server = ldap3.Server("legacy-demo", get_info=ldap3.NONE)
        loader = ldap3.Connection(server, client_strategy=ldap3.MOCK_SYNC)
        for dn, attributes in read_ldif(Path(self.settings.ldif).read_text(encoding="utf-8")):
            loader.strategy.add_entry(dn, attributes)
        return server

    def _run(self, work: Callable[[ldap3.Connection], T]) -> T:
        """Run `work` on a bound service connection from the pool. A pooled connection the server
        closed meanwhile is dropped and the work retried once on a fresh one."""
        for attempt in (1, 2):
            try:
                conn, pooled = self._pool.get_nowait(), True
            except queue.Empty:
                conn, pooled = self._open_service(), False
            try:
                result = work(conn)
            except DirectoryUnavailable:
                _close(conn)
                raise
            except ldap_errors.LDAPException as exc:
                _close(conn)
                if pooled and attempt == 1:
                    continue
                raise DirectoryUnavailable(type(exc).__name__) from None
            try:
                self._pool.put_nowait(conn)
            except queue.Full:
                _close(conn)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _open_service(self) -> ldap3.Connection:
        conn = self._connection(self.settings.bind_dn, self.settings.bind_password)
        try:
            ok = conn.bind()
        except ldap_errors.LDAPException as exc:
            _close(conn)
            raise DirectoryUnavailable(type(exc).__name__) from None
        if not ok:
            _close(conn)
            raise DirectoryUnavailable(f"service bind refused: {conn.result.get('description')}")
        return conn

    def close(self) -> None:
        while True:
            try:
                _close(self._pool.get_nowait())
            except queue.Empty:
                return

    # ---------------------------------------------------------------- reading

    def _search(self, conn: ldap3.Connection, base: str, search_filter: str, scope: str,
                attributes: list[str]) -> list[dict[str, Any]]:
        ok = conn.search(base, search_filter, search_scope=scope, attributes=attributes)
        if not ok and conn.result.get("result") not in (0, 32):  # 32: no such object
            raise DirectoryUnavailable(f"search failed: {conn.result.get('description')}")
        return [r for r in (conn.response or []) if r.get("type") == "searchResEntry"]

    def _id_filter(self, legacy_id: str) -> str:
        return (f"(&(objectClass={escape_filter_chars(self.settings.object_class)})"
                f"({self.names['id']}={escape_filter_chars(legacy_id)}))")

    def find(self, legacy_id: str) -> LegacyEntry | None:
        """The entry with this id, or None (also for ids no directory could hold).

        :raises DirectoryUnavailable: the directory cannot be reached.
        """
        if not plausible_id(legacy_id):
            return None

        def work(conn: ldap3.Connection) -> LegacyEntry | None:
            found = self._search(conn, self.settings.base_dn, self._id_filter(legacy_id), ldap3.SUBTREE,
                                 self._wanted())
            return self._entry(found[0], self._admin_dns(conn)) if len(found) == 1 else None

        return self._run(work)

    def verify(self, legacy_id: str, password: str) -> LegacyEntry | None:
        """The entry when the password is right (a bind as that entry), else None.

        An unknown id still costs a bind (on the DN it would have), so both answers take as long.

        :raises DirectoryUnavailable: the directory cannot be reached.
        """
        if not plausible_id(legacy_id) or not password:
            return None
        entry = self.find(legacy_id)
        dn = entry.dn if entry else f"{self.names['id']}={escape_rdn(legacy_id)},{self.settings.base_dn}"
        return entry if self._bind_as(dn, password) and entry is not None else None

    def _bind_as(self, dn: str, password: str) -> bool:
        conn = self._connection(dn, password)
        try:
            return bool(conn.bind())
        except ldap_errors.LDAPBindError:
            return False
        except ldap_errors.LDAPException as exc:
            raise DirectoryUnavailable(type(exc).__name__) from None
        finally:
            _close(conn)

    def entries(self, page_size: int = 500) -> Iterator[LegacyEntry]:
        """Every legacy account, by pages (the migration)."""
        search_filter = f"(objectClass={escape_filter_chars(self.settings.object_class)})"

        def work(conn: ldap3.Connection) -> tuple[set[str], list[dict[str, Any]]]:
            admins = self._admin_dns(conn)
            if self._mock_server is not None:  # the mock has no paged-results control
                return admins, self._search(conn, self.settings.base_dn, search_filter, ldap3.SUBTREE,
                                            self._wanted())
            rows = [r for r in conn.extend.standard.paged_search(
                self.settings.base_dn, search_filter, search_scope=ldap3.SUBTREE, attributes=self._wanted(),
                paged_size=page_size, generator=False) if r.get("type") == "searchResEntry"]
            if conn.result.get("result") not in (0, None):
                raise DirectoryUnavailable(f"search failed: {conn.result.get('description')}")
            return admins, rows

        admins, rows = self._run(work)
        for row in sorted(rows, key=lambda r: r["dn"].lower()):
            entry = self._entry(row, admins)
            if entry.id:
                yield entry

    # ---------------------------------------------------------------- representation

    def _wanted(self) -> list[str]:
        return sorted(set(self.names.values()))

    def _admin_dns(self, conn: ldap3.Connection) -> set[str]:
        if not self.settings.admin_group_dn:
            return set()
        attribute = self.settings.group_member_attribute
        found = self._search(conn, self.settings.admin_group_dn, "(objectClass=*)", ldap3.BASE, [attribute])
        if not found:
            return set()
        return {_norm_dn(dn) for dn in _values(found[0].get("attributes", {}), attribute)}

    def _entry(self, row: dict[str, Any], admin_dns: set[str]) -> LegacyEntry:
        attrs = row.get("attributes", {})

        def one(name: str) -> str:
            values = _values(attrs, self.names[name])
            return values[0].strip() if values else ""

        legacy_id = one("id")
        roles = tuple(sorted({v.strip().lower() for v in _values(attrs, self.names["roles"]) if v.strip()}))
        return LegacyEntry(
            id=legacy_id, dn=row["dn"], siret="".join(one("siret").split()), mail=one("mail"), roles=roles,
            admin=legacy_id.upper().endswith("_ADM") or _norm_dn(row["dn"]) in admin_dns,
            name=one("name"), kind=one("kind").lower(), city=one("city"), postal_code=one("postal_code"),
            code=one("code"),
        )


def _values(attrs: Mapping[str, Any], name: str) -> list[str]:
    for key, value in attrs.items():  # attribute names are case-insensitive
        if key.lower() == name.lower():
            if isinstance(value, list | tuple):
                return [_text(v) for v in value]
            return [_text(value)] if value not in (None, "") else []
    return []


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _norm_dn(dn: str) -> str:
    return ",".join(part.strip().lower() for part in dn.split(","))


def _close(conn: ldap3.Connection) -> None:
    with contextlib.suppress(Exception):  # closing a dead connection
        conn.unbind()
    sock = getattr(conn, "socket", None)
    if sock is not None:  # ldap3 leaves the socket of a failed connect open
        with contextlib.suppress(Exception):
            sock.close()


