"""Connections: a psycopg_pool opened on first use and owned by one process,
the LISTEN hub, and the retry that turns a server restart into a reconnect.

Constructing connects to nothing. The first operation opens the pool and
checks the schema version, once per backend instance. A forked child never
touches its parent's connections (they share sockets): seeing a new pid, it
opens a pool of its own and leaves the parent's objects alone for good.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from alsek_backends.postgres import schema as schema_lib
from alsek_backends.postgres.listen import Hub
from alsek_backends.postgres.queries import validate_schema
from alsek_backends.postgres.urls import DEFAULT_SCHEMA, masked, split_schema, with_schema
from alsek_core.lazy import LazyClient

log = logging.getLogger(__name__)

T = TypeVar("T")
Conn = psycopg.Connection[tuple[Any, ...]]

#: Attempts of one operation across connection faults; the pool waits up to
#: its own timeout for a fresh connection on each, so a restart of a few
#: seconds is absorbed.
ATTEMPTS = 6
#: SQLSTATEs of a server going away or not yet back (besides class 08).
_GONE = {"57P01", "57P02", "57P03"}
#: A forked child's inherited pools and hubs: kept referenced so that nothing
#: (a destructor, a close) ever writes to the parent's sockets.
_ORPHANS: list[object] = []


def is_disconnect(exc: psycopg.OperationalError) -> bool:
    """A lost or refused connection, as opposed to an error in the statement."""
    state = exc.sqlstate
    return isinstance(exc, PoolTimeout) or state is None or state.startswith("08") or state in _GONE


class Database:
    """Where a backend's connections come from. ``source`` is a libpq URL (with
    an optional ``schema=`` parameter), a ConnectionPool, or a LazyClient of
    either; ``kwargs`` are connection options for pools we open."""

    def __init__(
        self,
        source: str | ConnectionPool[Conn] | LazyClient,
        schema: str | None = None,
        pool_size: int = 10,
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        url_schema = split_schema(source)[1] if isinstance(source, str) else None
        self.schema = validate_schema(schema or url_schema or DEFAULT_SCHEMA)
        self.pool_size = pool_size
        self.kwargs = dict(kwargs or {})
        self._source = source
        self._source_pid = os.getpid()
        self._lock = threading.Lock()
        self._pool: ConnectionPool[Conn] | None = None
        self._owns_pool = False
        self._hub: Hub | None = None
        self._pid = os.getpid()
        self._checked = False

    def _resolved(self) -> str | ConnectionPool[Conn]:
        if isinstance(self._source, LazyClient):
            self._source = self._source.get()
            self._source_pid = os.getpid()
        if not isinstance(self._source, str | ConnectionPool):
            raise TypeError(f"expected a URL or a psycopg_pool.ConnectionPool, got {self._source!r}")
        return self._source

    def conninfo(self) -> tuple[str, dict[str, Any]]:
        """What a new connection needs: (libpq URL or conninfo, options)."""
        source = self._resolved()
        if isinstance(source, str):
            return split_schema(source)[0], self.kwargs
        return source.conninfo, {**(source.kwargs or {}), **self.kwargs}

    def url(self) -> str:
        """A URL naming this database and schema, without the password."""
        conninfo, _ = self.conninfo()
        if "://" not in conninfo:
            params = conninfo_to_dict(conninfo)
            user = f"{params['user']}@" if "user" in params else ""
            port = f":{params['port']}" if "port" in params else ""
            conninfo = f"postgresql://{user}{params.get('host', '')}{port}/{params.get('dbname', '')}"
        return masked(with_schema(conninfo, self.schema))

    def pool(self) -> ConnectionPool[Conn]:
        pool = self._pool
        if pool is None or self._pid != os.getpid():
            pool = self._open()
        if not self._checked:
            self._check()
        return pool

    def _open(self) -> ConnectionPool[Conn]:
        with self._lock:
            if self._pid != os.getpid():
                _ORPHANS.extend(x for x in (self._pool, self._hub) if x is not None)
                self._pool, self._hub, self._pid = None, None, os.getpid()
            if self._pool is None:
                source = self._resolved()
                if isinstance(source, ConnectionPool) and self._source_pid == os.getpid():
                    self._pool, self._owns_pool = source, False
                else:
                    conninfo, kwargs = self.conninfo()
                    self._pool = ConnectionPool(
                        conninfo,
                        kwargs={**kwargs, "autocommit": True},
                        min_size=1,
                        max_size=self.pool_size,
                        open=False,
                        name=f"alsek-{self.schema}",
                    )
                    self._pool.open(wait=False)
                    self._owns_pool = True
            return self._pool

    def _check(self) -> None:
        self.run(self.check, checked=False)

    def check(self, conn: Conn) -> None:
        """The schema version check, on ``conn``, once per instance."""
        if not self._checked:
            schema_lib.check(conn, self.schema, self.url())
            self._checked = True

    def run(self, work: Callable[[Conn], T], checked: bool = True) -> T:
        """``work(connection)``, again on a fresh connection if the server went
        away. Only for work that is safe to repeat: each attempt is one
        autocommit statement or a transaction of its own."""
        for attempt in range(ATTEMPTS):
            pool = self.pool() if checked else self._pool or self._open()
            try:
                with pool.connection() as conn:
                    return work(conn)
            except psycopg.OperationalError as exc:
                if not is_disconnect(exc) or attempt == ATTEMPTS - 1:
                    raise
                log.warning("PostgreSQL connection lost (%s); retrying on a fresh one", exc)
                pool.check()
                time.sleep(min(1.0, 0.05 * 2**attempt))
        raise AssertionError("unreachable")

    def connect(self) -> Conn:
        """A dedicated autocommit connection, outside the pool (for LISTEN)."""
        conninfo, kwargs = self.conninfo()
        return psycopg.Connection.connect(conninfo, **{**kwargs, "autocommit": True})

    def hub(self) -> Hub:
        self.pool()  # also notices a fork
        with self._lock:
            if self._hub is None:
                self._hub = Hub(self.connect)
            return self._hub

    def close(self) -> None:
        with self._lock:
            if self._pid != os.getpid():
                return  # the parent's: not ours to close
            hub, pool, owns = self._hub, self._pool, self._owns_pool
            self._hub, self._pool = None, None
        if hub is not None:
            hub.close()
        if pool is not None and owns:
            pool.close()

    def state(self) -> dict[str, Any]:
        """What rebuilds this in another process: never the pool itself."""
        conninfo, kwargs = self.conninfo()
        if isinstance(self._source, str):
            conninfo = self._source
        return {"source": conninfo, "schema": self.schema, "pool_size": self.pool_size, "kwargs": kwargs}
