"""PostgreSQL backend on psycopg 3: key-value rows with TTLs, and every queue
operation as one native statement (claims with ``FOR UPDATE SKIP LOCKED``,
idle claimers woken by LISTEN/NOTIFY).

Finished messages leave the queue table at once: ``ack`` deletes the row and
``dead_letter`` moves it to ``dead_letters``, so claims never wade through
history, and there is no retention setting to tune. Leases and TTLs use the
database clock, so workers on several hosts agree on when a lease ends;
``ready_at`` is the submitter's clock, as the Envelope says.

Submits and key-value writes commit durably. Lease operations (claim, ack,
extend, reschedule, dead-letter) commit without waiting for the WAL flush:
a server crash can only forget the latest of them, which redelivers a
message, as at-least-once allows (queue.sql explains).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from psycopg_pool import ConnectionPool

from alsek_backends.postgres import schema as schema_lib
from alsek_backends.postgres.connection import Database
from alsek_backends.postgres.listen import Subscription, channel_name
from alsek_backends.postgres.queries import queries
from alsek_backends.postgres.schema import Conn, Migration
from alsek_core.backend import DEFAULT_NAMESPACE, Backend
from alsek_core.errors import KeyExistsError
from alsek_core.lazy import LazyClient
from alsek_core.ports import Delivery, Envelope, QueueCounts, QueuedMessage, Serializer
from alsek_core.result import ResultStore
from alsek_core.status import BaseStatusTracker

#: Expired key-value rows are invisible at once and deleted this often.
PRUNE_INTERVAL_S = 60.0


def like_pattern(pattern: str | None) -> tuple[str, str, str | None]:
    """The glob ``pattern + "*"`` as (LIKE pattern, lowest and past-the-end
    name sharing its literal prefix, or None when nothing bounds it)."""
    like, prefix, literal = [], [], True
    for char in f"{pattern or ''}*":
        if char in "*?":
            like.append("%" if char == "*" else "_")
            literal = False
        else:
            like.append("\\" + char if char in "\\%_" else char)
            if literal:
                prefix.append(char)
    lo = "".join(prefix)
    return "".join(like), lo, _successor(lo)


def _successor(prefix: str) -> str | None:
    """The first string after every string starting with ``prefix``, in code
    point order (which is the "C" collation's UTF-8 byte order)."""
    while prefix:
        code = ord(prefix[-1]) + 1
        if code == 0xD800:
            code = 0xE000  # surrogates cannot be stored
        if code <= 0x10FFFF:
            return prefix[:-1] + chr(code)
        prefix = prefix[:-1]
    return None


class PostgresBackend(Backend):
    """``conn`` is a libpq URL (``postgresql://user@host/db?schema=alsek``), a
    ``psycopg_pool.ConnectionPool``, or a LazyClient of either; None means
    libpq's defaults (``PGHOST``, ``PGUSER``, ...). Nothing connects until the
    first operation. ``schema`` (else the URL's ``schema=``, else "alsek") is
    the PostgreSQL schema holding the tables, made by ``alsek db init``."""

    blocking_claim = True

    def __init__(
        self,
        conn: str | ConnectionPool[Conn] | LazyClient | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        serializer: Serializer | None = None,
        schema: str | None = None,
        pool_size: int = 10,
    ) -> None:
        super().__init__(namespace=namespace, serializer=serializer)
        self._setup(Database("" if conn is None else conn, schema, pool_size))

    def _setup(self, db: Database) -> None:
        self.db = db
        self._kv = queries("kv.sql", db.schema)
        self._q = queries("queue.sql", db.schema)
        self._pruned_at = time.monotonic()

    @property
    def schema(self) -> str:
        return self.db.schema

    def __getstate__(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "serializer": self.serializer, "db": self.db.state()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        Backend.__init__(self, namespace=state["namespace"], serializer=state["serializer"])
        self._setup(Database(**state["db"]))

    def __repr__(self) -> str:
        return f"PostgresBackend({self.db.url()!r}, namespace={self.namespace!r})"

    def init_schema(self) -> list[Migration]:
        """Create this backend's schema or bring it up to date, as ``alsek db
        init`` does, for programs that set up their own database (safe to
        repeat and to race: the migrations hold an advisory lock). Returns the
        migrations applied."""
        with self.db.connect() as conn:
            return schema_lib.init(conn, self.schema)

    def _one(self, query: str, **params: Any) -> tuple[Any, ...] | None:
        params["namespace"] = self.namespace
        return self.db.run(lambda conn: conn.execute(query, params).fetchone())

    def _all(self, query: str, **params: Any) -> list[tuple[Any, ...]]:
        params["namespace"] = self.namespace
        return self.db.run(lambda conn: conn.execute(query, params).fetchall())

    def _count(self, query: str, **params: Any) -> int:
        params["namespace"] = self.namespace
        return self.db.run(lambda conn: conn.execute(query, params).rowcount)

    # -- key-value --------------------------------------------------------

    def exists(self, name: str) -> bool:
        return self._one(self._kv["exists"], name=name) is not None

    def set(self, name: str, value: Any, nx: bool = False, ttl: int | None = None) -> None:
        data = self.serializer.dumps(value)
        if nx:
            if self._one(self._kv["set_nx"], name=name, value=data, ttl=ttl) is None:
                raise KeyExistsError(f"name {name!r} already exists")
        else:
            self._count(self._kv["set"], name=name, value=data, ttl=ttl)
        if ttl is not None and time.monotonic() - self._pruned_at > PRUNE_INTERVAL_S:
            self._pruned_at = time.monotonic()
            self._count(self._kv["prune"])

    def get(self, name: str, default: Any = None) -> Any:
        row = self._one(self._kv["get"], name=name)
        return default if row is None else self.serializer.loads(row[0])

    def delete(self, name: str, missing_ok: bool = False) -> None:
        row = self._one(self._kv["delete"], name=name)
        if (row is None or not row[0]) and not missing_ok:
            raise KeyError(f"no such name: {name!r}")

    def delete_if(self, name: str, value: Any) -> bool:
        data = self.serializer.dumps(value)
        return self._one(self._kv["delete_if"], name=name, value=data) is not None

    def scan(self, pattern: str | None = None) -> Iterator[str]:
        like, lo, hi = like_pattern(pattern)
        return iter([row[0] for row in self._all(self._kv["scan"], like=like, lo=lo, hi=hi)])

    def count(self, pattern: str | None = None) -> int:
        like, lo, hi = like_pattern(pattern)
        row = self._one(self._kv["count"], like=like, lo=lo, hi=hi)
        return int(row[0]) if row else 0

    # -- queue ------------------------------------------------------------

    def _channel(self, queue: str) -> str:
        return channel_name(self.schema, self.namespace, f"queue:{queue}")

    def submit(self, envelopes: Iterable[Envelope], connection: Conn | None = None) -> int:
        """With ``connection`` (a psycopg Connection), enqueue inside that
        connection's current transaction without committing: the messages
        exist, and claimers are woken, only if the caller commits."""
        envelopes = list(envelopes)
        if not envelopes:
            return 0
        params = {
            "namespace": self.namespace,
            "queues": [e.queue for e in envelopes],
            "uuids": [e.uuid for e in envelopes],
            "priorities": [e.priority for e in envelopes],
            "ready_ats": [e.ready_at for e in envelopes],
            "payloads": [e.payload for e in envelopes],
            "channels": sorted({self._channel(e.queue) for e in envelopes}),
        }
        if connection is not None:
            self.db.check(connection)
            row = connection.execute(self._q["submit"], params).fetchone()
        else:
            row = self.db.run(lambda conn: conn.execute(self._q["submit"], params).fetchone())
        return int(row[0]) if row else 0

    def claim(
        self, queues: Sequence[str], limit: int, lease_ms: int, wait_ms: int = 0
    ) -> list[Delivery]:
        """With ``wait_ms``, block until a NOTIFY on one of the queues, the next
        delayed message's ready_at, or the wait's end, whichever is first."""
        if not queues or limit <= 0:
            return []
        if wait_ms <= 0:
            return self._claim(queues, limit, lease_ms)
        deadline = time.monotonic() + wait_ms / 1000
        listener = self.db.hub().subscribe([self._channel(q) for q in queues])
        try:
            while True:
                claimed = self._claim(queues, limit, lease_ms)
                remaining = int((deadline - time.monotonic()) * 1000)
                if claimed or remaining <= 0:
                    return claimed
                row = self._one(self._q["next_due"], queues=list(queues))
                if row is not None and row[0] is not None:
                    remaining = min(remaining, max(1, int(row[0])))
                listener.wait(remaining)
        finally:
            listener.close()

    def _claim(self, queues: Sequence[str], limit: int, lease_ms: int) -> list[Delivery]:
        rows = self._all(self._q["claim"], queues=list(queues), limit=limit, lease_ms=lease_ms)
        promoted, claimed = rows[0][0], [row for row in rows if row[1] is not None]
        if promoted and len(claimed) < limit:  # what it promoted is claimable from now on
            more = self._all(
                self._q["claim"], queues=list(queues), limit=limit - len(claimed), lease_ms=lease_ms
            )
            claimed += [row for row in more if row[1] is not None]
        claimed.sort(key=lambda row: (row[6], row[7], row[8]))  # queue order, priority, id
        return [Delivery(row[1], row[2], bytes(row[3]), row[4], row[5]) for row in claimed]

    def ack(self, queue: str, uuid: str) -> None:
        self._count(self._q["ack"], queue=queue, uuid=uuid)

    def ack_many(self, queue: str, uuids: Sequence[str]) -> None:
        self._count(self._q["ack_many"], queue=queue, uuids=list(uuids))

    def extend_lease(self, delivery: Delivery, lease_ms: int) -> bool:
        return self._count(self._q["extend_lease"], lease_ms=lease_ms, **_lease(delivery)) == 1

    def reschedule(self, delivery: Delivery, payload: bytes, ready_at: int) -> bool:
        row = self._one(
            self._q["reschedule"],
            payload=payload,
            ready_at=ready_at,
            channel=self._channel(delivery.queue),
            **_lease(delivery),
        )
        return bool(row and row[0])

    def dead_letter(self, delivery: Delivery, payload: bytes) -> bool:
        return self._count(self._q["dead_letter"], payload=payload, **_lease(delivery)) == 1

    def contains(self, queue: str, uuid: str) -> bool:
        return self._one(self._q["contains"], queue=queue, uuid=uuid) is not None

    def queue_names(self) -> list[str]:
        return [row[0] for row in self._all(self._q["queue_names"])]

    def counts(self, queue: str) -> QueueCounts:
        row = self._one(self._q["counts"], queue=queue)
        assert row is not None  # an aggregate always returns its row
        return QueueCounts(ready=row[2], delayed=row[1], in_flight=row[0], dead=row[3])

    def messages(self, queue: str, dead: bool = False) -> Iterator[QueuedMessage]:
        rows = self._all(self._q["dead_messages" if dead else "messages"], queue=queue)
        for uuid, payload, ready_at, state in rows:
            yield QueuedMessage(queue, uuid, bytes(payload), state, ready_at)

    def remove_dead(self, queue: str, uuid: str) -> bool:
        return self._count(self._q["remove_dead"], queue=queue, uuid=uuid) == 1

    def purge(self, queue: str) -> int:
        return self._count(self._q["purge"], queue=queue)

    # -- wake-ups ---------------------------------------------------------

    def notify(self, channel: str) -> None:
        name = channel_name(self.schema, self.namespace, channel)
        self.db.run(lambda conn: conn.execute("SELECT pg_notify(%s, '')", [name]))

    def listen(self, channels: Sequence[str]) -> Subscription:
        return self.db.hub().subscribe([channel_name(self.schema, self.namespace, c) for c in channels])

    def status_tracker(self) -> BaseStatusTracker:
        from alsek_backends.postgres.status import PostgresStatusTracker

        return PostgresStatusTracker(self)

    def result_store(self) -> ResultStore:
        from alsek_backends.postgres.result import PostgresResultStore

        return PostgresResultStore(self)

    def close(self) -> None:
        self.db.close()


def _lease(delivery: Delivery) -> dict[str, Any]:
    return {"queue": delivery.queue, "uuid": delivery.uuid, "token": delivery.token}

