"""PostgreSQL as an alsek backend (psycopg 3): the key-value part (:mod:`.kv`)
assembled with the native queue (:mod:`.queue`) on one connection pool
(:mod:`.connection`), with statuses and results in tables of their own
(:mod:`.status`, :mod:`.result`)."""

from __future__ import annotations

from collections.abc import Iterable

from psycopg_pool import ConnectionPool

from alsek_backends.postgres import schema as schema_lib
from alsek_backends.postgres.connection import Database
from alsek_backends.postgres.kv import PostgresKeyValue
from alsek_backends.postgres.queue import PostgresQueue
from alsek_backends.postgres.result import PostgresResultStore
from alsek_backends.postgres.schema import Conn, Migration
from alsek_backends.postgres.status import PostgresStatusTracker
from alsek_core.backend import DEFAULT_NAMESPACE
from alsek_core.lazy import LazyClient
from alsek_core.ports import Envelope, Serializer


class PostgresBackend(PostgresKeyValue):
    """``conn`` is a libpq URL (``postgresql://user@host/db?schema=alsek``), a
    ``psycopg_pool.ConnectionPool``, or a LazyClient of either; None means
    libpq's defaults (``PGHOST``, ``PGUSER``, ...). Nothing connects until the
    first operation. ``schema`` (else the URL's ``schema=``, else "alsek") is
    the PostgreSQL schema holding the tables, made by ``alsek db init``."""

    status_tracker_class = PostgresStatusTracker
    result_store_class = PostgresResultStore

    def __init__(
        self,
        conn: str | ConnectionPool[Conn] | LazyClient | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        serializer: Serializer | None = None,
        schema: str | None = None,
        pool_size: int = 10,
    ) -> None:
        db = Database("" if conn is None else conn, schema, pool_size)
        queue = PostgresQueue(db, namespace)
        super().__init__(db, namespace=namespace, serializer=serializer, queue=queue)

    def submit(self, envelopes: Iterable[Envelope], connection: Conn | None = None) -> int:
        """With ``connection``, the same as ``submit_in_transaction``."""
        if connection is not None:
            return self.submit_in_transaction(envelopes, connection)
        return super().submit(envelopes)

    def init_schema(self) -> list[Migration]:
        """Create this backend's schema or bring it up to date, as ``alsek db
        init`` does, for programs that set up their own database (safe to
        repeat and to race: the migrations hold an advisory lock). Returns the
        migrations applied."""
        with self.db.connect() as conn:
            return schema_lib.init(conn, self.schema)

    def status_tracker(self) -> PostgresStatusTracker:
        return PostgresStatusTracker(self)

    def result_store(self) -> PostgresResultStore:
        return PostgresResultStore(self)

    def __repr__(self) -> str:
        return f"PostgresBackend({self.db.url()!r}, namespace={self.namespace!r})"


