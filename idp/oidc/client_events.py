"""Client changes reach every worker at once (issue 17 finding 5): PostgreSQL LISTEN/NOTIFY.

Each worker keeps its registered clients in a ClientCache. A transaction that changes a client
(secret regenerated, URIs edited, client deactivated) sends `NOTIFY portail_clients`, which
PostgreSQL delivers at commit to every listening worker of every IdP instance, the CLI included;
each one empties its cache. While a worker is not listening (starting, or its listening connection
lost), its cache is bypassed: a change is never missed for the cache's lifetime.

SQLite (the embedded demo, one process) needs none of this: the commit hook of ClientCache
empties the cache of the only process there is.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, Protocol

from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

CHANNEL = "portail_clients"
# How long a listening connection waits for a notification before checking it is still alive.
HEARTBEAT_SECONDS = 10.0
RECONNECT_SECONDS = 1.0


class Clearable(Protocol):
    def clear(self) -> None: ...


class ClientChanges:
    """One listening connection per worker process, on a daemon thread started on first use (after
    gunicorn's fork: a thread does not survive it, so the pid is checked)."""

    def __init__(self, database_url: str, cache: Clearable) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._cache = cache
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._listening = threading.Event()
        self._stopped = threading.Event()

    def stop(self) -> None:
        """Stop listening (the app's engine was disposed: tests, shutdown)."""
        self._stopped.set()
        self._listening.clear()

    @property
    def listening(self) -> bool:
        """True when a notification would reach this worker now (else: don't trust the cache)."""
        if self._pid != os.getpid() and not self._stopped.is_set():
            self._start()
        return self._listening.is_set()

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._listening = threading.Event()  # the parent's state means nothing after a fork
            threading.Thread(target=self._run, name="client-changes", daemon=True).start()

    def _run(self) -> None:
        import psycopg

        while not self._stopped.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._cache.clear()  # whatever changed while we were not listening
                    self._listening.set()
                    while not self._stopped.is_set():
                        for _notice in conn.notifies(timeout=HEARTBEAT_SECONDS):
                            self._cache.clear()
                        conn.execute("SELECT 1")  # a dead connection fails here, not silently
            except Exception as exc:  # noqa: BLE001 - server restarted, network: listen again
                self._listening.clear()
                self._cache.clear()
                log.info("client change listener reconnecting: %s", exc)
                self._stopped.wait(RECONNECT_SECONDS)
        self._listening.clear()


def notify(connection: Any) -> None:
    """Queue the notification in the committing transaction (delivered only if it commits)."""
    connection.exec_driver_sql(f"NOTIFY {CHANNEL}")
