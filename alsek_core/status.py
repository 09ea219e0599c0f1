"""Task status: where a message is in its life, readable from anywhere.

Stored as one key per message (``status:<uuid>``) on any backend; writers
notify ``status:<uuid>`` so waiters are woken, not polling, where the backend
can push. A subclass that overrides ``set`` (to also write elsewhere, e.g.
PostgreSQL) is a drop-in: workers only call the methods of the port.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from alsek_core.clock import now_ms
from alsek_core.errors import ValidationError
from alsek_core.message import Message
from alsek_core.ports import Backend, Listener, StatusWrite
from alsek_core.waiting import WAKE_CHECK_MS, Deadline, PollingListener

if TYPE_CHECKING:
    from alsek_core.broker import Broker

log = logging.getLogger(__name__)

DEFAULT_TTL = 7 * 24 * 3600 * 1000


class TaskStatus(IntEnum):
    UNKNOWN = 0
    SUBMITTED = 1
    RUNNING = 2
    RETRYING = 3
    FAILED = 4
    SUCCEEDED = 5
    #: Stopped while running because it was revoked (``alsek_core.revocation``).
    REVOKED = 6

    def __str__(self) -> str:
        """The name, not the number: printed statuses should read as words."""
        return self.name

    def __format__(self, spec: str) -> str:
        return format(self.name, spec)


TERMINAL_STATUSES = frozenset({TaskStatus.FAILED, TaskStatus.SUCCEEDED, TaskStatus.REVOKED})


def wanted_statuses(status: Any) -> frozenset[TaskStatus]:
    """A TaskStatus, or a list/tuple/set of them; anything else (a name, a
    number, an empty list) is a ValueError, as in Alsek, not a silent wait
    for a status that never comes."""
    statuses = [status] if isinstance(status, TaskStatus) else status
    if not isinstance(statuses, (list, tuple, set, frozenset)) or not statuses:
        raise ValueError(f"status must be a TaskStatus or a non-empty list of them, got {status!r}")
    invalid = [s for s in statuses if not isinstance(s, TaskStatus)]
    if invalid:
        raise ValueError(f"not a TaskStatus: {invalid[0]!r}")
    return frozenset(statuses)


def seen_status(recorded: TaskStatus, queue_state: str | None) -> TaskStatus:
    """The status a reader should be shown beside the queue's own view of the
    message. RUNNING is written by the worker that claimed it; if that worker
    (or its whole pool) was killed, nobody is left to take it back, and the
    message waits in the queue again (``ready`` or ``delayed``: its lease ran
    out) until a worker claims it. Shown as SUBMITTED then, which is what it
    is; the record itself is left for the next claim to overwrite."""
    if recorded == TaskStatus.RUNNING and queue_state in ("ready", "delayed"):
        return TaskStatus.SUBMITTED
    return recorded


def status_name(uuid: str) -> str:
    return f"status:{uuid}"


class BaseStatusTracker(ABC):
    """What every status tracker shares; subclasses say where records live.

    A record is ``{"status": name, "queue", "task_name", "updated_at"}``.
    """

    @abstractmethod
    def set(self, message: Message, status: TaskStatus) -> None: ...

    @abstractmethod
    def record(self, uuid: str) -> dict[str, Any] | None:
        """The stored record for a uuid, or None."""

    @abstractmethod
    def uuids(self) -> Iterator[str]:
        """Every uuid with a status (for the integrity scanner)."""

    @abstractmethod
    def remove(self, uuid: str) -> None: ...

    def listener(self, uuid: str) -> Listener:
        """How to wait for the next change of a status; polling unless overridden."""
        return PollingListener()

    @staticmethod
    def make_record(message: Message, status: TaskStatus) -> dict[str, Any]:
        return {
            "status": TaskStatus(status).name,
            "queue": message.queue,
            "task_name": message.task_name,
            "updated_at": now_ms(),
        }

    def get(self, message: Message) -> TaskStatus:
        record = self.record(message.uuid)
        return TaskStatus[record["status"]] if record else TaskStatus.UNKNOWN

    def exists(self, message: Message) -> bool:
        return self.record(message.uuid) is not None

    def delete(self, message: Message, check: bool = True) -> None:
        """With ``check``, refuse to forget a status that is not terminal yet."""
        if check and self.get(message) not in TERMINAL_STATUSES:
            raise ValidationError(f"status of {message.summary} is not terminal; pass check=False")
        self.remove(message.uuid)

    def wait_for(
        self,
        message: Message,
        status: TaskStatus | Iterable[TaskStatus],
        timeout: float | None = 5.0,
        poll_interval: float = 0.05,
        raise_on_timeout: bool = True,
    ) -> TaskStatus:
        """Block until the status is one of ``status``; after ``timeout``
        seconds (None: never) raise TimeoutError, or with
        ``raise_on_timeout=False`` return the status then. Statuses are
        re-read at least every ``poll_interval`` seconds, sooner when a
        backend pushes the change."""
        wanted = wanted_statuses(status)
        if not (isinstance(poll_interval, (int, float)) and poll_interval > 0):
            raise ValueError(f"poll_interval must be a positive number of seconds, got {poll_interval!r}")
        current = TaskStatus.UNKNOWN
        for current in self.listen(message, timeout=timeout, poll_interval=poll_interval):
            if current in wanted:
                return current
        if not raise_on_timeout:
            return current
        raise TimeoutError(
            f"{message.summary} did not reach {sorted(s.name for s in wanted)} in {timeout}s"
        )

    def listen(
        self, message: Message, timeout: float | None = None, poll_interval: float = WAKE_CHECK_MS / 1000
    ) -> Iterator[TaskStatus]:
        """Yield the status each time it changes, ending at a terminal one or the timeout."""
        deadline = Deadline(timeout)
        listener = self.listener(message.uuid)
        try:
            last = None
            while True:
                current = self.get(message)
                if current != last:
                    yield current
                    last = current
                if current in TERMINAL_STATUSES or deadline.expired:
                    return
                listener.wait(deadline.remaining_ms(cap=min(WAKE_CHECK_MS, max(1, round(poll_interval * 1000)))))
        finally:
            listener.close()


class StatusTracker(BaseStatusTracker):
    """Statuses where ``backend`` keeps them: one key-value record per
    message, unless the backend names a home of its own (its
    ``status_tracker_class``, a subclass: PostgreSQL's ``statuses`` table).
    Then ``StatusTracker(backend)`` is an instance of that class, so what a
    user constructs writes where ``alsek status`` and ``alsek jobs`` read.
    A user's own subclass keeps the storage it chose."""

    def __new__(cls, backend: Backend, ttl: int | None = DEFAULT_TTL) -> StatusTracker:
        home: type[StatusTracker] = cls
        if cls is StatusTracker:
            home = getattr(backend, "status_tracker_class", None) or cls
        return super().__new__(home)

    def __init__(self, backend: Backend, ttl: int | None = DEFAULT_TTL) -> None:
        self.backend = backend
        self.ttl = ttl

    def __repr__(self) -> str:
        return f"{type(self).__name__}(backend={self.backend!r})"

    def set(self, message: Message, status: TaskStatus) -> None:
        self.backend.set(status_name(message.uuid), self.make_record(message, status), ttl=self.ttl)
        self.backend.notify(status_name(message.uuid))

    def write(self, message: Message, status: TaskStatus) -> StatusWrite:
        """The status as part of its message's settlement (``Queue.settle``)."""
        record = self.make_record(message, status)
        return StatusWrite(message.uuid, record, self.ttl, self.backend.serializer.dumps(record))

    def record(self, uuid: str) -> dict[str, Any] | None:
        found = self.backend.get(status_name(uuid))
        return found if isinstance(found, dict) else None

    def uuids(self) -> Iterator[str]:
        for name in list(self.backend.scan("status:")):
            yield name.split(":", 1)[1]

    def exists(self, message: Message) -> bool:
        return self.backend.exists(status_name(message.uuid))

    def remove(self, uuid: str) -> None:
        self.backend.delete(status_name(uuid), missing_ok=True)

    def listener(self, uuid: str) -> Listener:
        return self.backend.listen([status_name(uuid)])


class StatusTrackerIntegrityScanner:
    """Finds statuses that can no longer change (the message is gone, but the
    status is not terminal: a worker died and nobody will retry it) and marks
    them UNKNOWN. ``trigger`` is an apscheduler trigger for periodic scans."""

    def __init__(self, status_tracker: BaseStatusTracker, broker: Broker, trigger: Any = None) -> None:
        self.status_tracker = status_tracker
        self.broker = broker
        self.trigger = trigger
        self.scheduler: Any = None
        if trigger is not None:
            from apscheduler.schedulers.background import BackgroundScheduler

            self.scheduler = BackgroundScheduler()
            self.scheduler.add_job(self.scan, trigger=trigger, max_instances=1)
            self.scheduler.start()

    def scan(self) -> int:
        """One pass; returns how many statuses were reset to UNKNOWN."""
        fixed = 0
        for uuid in list(self.status_tracker.uuids()):
            record = self.status_tracker.record(uuid)
            if not record or TaskStatus[record["status"]] in TERMINAL_STATUSES:
                continue
            if record["status"] == TaskStatus.UNKNOWN.name:
                continue
            if not self.broker.contains(record["queue"], uuid):
                message = Message(record["task_name"], queue=record["queue"], uuid=uuid)
                self.status_tracker.set(message, TaskStatus.UNKNOWN)
                log.info(
                    "status of %s reset to UNKNOWN: the message no longer exists", message.summary
                )
                fixed += 1
        return fixed

    def shutdown(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)


def tracker_for(backend: Backend) -> BaseStatusTracker:
    """The backend's own status tracker when it has one, else key-value records."""
    native = getattr(backend, "status_tracker", None)
    return native() if callable(native) else StatusTracker(backend)
