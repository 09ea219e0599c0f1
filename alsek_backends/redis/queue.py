"""The ``Queue`` port on Redis: every operation is one call of ``queue.lua``
(whose header documents the keys), so each is atomic and one round trip.

Queue names are also kept in a set, ``{<namespace>}:queues``, for
``queue_names()``: a set rather than a SCAN, and outside the queues' own
slots, so it is written beside the script rather than by it.
"""

from __future__ import annotations

import collections
import itertools
import os
import secrets
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, cast

import redis
from redis.exceptions import NoScriptError

from alsek_backends.redis.connection import Client, RedisConnection, translated
from alsek_backends.redis.keys import QueueKeys, queue_prefix
from alsek_backends.redis.limits import RedisLimits
from alsek_backends.redis.scripts import Script
from alsek_backends.redis.settle import Command, Plain, commands, queue_step, writes
from alsek_backends.redis.wakeups import PubSubListener
from alsek_core.errors import ValidationError
from alsek_core.ports import Delivery, Envelope, Queue, QueueCounts, QueuedMessage, Settlement

QUEUE = Script("queue.lua")
QUEUE_SHA = QUEUE.sha
WRITES = Script("writes.lua")
#: Priorities are zset scores, which are doubles: exact up to 2**53.
MAX_PRIORITY = 2**53
#: Messages per round trip when a listing fetches payloads.
PAGE = 500
#: Messages per script call of a submit: a bounded call keeps other clients'
#: latency and the server's Lua heap small (and the script's unpack() of two
#: values per message within Lua's 8,000-slot stack).
SUBMIT_CHUNK = 1000


#: How often a submitting process re-adds its queues to the registry (one SADD
#: in the submit's own round trip): queue_names() prunes queues it sees empty.
REGISTRY_REFRESH_S = 10.0


