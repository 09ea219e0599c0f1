"""What the DiskCache backend's two parts share: one directory, holding the
DiskCache (the key-value part) and the queue's own SQLite file beside it.

The queue's SQLite connections are one per thread, per process: a
``sqlite3.Connection`` must not cross threads, nor survive a ``fork`` into the
child (SQLite's own rule: the child would share the parent's file locks). So
each thread opens its own on first use, and a process that finds itself with
a new pid starts afresh.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import diskcache
from diskcache.core import MODE_BINARY, MODE_RAW, UNKNOWN

from alsek_backends.named_sql import load
from alsek_core.errors import ConfigError, SerializationError
from alsek_core.lazy import LazyClient, resolve

DEFAULT_DIRECTORY = ".alsek"
QUEUE_FILE = "queue.sqlite3"
#: Where DiskCache keeps a large value: a file it named itself, in the cache
#: directory (a row naming any other path was not written by DiskCache).
_VALUE_FILE = re.compile(r"[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{28}\.val")
_FOREIGN = "the DiskCache holds a row alsek did not write (edited on disk, or by another program)"

QUERIES = load("alsek_backends.diskcache", "queue.sql")
SCHEMA_VERSION = 3
#: How long a write waits for another process's transaction to end.
BUSY_TIMEOUT_S = 30.0
#: DiskCache culls on every write by default (deletes up to 10 expired rows,
#: then evicts the least recently stored past 1 GiB): two or three queries a
#: write, most of the cost of a settlement, and an eviction would drop a
#: result, a status or a lock that has not expired. Here nothing is evicted;
#: expired rows, invisible to every read already, are deleted by a settling
#: worker at most once per EXPIRE_INTERVAL_S (``expire``).
EXPIRE_INTERVAL_S = 10.0

#: Connections a forked child inherited. Closing them in the child could
#: release POSIX locks its own connections hold, so they are kept, unused.
_inherited: list[object] = []


class _Connection(sqlite3.Connection):
    """Only so that connections can be tracked weakly (the base class cannot)."""


class Connections:
    """Opens ``path`` lazily, at most once per thread; ``close`` closes them all."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._start()

    def _start(self) -> None:
        self._pid = os.getpid()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: weakref.WeakSet[_Connection] = weakref.WeakSet()

    def get(self) -> sqlite3.Connection:
        if self._pid != os.getpid():
            _inherited.append((self._local, list(self._open)))
            self._start()
        conn: _Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._open.add(conn)
        return conn

    def _connect(self) -> _Connection:
        """Open and set up a connection. Processes racing to set up a new file
        can get "database is locked" without SQLite waiting (switching to WAL
        is one such step), so setup alone is retried, within the busy timeout."""
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            # isolation_level=None: no implicit transactions; we say BEGIN ourselves.
            # check_same_thread=False only so that close() may close every thread's.
            conn = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_S,
                isolation_level=None,
                check_same_thread=False,
                factory=_Connection,
            )
            try:
                conn.executescript(QUERIES["connect"])
                migrate(conn, self.path)
                return conn
            except sqlite3.OperationalError as exc:
                conn.close()
                if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
            except BaseException:
                conn.close()
                raise

    def close(self) -> None:
        """Close this process's connections; threads reconnect on their next call."""
        if self._pid != os.getpid():
            return
        with self._lock:
            conns = list(self._open)
            self._open.clear()
        self._local = threading.local()
        for conn in conns:
            conn.close()


def migrate(conn: sqlite3.Connection, path: str) -> None:
    """Create the schema on first use; refuse a file from a newer release."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise ConfigError(
            f"queue database {path} has schema version {version}, this alsek knows "
            f"up to {SCHEMA_VERSION}: upgrade alsek"
        )
    conn.executescript(QUERIES["schema"])


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE takes the write lock up front (waiting up to busy_timeout),
    so a read-then-write never fails half-way because another process wrote."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class BytesDisk(diskcache.Disk):  # type: ignore[misc]
    """How the cache encodes its rows: str keys and bytes values (the
    serializer's output) only. DiskCache's own Disk turns any other Python
    object into a row it decodes by running code on read; a row edited on
    disk, or written by another program, could then run anything when alsek
    reads it (``alsek status UUID``). This one never writes such a row and
    refuses to decode one, with a SerializationError."""

    def put(self, key: Any) -> Any:
        if not isinstance(key, str):
            raise SerializationError(f"DiskCache keys are str, got {type(key).__name__}")
        return super().put(key)

    def get(self, key: Any, raw: bool) -> Any:
        if not raw:
            raise SerializationError(f"{_FOREIGN}: a key that is not plain text")
        return super().get(key, raw)

    def store(self, value: Any, read: bool, key: Any = UNKNOWN) -> Any:
        if read or not isinstance(value, bytes):
            raise SerializationError(f"DiskCache values are bytes, got {type(value).__name__}")
        return super().store(value, read, key=key)

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        if mode == MODE_RAW and isinstance(value, bytes) and not read:
            return value
        if mode == MODE_BINARY and _VALUE_FILE.fullmatch(filename or "") and not read:
            return super().fetch(mode, filename, value, read)
        raise SerializationError(f"{_FOREIGN}: a value that is not plain bytes (mode {mode})")


class DiskCacheConnection:
    """``conn`` is a directory, a ``diskcache.Cache``, or a LazyClient of one;
    nothing is opened until first use. The cache alsek uses is always its
    own, opened on that directory with :class:`BytesDisk` (a Cache passed in
    only says where, keeping the settings stored with it, except culling:
    see EXPIRE_INTERVAL_S).

    Picklable: a copy (say, in a spawned worker process) reopens the same
    directory with its own connections.
    """

    def __init__(self, conn: str | Path | diskcache.Cache | LazyClient | None = None) -> None:
        self._given: diskcache.Cache | LazyClient | None = None
        self._directory: str | None = None
        if conn is None or isinstance(conn, (str, Path)):
            self._directory = str(conn or DEFAULT_DIRECTORY)
        else:
            self._given = conn
        self._cache: diskcache.Cache | None = None
        self._queue_db: Connections | None = None
        self._expired_at = time.monotonic()

    @property
    def directory(self) -> str:
        if self._directory is None:
            given = self._given
            if isinstance(given, LazyClient):
                given = self._given = resolve(given)
            self._directory = str(given.directory)  # type: ignore[union-attr]
        return self._directory

    @property
    def cache(self) -> diskcache.Cache:
        if self._cache is None:
            self._cache = diskcache.Cache(self.directory, disk=BytesDisk, cull_limit=0)
        return self._cache

    def expire(self) -> None:
        """Delete the cache's expired rows, if EXPIRE_INTERVAL_S has passed
        since this connection last did (or was made)."""
        now = time.monotonic()
        if now - self._expired_at >= EXPIRE_INTERVAL_S:
            self._expired_at = now
            self.cache.expire()

    @property
    def queue_db(self) -> Connections:
        """The connections to the queue's database file."""
        if self._queue_db is None:
            self._queue_db = Connections(os.path.join(self.directory, QUEUE_FILE))
        return self._queue_db

    def close(self) -> None:
        """Close what is open, a Cache passed in as well; used again, it reopens."""
        for cache in (self._cache, self._given):
            if isinstance(cache, diskcache.Cache):
                cache.close()
        self._cache = None
        if self._queue_db is not None:
            self._queue_db.close()

    def __getstate__(self) -> dict[str, Any]:
        return {"directory": self.directory}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["directory"])  # type: ignore[misc]
