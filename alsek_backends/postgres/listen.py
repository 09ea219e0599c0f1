"""LISTEN/NOTIFY: one listening connection per backend and process, shared by
every listener (idle claimers, status and result waiters).

A caller subscribes *before* it looks at the state it waits on: ``subscribe``
returns only once ``LISTEN`` has run, so a NOTIFY sent after the caller's
check cannot be missed. A background thread reads the connection's socket
and sets the subscribers' events. When the connection breaks, the thread
reconnects, listens again and wakes everyone, since notifications may have
been lost in between. Channels nobody listens to any more are unlistened
lazily, so a claimer looping on the same queues costs no round trip.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import select
import socket
import threading
import time
from collections.abc import Callable, Sequence

import psycopg

from alsek_backends.postgres.schema import Conn

log = logging.getLogger(__name__)

#: PostgreSQL truncates identifiers (channel names) to 63 bytes.
MAX_CHANNEL_BYTES = 63
#: How often the thread unlistens idle channels.
HOUSEKEEPING_S = 10.0
#: While disconnected, listeners poll at this pace.
POLL_S = 0.1


def channel_name(schema: str, namespace: str, channel: str) -> str:
    """The PostgreSQL channel for ``channel``, hashed if the name is too long."""
    full = f"{schema}.{namespace}:{channel}"
    if len(full.encode()) <= MAX_CHANNEL_BYTES:
        return full
    return f"alsek:{hashlib.blake2b(full.encode(), digest_size=24).hexdigest()}"


def _quote(channel: str) -> str:
    return '"' + channel.replace('"', '""') + '"'


class Subscription:
    """A ``Listener`` (alsek_core.ports): woken by NOTIFY on any of its channels."""

    def __init__(self, hub: Hub, channels: frozenset[str]) -> None:
        self.hub = hub
        self.channels = channels
        self.event = threading.Event()

    def wait(self, timeout_ms: int) -> bool:
        if not self.hub.connected:
            time.sleep(min(timeout_ms / 1000, POLL_S))
            return self.event.is_set() and self._clear()
        notified = self.event.wait(max(0, timeout_ms) / 1000)
        return notified and self._clear()

    def _clear(self) -> bool:
        self.event.clear()
        return True

    def close(self) -> None:
        self.hub.unsubscribe(self)


class Hub:
    """Owns the listening connection and the thread that reads it."""

    def __init__(self, connect: Callable[[], Conn]) -> None:
        self._connect = connect
        self._lock = threading.Lock()
        self._subscribers: dict[str, set[Subscription]] = {}
        self._listening: set[str] = set()
        self._conn: Conn | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def connected(self) -> bool:
        conn = self._conn
        return conn is not None and not conn.closed

    def subscribe(self, channels: Sequence[str]) -> Subscription:
        subscription = Subscription(self, frozenset(channels))
        with self._lock:
            if self._closed:
                raise RuntimeError("the backend was closed")
            for channel in subscription.channels:
                self._subscribers.setdefault(channel, set()).add(subscription)
            new = subscription.channels - self._listening
            try:
                if not self._ensure_connection():
                    self._listen(new)
            except psycopg.OperationalError as exc:
                log.warning("LISTEN failed (%s); listeners poll until reconnected", exc)
                self._drop_connection()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="alsek-pg-listen", daemon=True)
                self._thread.start()
        if new:
            self._poke()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            for channel in subscription.channels:
                subscribers = self._subscribers.get(channel)
                if subscribers is not None:
                    subscribers.discard(subscription)
                    if not subscribers:
                        del self._subscribers[channel]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            thread = self._thread
        self._poke()
        if thread is not None:
            thread.join(timeout=5)
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        self._wake_r.close()
        self._wake_w.close()

    def _listen(self, channels: set[str] | frozenset[str]) -> None:
        """Call with the lock held."""
        if channels and self._conn is not None:
            self._conn.execute("; ".join(f"LISTEN {_quote(c)}" for c in sorted(channels)).encode())
            self._listening |= channels

    def _ensure_connection(self) -> bool:
        """Connect if need be (lock held); True when that happened. Every
        subscribed channel is then listened to and, on a reconnection, every
        subscriber woken: whatever was sent while disconnected is lost."""
        if self._conn is not None and not self._conn.closed:
            return False
        self._drop_connection()
        self._conn = self._connect()
        self._listen(set(self._subscribers))
        if self._thread is not None:  # a reconnection, not the first connection
            for subscribers in self._subscribers.values():
                for subscription in subscribers:
                    subscription.event.set()
        return True

    def _drop_connection(self) -> None:
        """Call with the lock held."""
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._listening = set()

    def _poke(self) -> None:
        """Wake the thread: a subscriber's LISTEN may have read notifications
        off the socket, which then wait in psycopg's backlog."""
        with contextlib.suppress(OSError):  # closed, or full: the thread wakes anyway
            self._wake_w.send(b"\0")

    def _run(self) -> None:
        backoff = POLL_S
        last_housekeeping = time.monotonic()
        while not self._closed:
            conn = self._conn
            try:
                if conn is None or conn.closed:
                    with self._lock:
                        if self._closed:
                            return
                        self._ensure_connection()
                    backoff = POLL_S
                    continue
                wake = self._wake_r.fileno()
                readable, _, _ = select.select([conn.fileno(), wake], [], [], HOUSEKEEPING_S)
                if wake in readable:
                    self._drain_wakes()
                self._dispatch(list(conn.notifies(timeout=0)))
                if time.monotonic() - last_housekeeping >= HOUSEKEEPING_S:
                    self._unlisten_idle()
                    last_housekeeping = time.monotonic()
            except (psycopg.Error, OSError, ValueError) as exc:
                if self._closed:
                    return
                log.warning("listening connection lost (%s); reconnecting", exc)
                with self._lock:
                    if self._conn is conn or conn is None:  # not one a subscriber just opened
                        self._drop_connection()
                time.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    def _drain_wakes(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while self._wake_r.recv(4096):
                pass

    def _dispatch(self, notifications: list[psycopg.Notify]) -> None:
        if not notifications:
            return
        with self._lock:
            woken = {s for n in notifications for s in self._subscribers.get(n.channel, ())}
        for subscription in woken:
            subscription.event.set()

    def _unlisten_idle(self) -> None:
        with self._lock:
            idle = self._listening - set(self._subscribers)
            if idle and self._conn is not None:
                self._conn.execute("; ".join(f"UNLISTEN {_quote(c)}" for c in sorted(idle)).encode())
                self._listening -= idle