class RedisQueue(RedisLimits, Queue):
    """Native queue operations on ``connection``'s client, for ``namespace``."""

    blocking_claim = True

    def __init__(self, connection: RedisConnection, namespace: str) -> None:
        self.connection = connection
        self.namespace = namespace
        # When this process last put each queue in the registry (see REGISTRY_REFRESH_S).
        self._registered: dict[str, float] = {}
        self._local = threading.local()
        # Every standing subscription, with the thread and process it serves.
        self._waiters: list[tuple[threading.Thread, int, PubSubListener]] = []
        self._waiters_lock = threading.Lock()
        # Every thread's one-by-one submit connection (``_submitter``), by pid, for ``close``.
        self._submitters: list[tuple[int, Any]] = []

    def __getstate__(self) -> dict[str, Any]:
        """What another process needs; subscriptions and registrations stay here."""
        return {"connection": self.connection, "namespace": self.namespace}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["connection"], state["namespace"])  # type: ignore[misc]

    @property
    def conn(self) -> Client:
        return self.connection.client

    @property
    def where(self) -> str:
        return self.connection.where

    @property
    def registry_key(self) -> str:
        return f"{{{self.namespace}}}:queues"

    def keys(self, queue: str) -> QueueKeys:
        return QueueKeys(self.namespace, queue)

    def _run(self, queue: str, command: str, *args: Any) -> Any:
        """One command of queue.lua."""
        return QUEUE(self.conn, queue_prefix(self.namespace, queue), command, *args)

    @translated
    def submit(self, envelopes: Iterable[Envelope]) -> int:
        chunks = self._chunks(envelopes)
        first = next(chunks, None)
        if first is None:
            return 0
        second = next(chunks, None)
        if second is None:
            return self._submit_chunk(*first)
        rest = itertools.chain((first, second), chunks)
        conn = self.conn
        if isinstance(conn, redis.RedisCluster):  # a connection per node: one by one
            return sum(self._submit_chunk(*chunk) for chunk in rest)
        return self._stream(conn.connection_pool, rest)

    def _stream(self, pool: redis.ConnectionPool, chunks: Iterator[tuple[str, list[Any]]]) -> int:
        """Pipelining by hand on one connection: each chunk is sent as soon as it
        is full and its reply read two chunks later, so Redis runs the script on
        one chunk while the caller encodes the next (the two costs would add up
        otherwise). One connection keeps the chunks in order. A chunk whose
        reply is lost with the connection, or that met flushed scripts, is sent
        again the ordinary way: its messages already queued are skipped."""
        connection = None
        sent: collections.deque[tuple[str, list[Any] | None]] = collections.deque()
        added = 0
        try:
            connection = pool.get_connection()
            for queue, args in chunks:
                # Noted as sent before sending: a send that fails is sent again.
                if self._registry_due(queue):
                    sent.append((queue, None))
                    connection.send_command("SADD", self.registry_key, queue)
                sent.append((queue, args))
                prefix = queue_prefix(self.namespace, queue)
                connection.send_command("EVALSHA", QUEUE_SHA, 1, prefix, "submit", *args)
                while len(sent) > 2:
                    added += self._confirm(connection, sent)
            while sent:
                added += self._confirm(connection, sent)
        except (redis.ConnectionError, redis.TimeoutError):
            if connection is not None:
                connection.disconnect()
            unconfirmed = [(queue, args) for queue, args in sent if args is not None]
            sent.clear()
            for queue, args in itertools.chain(unconfirmed, chunks):
                added += self._submit_chunk(queue, args)
        finally:
            if connection is not None:
                if sent:  # stopped early: unread replies would confuse the next user
                    connection.disconnect()
                pool.release(connection)
        return added

    def _confirm(
        self, connection: Any, sent: collections.deque[tuple[str, list[Any] | None]]
    ) -> int:
        """Read the oldest reply; how many messages it says were new."""
        queue, args = sent[0]
        try:
            reply = connection.read_response()
        except NoScriptError:
            sent.popleft()
            return int(self._run(queue, "submit", *cast(list[Any], args)))
        sent.popleft()
        if args is None:
            self._registered[queue] = time.monotonic()
            return 0
        return int(reply)

    @staticmethod
    def _chunks(envelopes: Iterable[Envelope]) -> Iterator[tuple[str, list[Any]]]:
        """(queue, script arguments) for every SUBMIT_CHUNK messages of a queue,
        each as soon as it is full, then what is left of each queue."""
        pending: dict[str, list[Any]] = {}
        for e in envelopes:
            if not -MAX_PRIORITY <= e.priority <= MAX_PRIORITY:
                raise ValidationError(f"priority {e.priority} is beyond ±2**53")
            args = pending.setdefault(e.queue, [])
            args += (e.uuid, e.priority, e.ready_at, e.payload)
            if len(args) == 4 * SUBMIT_CHUNK:
                yield e.queue, pending.pop(e.queue)
        yield from pending.items()

    def _submit_chunk(self, queue: str, args: list[Any]) -> int:
        """One script call. The first for a queue in this process also puts the
        queue in the registry, in the same round trip."""
        if not self._registry_due(queue):
            return self._submit_direct(queue, args)
        pipe = self.conn.pipeline(transaction=False)
        pipe.sadd(self.registry_key, queue)
        # execute_command because cluster pipelines refuse the named evalsha.
        pipe.execute_command("EVALSHA", QUEUE_SHA, 1, self.keys(queue).prefix, "submit", *args)
        registered, added = pipe.execute(raise_on_error=False)
        if isinstance(registered, Exception):
            raise registered
        self._registered[queue] = time.monotonic()
        if isinstance(added, NoScriptError):  # flushed scripts or a restarted server
            return int(self._run(queue, "submit", *args))
        if isinstance(added, Exception):
            raise added
        return int(added)

    def _submit_direct(self, queue: str, args: list[Any]) -> int:
        """The EVALSHA on this thread's own connection, sent and read by hand
        as ``_stream`` does: redis-py's per-command machinery (taking a pooled
        connection and polling it, retries, metrics, the deprecation checks
        of ``evalsha``) costs a one-by-one submit about as much client CPU as
        the round trip itself. Whatever goes wrong goes the ordinary way
        (reconnect, retry, load the script): a message that did get queued is
        then skipped, as a retry by redis-py itself would skip it."""
        connection = self._submitter()
        if connection is None:
            return int(self._run(queue, "submit", *args))
        try:
            connection.send_command("EVALSHA", QUEUE_SHA, 1, queue_prefix(self.namespace, queue), "submit", *args)
            reply = connection.read_response()
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            connection.disconnect()
            return int(self._run(queue, "submit", *args))
        except NoScriptError:
            return int(self._run(queue, "submit", *args))
        return int(reply)

    def _submitter(self) -> Any:
        """This thread's connection for one-by-one submits, made from the
        client's own settings but kept out of its pool (a pooled one costs a
        poll and the pool's bookkeeping per command); None on a Cluster."""
        connection = getattr(self._local, "submitter", None)
        if connection is None or self._local.submitter_pid != os.getpid():
            conn = self.conn
            if isinstance(conn, redis.RedisCluster):
                return None
            pool = conn.connection_pool
            connection = pool.connection_class(**pool.connection_kwargs)
            self._local.submitter, self._local.submitter_pid = connection, os.getpid()
            with self._waiters_lock:
                self._submitters.append((os.getpid(), connection))
        return connection

    @translated
    def submit_unique(self, envelope: Envelope, key: str, window_ms: int | None) -> str | None:
        if not -MAX_PRIORITY <= envelope.priority <= MAX_PRIORITY:
            raise ValidationError(f"priority {envelope.priority} is beyond ±2**53")
        if self._registry_due(envelope.queue):
            self.conn.sadd(self.registry_key, envelope.queue)
            self._registered[envelope.queue] = time.monotonic()
        holder = self._run(
            envelope.queue, "submit_unique", key, window_ms or 0,
            envelope.uuid, envelope.priority, envelope.ready_at, envelope.payload,
        )
        return None if holder is None else holder.decode() if isinstance(holder, bytes) else str(holder)

    @translated
    def release_unique(self, queue: str, key: str, uuid: str) -> bool:
        return bool(self._run(queue, "release_unique", key, uuid))

    @translated
    def claim(
        self, queues: Sequence[str], limit: int, lease_ms: int, wait_ms: int = 0
    ) -> list[Delivery]:
        # Subscribe before the first look, so a submit between an empty claim
        # and the wait still wakes us.
        waiter = self._waiter(queues) if wait_ms > 0 else None
        deadline = time.monotonic() + wait_ms / 1000
        while True:
            if waiter is not None:
                waiter.drain()
            claimed, wake_in = self._claim_once(queues, limit, lease_ms)
            remaining_ms = (deadline - time.monotonic()) * 1000
            if claimed or waiter is None or remaining_ms <= 0:
                return claimed
            # A delayed message falling due or a lease expiring publishes
            # nothing, so never sleep past it.
            waiter.wait(remaining_ms if wake_in < 0 else min(remaining_ms, wake_in))

    def _claim_once(
        self, queues: Sequence[str], limit: int, lease_ms: int
    ) -> tuple[list[Delivery], int]:
        claimed: list[Delivery] = []
        soonest = -1
        for queue in queues:
            if len(claimed) >= limit:
                break
            reply = self._run(queue, "claim", limit - len(claimed), lease_ms, secrets.token_hex(8))
            wake_in = reply[0]
            if wake_in >= 0 and (soonest < 0 or wake_in < soonest):
                soonest = wake_in
            for i in range(1, len(reply), 4):
                uuid, payload, token, deliveries = reply[i : i + 4]
                claimed.append(Delivery(queue, uuid.decode(), payload, token.decode(), deliveries))
        return claimed, soonest

    def _waiter(self, queues: Sequence[str]) -> PubSubListener:
        """This thread's standing subscription to the queues' wake channels."""
        waiter: PubSubListener | None = getattr(self._local, "waiter", None)
        if waiter is None or self._local.pid != os.getpid():  # a forked child needs its own socket
            waiter = PubSubListener(self.conn, ())
            self._local.waiter, self._local.pid = waiter, os.getpid()
            with self._waiters_lock:
                self._waiters.append((threading.current_thread(), os.getpid(), waiter))
            self._close_orphaned_waiters()
        waiter.subscribe(self.keys(q).wake_channel for q in queues)
        return waiter

    def _close_orphaned_waiters(self) -> None:
        """Give back the connections of subscriptions whose thread has ended
        (or that a forked child inherited): each holds a connection of the
        client's pool, and threads that come and go would use them all up."""
        pid = os.getpid()
        with self._waiters_lock:
            orphans = [w for t, p, w in self._waiters if p != pid or not t.is_alive()]
            self._waiters = [(t, p, w) for t, p, w in self._waiters if p == pid and t.is_alive()]
        for waiter in orphans:
            waiter.close()

    def close(self) -> None:
        """Give back every standing subscription's connection, and close every
        thread's one-by-one submit connection."""
        with self._waiters_lock:
            waiters, self._waiters = self._waiters, []
            submitters, self._submitters = self._submitters, []
        for _, _, waiter in waiters:
            waiter.close()
        for pid, connection in submitters:
            if pid == os.getpid():  # a forked child never closes its parent's socket
                connection.disconnect()
        self._local = threading.local()

    @translated
    def ack(self, queue: str, uuid: str) -> None:
        self._run(queue, "ack", uuid)

    @property
    def atomic_settle(self) -> bool:
        """One MULTI/EXEC on a single Redis; ordered steps on a Cluster (settle.py)."""
        return not isinstance(self.conn, redis.RedisCluster)

    @translated
    def settle(self, settlements: Sequence[Settlement]) -> list[bool]:
        callbacks = {s.callback.queue for s in settlements if s.callback is not None}
        registering = [queue for queue in callbacks if self._registry_due(queue)]
        registry: list[Command] = [("SADD", self.registry_key, queue) for queue in registering]
        if self.atomic_settle:
            replies = self._settle_at_once(settlements, registry)
        else:
            batch = [commands(s, self.namespace, self.keys_prefix, QUEUE_SHA) for s in settlements]
            batch[0][:0] = registry
            replies = [self._settle_in_steps(steps) for steps in batch]
        for queue in registering:
            self._registered[queue] = time.monotonic()
        # A removal needs no lease (as ack); a release or dead letter says whether it held.
        return [bool(reply) or (s.ready_at is None and not s.dead)
                for s, reply in zip(settlements, replies, strict=True)]

    def _settle_at_once(self, settlements: Sequence[Settlement], first: list[Command]) -> list[Any]:
        """Every settlement of the batch in one MULTI/EXEC: first the plain
        writes (results, statuses, notifications) in one call of writes.lua,
        then the callbacks, the chord members' joins and the queue steps of
        retries and failures, then the successes' removals, one ``ack`` per
        queue (a removal's reply says nothing; each join comes before its
        member's removal, in the same transaction). Returns each queue step's reply, None for a removal.
        Sent again once after loading the scripts if the server had lost
        them (each step is idempotent)."""
        plain = Plain()
        tail: list[Command] = []  # callbacks' submits, chord joins, retries' and failures' queue steps
        at: list[int | None] = []
        removals: dict[str, list[str]] = {}
        for settlement in settlements:
            tail += [step for step in writes(settlement, self.namespace, self.keys_prefix, QUEUE_SHA)
                     if not plain.take(step)]
            if settlement.ready_at is None and not settlement.dead:
                removals.setdefault(settlement.delivery.queue, []).append(settlement.delivery.uuid)
                at.append(None)
            else:
                tail.append(queue_step(settlement, self.keys_prefix, QUEUE_SHA))
                at.append(len(tail) - 1)
        head = [*first, *plain.commands(WRITES.sha)]
        steps = [*head, *tail, *(("EVALSHA", QUEUE_SHA, 1, self.keys_prefix(queue), "ack", *uuids)
                                 for queue, uuids in removals.items())]
        for attempt in range(2):
            pipe = self.conn.pipeline(transaction=True)
            for step in steps:
                pipe.execute_command(*step)
            replies = pipe.execute(raise_on_error=False)
            if not any(isinstance(reply, NoScriptError) for reply in replies) or attempt:
                break
            QUEUE.load(self.conn)
            WRITES.load(self.conn)
        errors = [reply for reply in replies if isinstance(reply, Exception)]
        if errors:
            raise errors[0]
        return [None if i is None else replies[len(head) + i] for i in at]

    def _settle_in_steps(self, steps: list[Command]) -> Any:
        """One by one, in order (see settle.py); queue.lua reloaded if need be."""
        conn: Any = self.conn
        reply = None
        for step in steps:
            reply = QUEUE(conn, step[3], *step[4:]) if step[0] == "EVALSHA" else conn.execute_command(*step)
        return reply

    def keys_prefix(self, queue: str) -> str:
        return queue_prefix(self.namespace, queue)

    @translated
    def ack_many(self, queue: str, uuids: Sequence[str]) -> None:
        for start in range(0, len(uuids), SUBMIT_CHUNK):
            self._run(queue, "ack", *uuids[start : start + SUBMIT_CHUNK])

    @translated
    def extend_lease(self, delivery: Delivery, lease_ms: int) -> bool:
        return bool(self._run(delivery.queue, "extend", delivery.uuid, delivery.token, lease_ms))

    @translated
    def reschedule(self, delivery: Delivery, payload: bytes, ready_at: int) -> bool:
        return bool(
            self._run(
                delivery.queue, "reschedule", delivery.uuid, delivery.token, payload, ready_at
            )
        )

    @translated
    def dead_letter(self, delivery: Delivery, payload: bytes) -> bool:
        return bool(
            self._run(delivery.queue, "dead_letter", delivery.uuid, delivery.token, payload)
        )

    @translated
    @translated
    def joined(self, queue: str, callback: str) -> dict[int, bytes]:
        flat = self._run(queue, "joined", callback)
        return {int(flat[i]): bytes(flat[i + 1]) for i in range(0, len(flat), 2)}

    @translated
    def forget_join(self, queue: str, callback: str) -> None:
        self._run(queue, "forget_join", callback)

    def contains(self, queue: str, uuid: str) -> bool:
        return bool(self.conn.exists(self.keys(queue).message(uuid)))

    @translated
    def queue_names(self) -> list[str]:
        """Registered queues that hold messages; the others leave the registry,
        so a drained or purged namespace leaves no key behind."""
        names = sorted(n.decode() for n in cast(set[bytes], self.conn.smembers(self.registry_key)))
        live = self._live(names)
        gone = [name for name in names if name not in live]
        if gone:
            self.conn.srem(self.registry_key, *gone)
            # A submit that raced the SREM puts its queue back; the registry
            # refresh (REGISTRY_REFRESH_S) covers a submit that raced this too.
            back = self._live(gone)
            if back:
                self.conn.sadd(self.registry_key, *back)
                live |= back
        return [name for name in names if name in live]

    def _live(self, names: list[str]) -> set[str]:
        pipe = self.conn.pipeline(transaction=False)
        for name in names:
            pipe.exists(*self.keys(name).zsets)
        return {name for name, count in zip(names, pipe.execute(), strict=True) if count}

    def _registry_due(self, queue: str) -> bool:
        """Whether this process should (re)put ``queue`` in the registry: once,
        then again every REGISTRY_REFRESH_S, so a queue pruned while this
        process was submitting to it is listed again soon."""
        last = self._registered.get(queue)
        return last is None or time.monotonic() - last > REGISTRY_REFRESH_S

    @translated
    def counts(self, queue: str) -> QueueCounts:
        ready, delayed, in_flight, dead = self._run(queue, "counts")
        return QueueCounts(ready=ready, delayed=delayed, in_flight=in_flight, dead=dead)

    @translated
    def messages(self, queue: str, dead: bool = False) -> Iterator[QueuedMessage]:
        keys = self.keys(queue)
        if dead:
            members = cast(list[bytes], self.conn.zrange(keys.key("dead"), 0, -1))
            rows = [(m[16:].decode(), "dead") for m in members]
            name = keys.dead_letter
        else:
            flat = self._run(queue, "listing")
            entries = [flat[i : i + 5] for i in range(0, len(flat), 5)]
            entries.sort(key=lambda e: (int(e[1]), e[2]))
            rows = [(e[0].decode(), e[4].decode()) for e in entries]
            name = keys.message
        for start in range(0, len(rows), PAGE):
            page = rows[start : start + PAGE]
            pipe = self.conn.pipeline(transaction=False)
            for uuid, _ in page:
                pipe.hmget(name(uuid), "b", "r")
            for (uuid, state), (payload, ready_at) in zip(page, pipe.execute(), strict=True):
                if payload is not None:  # acked since the listing was taken
                    yield QueuedMessage(queue, uuid, payload, state, int(ready_at))

    @translated
    def remove_dead(self, queue: str, uuid: str) -> bool:
        return bool(self._run(queue, "remove_dead", uuid))

    @translated
    def purge(self, queue: str) -> int:
        return int(self._run(queue, "purge"))
