"""Where revocations are kept: one key-value record per revoked uuid
(``revoked:<uuid>``), plus a stamp (``revocations``) rewritten on every change.

A worker asks before every message it runs, and a read per message would
cost a round trip each (on Redis, more than running a small task). So a
process rereads the stamp at most every ``VIEW_MS`` and the marks only when
the stamp changed; and a revoke waits ``VIEW_MS`` before returning, so that
once it returns no worker anywhere starts the revoked message.

Every change is also announced on the ``revocations`` channel: where the
backend pushes (Redis pub/sub, PostgreSQL NOTIFY), a pool's supervisor
following it (:meth:`RevocationMarks.follow`) rereads at once and stops a
revoked message that is running without waiting out ``VIEW_MS``; elsewhere
the view's age bounds the delay.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from alsek_core.clock import now_ms
from alsek_core.errors import ValidationError
from alsek_core.message import Message, new_uuid
from alsek_core.ports import Backend
from alsek_core.waiting import PollingListener

#: How long a revocation is kept past the time its message is due (a week,
#: as Alsek keeps it).
REVOCATION_TTL = 7 * 24 * 3600 * 1000
#: How stale a process's view of the revocations may be.
VIEW_MS = 200
STAMP = "revocations"
PREFIX = "revoked:"
#: How long a follower waits on its listener before it looks at its stop event.
FOLLOW_WAIT_MS = 250


def revocation_uuid(message: Message | str) -> str:
    if isinstance(message, Message):
        return message.uuid
    if not (isinstance(message, str) and message.strip() and len(message) <= 200):
        raise ValidationError(f"revoke takes a Message or a message uuid, got {message!r}")
    return message


class RevocationMarks:
    """The revocations on one backend, and this process's view of them."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._refresh = threading.Lock()
        self._stamp: Any = None
        self._revoked: frozenset[str] = frozenset()
        self._read_at = float("-inf")
        self._expiries = 0  # a read begun before an expiry is stale at once

    def mark(self, uuid: str, ttl: int) -> None:
        """Revoke, and return once every process sees it."""
        self.backend.set(PREFIX + uuid, now_ms(), ttl=ttl)
        self._changed()
        time.sleep(VIEW_MS / 1000)

    def unmark(self, uuid: str) -> None:
        self.backend.delete(PREFIX + uuid, missing_ok=True)
        self._changed()

    def _changed(self) -> None:
        # No TTL: a missing stamp means nothing was ever revoked, so the
        # stamp must outlive every mark.
        self.backend.set(STAMP, new_uuid())
        self.backend.notify(STAMP)
        self._expire()  # this process sees its own change at once

    def _expire(self) -> None:
        self._expiries += 1
        self._read_at = float("-inf")

    def exists(self, uuid: str) -> bool:
        """Read now, from the backend."""
        return self.backend.exists(PREFIX + uuid)

    def seen(self, uuid: str) -> bool:
        """As this process last read them: at most ``VIEW_MS`` old."""
        if time.monotonic() - self._read_at >= VIEW_MS / 1000:
            with self._refresh:
                started = time.monotonic()
                if started - self._read_at >= VIEW_MS / 1000:
                    expiries = self._expiries
                    stamp = self.backend.get(STAMP)
                    if stamp is None:  # nothing was ever revoked here
                        self._revoked = frozenset()
                    elif stamp != self._stamp:
                        names = list(self.backend.scan(PREFIX))
                        self._revoked = frozenset(name[len(PREFIX) :] for name in names)
                    self._stamp = stamp
                    self._read_at = started if expiries == self._expiries else float("-inf")
        return uuid in self._revoked

    def among(self, uuids: Iterable[str]) -> set[str]:
        """Which of ``uuids`` are revoked, as this process last read them."""
        wanted = set(uuids)
        if not wanted:
            return set()
        self.seen("")  # refreshes the view if it is too old
        return wanted & self._revoked

    def follow(self, stop: threading.Event, on_change: Callable[[], None]) -> None:
        """Until ``stop`` is set: at each change the backend pushes, forget
        this process's view (the next look rereads it) and call
        ``on_change``. Returns at once on a backend that cannot push: there
        the view's age is what bounds the delay."""
        listener = self.backend.listen([STAMP])
        try:
            if isinstance(listener, PollingListener):
                return
            while not stop.is_set():
                if listener.wait(FOLLOW_WAIT_MS):
                    self._expire()
                    on_change()
        finally:
            listener.close()

    def __getstate__(self) -> dict[str, Any]:
        return {"backend": self.backend}  # a view is per process; a lock cannot be pickled

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["backend"])  # type: ignore[misc]
