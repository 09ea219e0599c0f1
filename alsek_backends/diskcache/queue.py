"""The ``Queue`` port natively on SQLite, with the semantics of
``alsek_core/kv_queue.py``: lower priority first, then FIFO; a claim leases up
to ``limit`` messages in one transaction; a lost lease makes extend, reschedule
and dead_letter return False. The tables and why they look so are in queue.sql.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from alsek_backends.diskcache.connection import QUERIES, DiskCacheConnection, transaction
from alsek_backends.diskcache.limits import DiskCacheLimits
from alsek_core.clock import now_ms
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
from alsek_core.result import record_names
from alsek_core.status import status_name


def _seconds(ttl_ms: int | None) -> float | None:
    return None if ttl_ms is None else ttl_ms / 1000


class SQLiteQueue(DiskCacheLimits, Queue):
    """The queues of ``namespace`` in the queue file of ``connection``'s directory
    (limits in the cache beside it: :mod:`.limits`)."""

    #: No native wake-up: SQLite cannot signal another process. The consumer
    #: backs off between empty claims, and an empty claim only reads.
    blocking_claim = False

    def __init__(self, connection: DiskCacheConnection, namespace: str) -> None:
        self.connection = connection
        self.namespace = namespace

    def _db(self) -> sqlite3.Connection:
        """This thread's connection to the queue file."""
        return self.connection.queue_db.get()

    def _params(self, queue: str, **more: Any) -> dict[str, Any]:
        return {"namespace": self.namespace, "queue": queue, **more}

    def submit(self, envelopes: Iterable[Envelope]) -> int:
        """Encoded before the write lock is taken, so other writers wait for
        the inserts only. One message is one statement, which SQLite runs as
        a transaction of its own: a BEGIN and a COMMIT of ours around it
        would only add two calls."""
        rows = self._rows(envelopes)
        conn = self._db()
        if len(rows) == 1:
            return conn.execute(QUERIES["submit"], rows[0]).rowcount
        with transaction(conn):
            before = conn.total_changes
            conn.executemany(QUERIES["submit"], rows)
            return conn.total_changes - before

    def submit_unique(self, envelope: Envelope, key: str, window_ms: int | None) -> str | None:
        """One transaction: the write lock is taken first, so the holder read
        and the enqueue see no other submit in between."""
        conn = self._db()
        with transaction(conn):
            now = now_ms()
            params = self._params(envelope.queue, key=key, uuid=envelope.uuid, now=now)
            held = conn.execute(QUERIES["unique_holder"], params).fetchone()
            if held is not None:
                return str(held[0])
            if conn.execute(QUERIES["contains"], params).fetchone()[0]:
                return envelope.uuid
            conn.executemany(QUERIES["submit"], self._rows([envelope]))
            expires_at = None if window_ms is None else now + window_ms
            conn.execute(QUERIES["take_unique"], {**params, "expires_at": expires_at})
        return None

    def release_unique(self, queue: str, key: str, uuid: str) -> bool:
        params = self._params(queue, key=key, uuid=uuid)
        return self._db().execute(QUERIES["release_unique"], params).rowcount == 1

    def _rows(self, envelopes: Iterable[Envelope]) -> list[dict[str, Any]]:
        now = now_ms()
        return [
            self._params(e.queue, uuid=e.uuid, priority=e.priority, ready_at=e.ready_at, payload=e.payload, now=now)
            for e in envelopes
        ]

    def claim(
        self, queues: Sequence[str], limit: int, lease_ms: int, wait_ms: int = 0
    ) -> list[Delivery]:
        claimed: list[Delivery] = []
        if limit <= 0:
            return claimed
        conn = self._db()
        now = now_ms()
        due = [q for q in queues if conn.execute(QUERIES["has_due"], self._params(q, now=now)).fetchone()[0]]
        if not due:
            return claimed
        with transaction(conn):
            now = now_ms()  # the lock may have taken a while
            for queue in due:
                conn.execute(QUERIES["wake"], self._params(queue, now=now))
                params = self._params(queue, lease_until=now + lease_ms, limit=limit - len(claimed))
                rows = sorted(conn.execute(QUERIES["claim"], params).fetchall())
                claimed += [Delivery(queue, *row[2:]) for row in rows]
                if len(claimed) >= limit:
                    break
        return claimed

    def ack(self, queue: str, uuid: str) -> None:
        self._db().execute(QUERIES["ack"], self._params(queue, uuid=uuid))

    def ack_many(self, queue: str, uuids: Sequence[str]) -> None:
        conn = self._db()
        with transaction(conn):  # one write lock for the batch, not one per message
            conn.executemany(QUERIES["ack"], [self._params(queue, uuid=uuid) for uuid in uuids])

    def _holder(self, delivery: Delivery) -> dict[str, Any]:
        """Parameters that match the message only while ``delivery``'s lease is live."""
        return self._params(delivery.queue, uuid=delivery.uuid, token=delivery.token, now=now_ms())

    def extend_lease(self, delivery: Delivery, lease_ms: int) -> bool:
        params = self._holder(delivery)
        params["lease_until"] = params["now"] + lease_ms
        return self._db().execute(QUERIES["extend_lease"], params).rowcount == 1

    def reschedule(self, delivery: Delivery, payload: bytes, ready_at: int) -> bool:
        """Delete and re-insert, so the message goes to the back of its priority
        with a fresh delivery count."""
        return self._take_and_write(delivery, "submit", payload, ready_at)

    def dead_letter(self, delivery: Delivery, payload: bytes, join: ChordJoin | None = None) -> bool:
        """With a chord member's ``join``, in the same transaction."""
        return self._take_and_write(delivery, "bury", payload, join=join)

    def _take_and_write(self, delivery: Delivery, query: str, payload: bytes, ready_at: int | None = None,
                        join: ChordJoin | None = None) -> bool:
        """In one transaction: take the message while ``delivery`` still holds it,
        then write it back with ``query`` (keeping its ready_at unless given)."""
        conn = self._db()
        with transaction(conn):
            if join is not None:  # even with the lease lost: its holder's settle finds it recorded
                self._join(conn, join)
            params = self._holder(delivery)
            taken = conn.execute(QUERIES["take_leased"], params).fetchall()
            if not taken:
                return False
            [(priority, old_ready_at)] = taken
            params.update(priority=priority, ready_at=old_ready_at if ready_at is None else ready_at, payload=payload)
            conn.execute(QUERIES[query], params)
        return True

    def _join(self, conn: sqlite3.Connection, join: ChordJoin) -> None:
        """A chord member's share (``ports.ChordJoin``), inside the caller's
        transaction: the write lock makes record, count and release one step."""
        params = self._params(join.queue, callback=join.callback)
        if join.drop:
            conn.execute(QUERIES["ack"], self._params(join.queue, uuid=join.callback))
        if conn.execute(QUERIES["join_record"], {**params, "idx": join.index, "data": join.data}).rowcount == 0:
            return
        if conn.execute(QUERIES["join_count"], params).fetchone()[0] == join.size:
            conn.execute(QUERIES["release"], {**params, "now": now_ms(), "parked": PARKED})

    def joined(self, queue: str, callback: str) -> dict[int, bytes]:
        rows = self._db().execute(QUERIES["joined"], self._params(queue, callback=callback))
        return {idx: bytes(data) for idx, data in rows}

    def forget_join(self, queue: str, callback: str) -> None:
        conn = self._db()
        with transaction(conn):
            conn.execute(QUERIES["forget_join"], self._params(queue, callback=callback))
            conn.execute(QUERIES["forget_count"], self._params(queue, callback=callback))

    #: See ``settle``: what readers see together is one transaction.
    atomic_settle = True

    def settle(self, settlements: Sequence[Settlement]) -> list[bool]:
        """Statuses and results live in the cache's database, messages in the
        queue file: two SQLite files, so two transactions, ordered so that
        readers never see them disagree and a crash never loses an outcome.
        A result and its status are written in one cache transaction (a reader
        sees both or neither); on success the callback and the removal follow
        in the queue's transaction (with a chord member's join), so a crash
        in between only reruns the message. The successes of a batch share
        those two transactions (and now and then delete the cache's expired
        rows, see EXPIRE_INTERVAL_S). A failure's dead letter is committed
        inside the cache transaction, before its status FAILED becomes
        visible."""
        successes = [s for s in settlements if s.ready_at is None and not s.dead]
        if successes:
            with self.connection.cache.transact():
                for settlement in successes:
                    self._write_outcome(settlement)
            conn = self._db()
            with transaction(conn):
                callbacks = [s.callback for s in successes if s.callback is not None]
                if callbacks:  # skipped if a rerun submitted them already
                    conn.executemany(QUERIES["submit"], self._rows(callbacks))
                for settlement in successes:
                    if settlement.join is not None:
                        self._join(conn, settlement.join)
                conn.executemany(QUERIES["ack"], [self._params(s.delivery.queue, uuid=s.delivery.uuid)
                                                  for s in successes])
            self.connection.expire()
        return [True if s.ready_at is None and not s.dead else self._settle_release(s) for s in settlements]

    def _write_outcome(self, settlement: Settlement) -> None:
        """Its result and status, inside the caller's cache transaction."""
        cache, result, status = self.connection.cache, settlement.result, settlement.status
        if result is not None:
            for name in record_names(result.uuid, result.progenitor_uuid):
                cache.add(self._key(name), result.data, expire=_seconds(result.ttl))
        if status is not None:
            cache.set(self._key(status_name(status.uuid)), status.data, expire=_seconds(status.ttl))

    def _settle_release(self, settlement: Settlement) -> bool:
        """A retry or a failure: its status, then its release or dead letter."""
        with self.connection.cache.transact():
            self._write_outcome(settlement)
            if settlement.dead:
                return self.dead_letter(settlement.delivery, settlement.payload or b"", settlement.join)
        return self.reschedule(settlement.delivery, settlement.payload or b"", settlement.ready_at or 0)

    def _key(self, name: str) -> str:
        return f"{self.namespace}:{name}"

    def contains(self, queue: str, uuid: str) -> bool:
        row = self._db().execute(QUERIES["contains"], self._params(queue, uuid=uuid))
        return bool(row.fetchone()[0])

    def queue_names(self) -> list[str]:
        rows = self._db().execute(QUERIES["queue_names"], {"namespace": self.namespace})
        return [name for (name,) in rows]

    def counts(self, queue: str) -> QueueCounts:
        params = self._params(queue, now=now_ms())
        ready, delayed, in_flight, dead = self._db().execute(QUERIES["counts"], params).fetchone()
        return QueueCounts(ready=ready, delayed=delayed, in_flight=in_flight, dead=dead)

    def messages(self, queue: str, dead: bool = False) -> Iterator[QueuedMessage]:
        """Read in full before yielding: no statement stays open while the
        caller acts on the listing (say, removes what it is shown)."""
        conn = self._db()
        if dead:
            rows = conn.execute(QUERIES["dead_messages"], self._params(queue)).fetchall()
            for uuid, payload, ready_at in rows:
                yield QueuedMessage(queue, uuid, payload, "dead", ready_at)
            return
        now = now_ms()
        rows = conn.execute(QUERIES["messages"], self._params(queue, now=now)).fetchall()
        for uuid, payload, ready_at, leased in rows:
            state = "in_flight" if leased else "delayed" if ready_at > now else "ready"
            yield QueuedMessage(queue, uuid, payload, state, ready_at)

    def remove_dead(self, queue: str, uuid: str) -> bool:
        conn = self._db()
        return conn.execute(QUERIES["remove_dead"], self._params(queue, uuid=uuid)).rowcount == 1

    def purge(self, queue: str) -> int:
        conn = self._db()
        with transaction(conn):
            conn.execute(QUERIES["purge_unique"], self._params(queue))
            return int(conn.execute(QUERIES["purge"], self._params(queue)).rowcount)
