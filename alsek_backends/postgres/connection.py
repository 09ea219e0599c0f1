"""Connections: a psycopg_pool opened on first use and owned by one process,
the LISTEN hub, and the retry that turns a server restart into a reconnect.

Constructing connects to nothing. The first operation opens the pool and
checks the schema version, once per backend instance. A forked child never
touches its parent's connections (they share sockets): seeing a new pid, it
opens a pool of its own and leaves the parent's objects alone for good.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import namedtuple_row
from psycopg_pool import ConnectionPool, PoolTimeout

from alsek_backends.postgres import schema as schema_lib
from alsek_backends.postgres.listen import Hub
from alsek_backends.postgres.queries import queries, validate_schema
from alsek_backends.postgres.schema import Conn
from alsek_backends.postgres.urls import DEFAULT_SCHEMA, split_schema, with_schema
from alsek_core.lazy import LazyClient
from alsek_core.redact import redact_url

log = logging.getLogger(__name__)

T = TypeVar("T")

#: A result row, read by column name (every statement names its columns).
Row = Any
#: Expired rows are invisible at once and deleted by writers this often.
PRUNE_INTERVAL_S = 60.0

#: Attempts of one operation across connection faults. Each waits up to
#: POOL_TIMEOUT_S for a connection while the pool reconnects, so a server
#: restart of a few seconds is absorbed and an outage fails within ~30 s.
ATTEMPTS = 6
POOL_TIMEOUT_S = 5.0
#: SQLSTATEs of a server going away or not yet back (besides class 08).
_GONE = {"57P01", "57P02", "57P03"}
#: A forked child's inherited pools and hubs: kept referenced so that nothing
#: (a destructor, a close) ever writes to the parent's sockets.
_ORPHANS: list[object] = []


def is_disconnect(exc: psycopg.OperationalError) -> bool:
    """A lost or refused connection, as opposed to an error in the statement."""
    state = exc.sqlstate
    return isinstance(exc, PoolTimeout) or state is None or state.startswith("08") or state in _GONE


class _Opened:
    """What a Database opened in this process. Closed by a finalizer when the
    Database is collected: a pool left to the garbage collector may be
    finalized in one of its own worker threads, which psycopg_pool cannot do.
    Holds no reference to the Database, so collection stays prompt."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.pool: ConnectionPool[Conn] | None = None
        self.owns_pool = False
        self.hub: Hub | None = None

    def forked(self) -> bool:
        """True (and everything inherited set aside, never touched) in a child."""
        if self.pid == os.getpid():
            return False
        _ORPHANS.extend(x for x in (self.pool, self.hub) if x is not None)
        self.pool, self.hub, self.pid = None, None, os.getpid()
        return True

    def close(self) -> None:
        if self.pid != os.getpid():
            return  # the parent's: not ours to close
        hub, pool, owns = self.hub, self.pool, self.owns_pool
        self.hub, self.pool = None, None
        if hub is not None:
            hub.close()
        if pool is not None and owns:
            pool.close()


