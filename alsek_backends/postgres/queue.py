"""The ``Queue`` port on PostgreSQL: every operation one statement of
queue.sql (claims with ``FOR UPDATE SKIP LOCKED``), idle claimers woken by
LISTEN/NOTIFY.

Finished messages leave the queue table at once: ``ack`` deletes the row and
``dead_letter`` moves it to ``dead_letters``, so claims never wade through
history, and there is no retention setting to tune. Leases use the database
clock, so workers on several hosts agree on when a lease ends; ``ready_at``
is the submitter's clock, as the Envelope says.

Submits commit durably. Lease operations (claim, ack, extend, reschedule,
dead-letter) commit without waiting for the WAL flush: a server crash can
only forget the latest of them, which redelivers a message, as
at-least-once allows (queue.sql explains).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import psycopg

from alsek_backends.postgres.connection import Database, Row, Statements
from alsek_backends.postgres.limits import PostgresLimits
from alsek_backends.postgres.listen import channel_name
from alsek_backends.postgres.schema import Conn
from alsek_core.errors import ConfigError
from alsek_core.ports import (
    PARKED,
    ChordJoin,
    Delivery,
    Envelope,
    Queue,
    QueueCounts,
    QueuedMessage,
    Settlement,
)
from alsek_core.result import result_name
from alsek_core.status import status_name


class PostgresQueue(PostgresLimits, Queue):
    """The queues of ``namespace`` in ``db``'s schema."""

    blocking_claim = True

    def __init__(self, db: Database, namespace: str) -> None:
        self.db = db
        self.namespace = namespace
        self._q = Statements(db, "queue.sql")
        self._stores = Statements(db, "status_results.sql")

    def _channel(self, queue: str) -> str:
        return channel_name(self.db.schema, self.namespace, f"queue:{queue}")

    def _submit_params(self, envelopes: Iterable[Envelope]) -> dict[str, Any] | None:
        envelopes = list(envelopes)
        if not envelopes:
            return None
        return {
            "namespace": self.namespace,
            "queues": [e.queue for e in envelopes],
            "uuids": [e.uuid for e in envelopes],
            "priorities": [e.priority for e in envelopes],
            "ready_ats": [e.ready_at for e in envelopes],
            "payloads": [e.payload for e in envelopes],
            "channels": sorted({self._channel(e.queue) for e in envelopes}),
        }

    def submit(self, envelopes: Iterable[Envelope]) -> int:
        params = self._submit_params(envelopes)
        if params is None:
            return 0
        row = self._q.row("submit", **params)
        return int(row.added) if row else 0

    def submit_in_transaction(self, envelopes: Iterable[Envelope], connection: Conn) -> int:
        """Enqueue inside ``connection``'s current transaction (a psycopg
        Connection to this database) without committing: the messages exist,
        and claimers are woken, only if the caller commits."""
        if not isinstance(connection, psycopg.Connection):
            raise ConfigError(
                f"submit_in_transaction needs a psycopg Connection, got {type(connection).__name__}"
            )
        params = self._submit_params(envelopes)
        if params is None:
            return 0
        self.db.check(connection)
        rows = self._q.execute(connection, "submit", params)
        return int(rows[0].added) if rows else 0

    def submit_unique(self, envelope: Envelope, key: str, window_ms: int | None) -> str | None:
        """One transaction: an advisory lock on the key, then one statement
        that reads the holder and, if there is none, queues and takes the key."""
        params = {
            "namespace": self.namespace, "queue": envelope.queue, "key": key,
            "uuid": envelope.uuid, "priority": envelope.priority, "ready_at": envelope.ready_at,
            "payload": envelope.payload, "window_ms": window_ms,
            "channel": self._channel(envelope.queue),
        }

        def work(conn: Conn) -> Row:
            with conn.transaction():
                self._q.execute(conn, "lock_unique", params)
                [row] = self._q.execute(conn, "submit_unique", params)
                return row

        row = self.db.run(work)
        if row.holder is not None:
            return str(row.holder)
        return None if row.added else envelope.uuid

    def release_unique(self, queue: str, key: str, uuid: str) -> bool:
        return self._q.rowcount(
            "release_unique", namespace=self.namespace, queue=queue, key=key, uuid=uuid
        ) == 1

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
                row = self._q.row("next_due", namespace=self.namespace, queues=list(queues))
                if row is not None and row.due_in_ms is not None:
                    remaining = min(remaining, max(1, int(row.due_in_ms)))
                listener.wait(remaining)
        finally:
            listener.close()

    def _claim(self, queues: Sequence[str], limit: int, lease_ms: int) -> list[Delivery]:
        params = {"namespace": self.namespace, "queues": list(queues), "lease_ms": lease_ms}
        rows = self._q.rows("claim", limit=limit, **params)
        promoted, claimed = rows[0].promoted, [row for row in rows if row.uuid is not None]
        if promoted and len(claimed) < limit:  # what it promoted is claimable from now on
            more = self._q.rows("claim", limit=limit - len(claimed), **params)
            claimed += [row for row in more if row.uuid is not None]
        claimed.sort(key=lambda row: (row.queue_order, row.priority, row.id))
        return [Delivery(r.queue, r.uuid, bytes(r.payload), r.token, r.deliveries) for r in claimed]

    def _lease(self, delivery: Delivery) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "queue": delivery.queue,
            "uuid": delivery.uuid,
            "token": delivery.token,
        }

    def ack(self, queue: str, uuid: str) -> None:
        self._q.rowcount("ack", namespace=self.namespace, queue=queue, uuid=uuid)

    def ack_many(self, queue: str, uuids: Sequence[str]) -> None:
        self._q.rowcount("ack_many", namespace=self.namespace, queue=queue, uuids=list(uuids))

    def extend_lease(self, delivery: Delivery, lease_ms: int) -> bool:
        return self._q.rowcount("extend_lease", lease_ms=lease_ms, **self._lease(delivery)) == 1

    def reschedule(self, delivery: Delivery, payload: bytes, ready_at: int) -> bool:
        row = self._q.row(
            "reschedule",
            payload=payload,
            ready_at=ready_at,
            channel=self._channel(delivery.queue),
            **self._lease(delivery),
        )
        return bool(row and row.moved)

    def dead_letter(self, delivery: Delivery, payload: bytes) -> bool:
        return self._q.rowcount("dead_letter", payload=payload, **self._lease(delivery)) == 1

    @property
    def atomic_settle(self) -> bool:
        return True

    def settle(self, settlements: Sequence[Settlement]) -> list[bool]:
        """Each outcome in one transaction with its message's removal, release
        or dead letter; the batch in one transaction. Statuses and results go
        to the statuses/results tables (their home on PostgreSQL), each
        NOTIFYing its waiters on commit. A lease step makes the transaction
        commit asynchronously, as queue.sql says: a server crash can forget
        it whole, outcome and removal together, and the message runs again.
        The successes take a few statements for the whole batch (results,
        callbacks, statuses, removals per queue), sent in pipeline mode, one
        round trip; a retry or failure then runs on its own, its reply
        saying whether its lease held. Chord joins come last, in one more
        pipeline: counting one locks its chord's count until the commit, and
        every member of the chord waits on that lock."""
        def work(conn: Conn) -> list[bool]:
            with conn.transaction():
                successes = [s for s in settlements if s.ready_at is None and not s.dead]
                if successes:
                    removals: dict[str, list[str]] = {}
                    for settlement in successes:
                        removals.setdefault(settlement.delivery.queue, []).append(settlement.delivery.uuid)
                    with conn.pipeline():
                        self._write_outcomes(conn, successes)
                        for queue, uuids in removals.items():
                            conn.execute(self._q.sql["ack_many"],
                                         {"namespace": self.namespace, "queue": queue, "uuids": uuids})
                settled = [True if s.ready_at is None and not s.dead else self._settle_release(conn, s)
                           for s in settlements]
                joins = sorted((s.join for s in settlements if s.join is not None),
                               key=lambda join: (join.queue, join.callback))  # one lock order: no deadlock
                if joins:
                    with conn.pipeline():
                        for join in joins:
                            conn.execute(self._q.sql["join"], self._join_params(join))
                return settled

        return self.db.run(work)

    def _write_outcomes(self, conn: Conn, settlements: Sequence[Settlement]) -> None:
        """Their results (the first one per uuid stays), callbacks and
        statuses (the last one per uuid), inside the caller's transaction."""
        results = {s.result.uuid: s.result for s in reversed(settlements) if s.result is not None}
        statuses = {s.status.uuid: s.status for s in settlements if s.status is not None}
        callbacks = [s.callback for s in settlements if s.callback is not None]
        if results:
            writes = list(results.values())
            channels = [result_name(u) for w in writes for u in (w.uuid, w.progenitor_uuid) if u]
            conn.execute(self._stores.sql["add_results"], {
                "namespace": self.namespace, "uuids": [w.uuid for w in writes],
                "progenitor_uuids": [w.progenitor_uuid for w in writes], "results": [w.data for w in writes],
                "ttls": [w.ttl for w in writes], "channels": [self._store_channel(c) for c in channels],
            })
        if callbacks:
            conn.execute(self._q.sql["submit"], self._submit_params(callbacks))
        if statuses:
            writes = list(statuses.values())
            conn.execute(self._stores.sql["set_statuses"], {
                "namespace": self.namespace, "uuids": [w.uuid for w in writes],
                "statuses": [w.record["status"] for w in writes], "queues": [w.record["queue"] for w in writes],
                "task_names": [w.record["task_name"] for w in writes],
                "updated_ats": [w.record["updated_at"] for w in writes], "ttls": [w.ttl for w in writes],
                "channels": [self._store_channel(status_name(w.uuid)) for w in writes],
            })

    def _settle_release(self, conn: Conn, settlement: Settlement) -> bool:
        """A retry or failure: its status, then its release or dead letter."""
        self._write_outcomes(conn, [settlement])
        delivery = settlement.delivery
        if settlement.ready_at is not None:
            [row] = self._q.execute(conn, "reschedule", {
                "payload": settlement.payload, "ready_at": settlement.ready_at,
                "channel": self._channel(delivery.queue), **self._lease(delivery)})
            return bool(row.moved)
        params = {"payload": settlement.payload, **self._lease(delivery)}
        return conn.execute(self._q.sql["dead_letter"], params).rowcount == 1

    def _join_params(self, join: ChordJoin) -> dict[str, Any]:
        return {"namespace": self.namespace, "queue": join.queue, "callback": join.callback, "idx": join.index,
                "data": join.data, "size": join.size, "drop": join.drop, "parked": PARKED,
                "channel": self._channel(join.queue)}

    def joined(self, queue: str, callback: str) -> dict[int, bytes]:
        rows = self._q.rows("joined", namespace=self.namespace, queue=queue, callback=callback)
        return {row.idx: bytes(row.data) for row in rows}

    def forget_join(self, queue: str, callback: str) -> None:
        self._q.rowcount("forget_join", namespace=self.namespace, queue=queue, callback=callback)

    def _store_channel(self, name: str) -> str:
        return channel_name(self.db.schema, self.namespace, name)

    def contains(self, queue: str, uuid: str) -> bool:
        return self._q.row("contains", namespace=self.namespace, queue=queue, uuid=uuid) is not None

    def queue_names(self) -> list[str]:
        return [row.queue for row in self._q.rows("queue_names", namespace=self.namespace)]

    def counts(self, queue: str) -> QueueCounts:
        row: Row = self._q.row("counts", namespace=self.namespace, queue=queue)
        return QueueCounts(ready=row.ready, delayed=row.delayed, in_flight=row.in_flight, dead=row.dead)

    def messages(self, queue: str, dead: bool = False) -> Iterator[QueuedMessage]:
        name = "dead_messages" if dead else "messages"
        for row in self._q.rows(name, namespace=self.namespace, queue=queue):
            yield QueuedMessage(queue, row.uuid, bytes(row.payload), row.state, row.ready_at)

    def remove_dead(self, queue: str, uuid: str) -> bool:
        return self._q.rowcount("remove_dead", namespace=self.namespace, queue=queue, uuid=uuid) == 1

    def purge(self, queue: str) -> int:
        return self._q.rowcount("purge", namespace=self.namespace, queue=queue)