def _connect(conninfo: str, kwargs: dict[str, Any]) -> Conn:
    return psycopg.Connection.connect(conninfo, **{**kwargs, "autocommit": True})


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
        self._opened = _Opened()
        weakref.finalize(self, self._opened.close)
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
        conninfo = source.conninfo() if callable(source.conninfo) else source.conninfo
        kwargs = source.kwargs() if callable(source.kwargs) else source.kwargs
        return conninfo, {**(kwargs or {}), **self.kwargs}

    def url(self) -> str:
        """A URL naming this database and schema, without the password."""
        conninfo, _ = self.conninfo()
        if "://" not in conninfo:
            params = conninfo_to_dict(conninfo)
            user = f"{params['user']}@" if "user" in params else ""
            port = f":{params['port']}" if "port" in params else ""
            conninfo = f"postgresql://{user}{params.get('host', '')}{port}/{params.get('dbname', '')}"
        return redact_url(with_schema(conninfo, self.schema))

    def pool(self) -> ConnectionPool[Conn]:
        if not self._checked:
            self._check()
        opened = self._opened
        pool = opened.pool
        if pool is None or opened.pid != os.getpid():
            pool = self._open()
        return pool

    def _open(self) -> ConnectionPool[Conn]:
        with self._lock:
            opened = self._opened
            opened.forked()
            if opened.pool is None:
                source = self._resolved()
                if isinstance(source, ConnectionPool) and self._source_pid == os.getpid():
                    opened.pool, opened.owns_pool = source, False
                else:
                    conninfo, kwargs = self.conninfo()
                    pool: ConnectionPool[Conn] = ConnectionPool(
                        conninfo,
                        kwargs={**kwargs, "autocommit": True},
                        min_size=1,
                        max_size=self.pool_size,
                        open=False,
                        timeout=POOL_TIMEOUT_S,
                        name=f"alsek-{self.schema}",
                    )
                    pool.open(wait=False)
                    opened.pool, opened.owns_pool = pool, True
            return opened.pool

    def _check(self) -> None:
        """On a connection of its own, before any pool exists: a wrong URL or
        an absent server fails here at once instead of after pool retries."""
        with self.connect() as conn:
            self.check(conn)

    def check(self, conn: Conn) -> None:
        """The schema version check, on ``conn``, once per instance."""
        if not self._checked:
            schema_lib.check(conn, self.schema, self.url())
            self._checked = True

    def run(self, work: Callable[[Conn], T]) -> T:
        """``work(connection)``, again on a fresh connection if the server went
        away. Only for work that is safe to repeat: each attempt is one
        autocommit statement or a transaction of its own."""
        for attempt in range(ATTEMPTS):
            pool = self.pool()
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
        return _connect(*self.conninfo())

    def hub(self) -> Hub:
        self.pool()  # also notices a fork
        with self._lock:
            if self._opened.hub is None:
                self._opened.hub = Hub(functools.partial(_connect, *self.conninfo()))
            return self._opened.hub

    def close(self) -> None:
        """Release what this process opened; used again, it reopens."""
        with self._lock:
            self._opened.close()

    def state(self) -> dict[str, Any]:
        """What rebuilds this in another process: never the pool itself."""
        conninfo, kwargs = self.conninfo()
        if isinstance(self._source, str):
            conninfo = self._source
        return {"source": conninfo, "schema": self.schema, "pool_size": self.pool_size, "kwargs": kwargs}

    def __getstate__(self) -> dict[str, Any]:
        return self.state()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]


class Statements:
    """The statements of one .sql file, run on ``db``; rows come back as named
    tuples, so callers read columns by name, never by position. ``bound``
    parameters (a namespace, say) go with every ``rows``/``rowcount`` call."""

    def __init__(self, db: Database, filename: str, **bound: Any) -> None:
        self.db = db
        self.sql = queries(filename, db.schema)
        self.bound = bound

    def execute(self, conn: Conn, statement: str, params: dict[str, Any]) -> list[Row]:
        """On ``conn`` as it is (say, inside the caller's own transaction)."""
        cursor = conn.cursor(row_factory=namedtuple_row)
        cursor.execute(self.sql[statement], params)
        return cursor.fetchall() if cursor.description else []

    def rows(self, statement: str, /, **params: Any) -> list[Row]:
        params = {**self.bound, **params}
        return self.db.run(lambda conn: self.execute(conn, statement, params))

    def row(self, statement: str, /, **params: Any) -> Row | None:
        found = self.rows(statement, **params)
        return found[0] if found else None

    def rowcount(self, statement: str, /, **params: Any) -> int:
        """How many rows a statement without RETURNING changed."""
        params = {**self.bound, **params}
        return self.db.run(lambda conn: conn.execute(self.sql[statement], params).rowcount)


class PruneThrottle:
    """Expired rows are invisible at once (every read filters them out);
    deleting them is left to writers, each at most once per PRUNE_INTERVAL_S,
    so no write pays for it every time. The first call starts the clock."""

    _pruned_at: float

    def prune_due(self) -> bool:
        now = time.monotonic()
        if now - self.__dict__.setdefault("_pruned_at", now) <= PRUNE_INTERVAL_S:
            return False
        self._pruned_at = now
        return True
