"""The worker pool every pool stands on: claim only what there is room for,
keep the leases of what runs alive, and let go of nothing.

``backoff`` paces an idle pool on a backend that cannot block (the embedded
SQLite); ``None`` means look again after 10 ms. ``lease_ms`` is how long a
claimed message is held between renewals, so how long the messages of a
pool that died wait before another pool gets them.

Subclassing contract
--------------------
A pool decides *how* a message runs; the base decides *what* runs and keeps
the guarantees. A subclass implements two methods:

``free_slots() -> int``
    How many messages it accepts right now. The base claims at most that
    many, so a full pool stops claiming and other pools (other hosts) get the
    work. Return 0 when full. A pool of tiny tasks may accept a few more than
    it can start at once (``self.holdings.claim_ahead(n)`` says how many are
    worth it), to spread a claim's round trip over several messages.

``submit_to_executor(task, message) -> None``
    Start running ``message`` (a thread, a process, an event loop, or right
    here, synchronously). Whatever runs it must call ``self.execute(task,
    message)``, which runs the task and records the outcome (result, callback,
    status, then ack, retry or fail), then ``self.slot_freed()`` so that a
    full pool claims again at once.

and may override ``watch()``, called about every 100 ms from a background
thread for housekeeping such as enforcing timeouts.

The base supplies the rest:

* one :class:`~alsek_core.consumer.Consumer` over ``queues`` in the order
  given (alphabetical order of the tasks' queues by default);
* a lease keeper that extends the lease of every message the pool holds
  every ``lease_ms / 3``, so a long task keeps its message, and a pool that
  dies stops extending so its messages come back after at most ``lease_ms``;
* acks and settlements in batches (:meth:`Broker.batching`): one round
  trip for the messages finished since the last claim, flushed before each
  claim, from the housekeeping thread, when ``ACK_BATCH`` wait, and before
  it exits (a settlement the pool's holdings cannot keep for its
  supervisor is flushed at once); the job history and the middleware's
  batches (metrics) only from the housekeeping thread (about every 100 ms)
  and before it exits, so that one write carries a tenth of a second's
  worth, not one claim's;
* SIGTERM / SIGINT (when run in the main thread): stop claiming, give running
  messages ``grace_period`` ms to finish, release (nack) what still runs, and
  return normally. A second signal ends the grace period at once;
* bad input: a message for a task this pool does not know, or one that
  cannot be decoded, is logged with its uuid and why, marked FAILED on the
  pool's status trackers and dead-lettered; the pool keeps going.

A minimal in-process pool::

    class ExecutorPool(BaseWorkerPool):
        def __init__(self, tasks, n_workers=4, **options):
            super().__init__(tasks, **options)
            self.executor = ThreadPoolExecutor(n_workers)
            self.n_workers = n_workers
            self.running = 0

        def free_slots(self):
            return self.n_workers - self.running

        def submit_to_executor(self, task, message):
            self.running += 1
            future = self.executor.submit(self.execute, task, message)
            future.add_done_callback(lambda _: self._done())

        def _done(self):
            self.running -= 1
            self.slot_freed()
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from types import FrameType
from typing import Any

from alsek_core import middleware
from alsek_core.backoff import Backoff, ConstantBackoff, LinearBackoff
from alsek_core.broker import Broker
from alsek_core.clock import now_ms
from alsek_core.consumer import DEFAULT_LEASE_MS, Consumer
from alsek_core.errors import ValidationError
from alsek_core.execution import fail, process, set_waiting
from alsek_core.limits import LimitKeyError
from alsek_core.message import Message, validate_queue_name
from alsek_core.ports import Delivery
from alsek_core.task import Task
from alsek_core.worker import rejects
from alsek_core.worker.gate import SLOT_WAIT_MS, Gate
from alsek_core.worker.holdings import Holdings

log = logging.getLogger(__name__)

#: Flush the acks at once when this many wait.
ACK_BATCH = 64
#: How long running messages get to finish after SIGTERM before they are released.
DEFAULT_GRACE_MS = 20_000
#: How long a full pool waits for a free slot before it looks again.
DEFAULT_SLOT_WAIT_MS = 50
#: How often ``watch()`` runs.
WATCH_INTERVAL_S = 0.1
#: ``backoff=None``: look for work again almost at once (not at once: an idle
#: pool on a backend that cannot block would spin).
NO_BACKOFF = ConstantBackoff(constant=10, floor=0, ceiling=10)
#: By default an idle pool on a backend that cannot block (the embedded
#: SQLite) looks again within 100 ms: one indexed query each time, and it
#: bounds how long a new message waits for an idle pool. Backends that block
#: natively wait for work instead and never use it.
IDLE_BACKOFF = LinearBackoff(factor=10, floor=0, ceiling=100, zero_override=True)


def install_signal_handlers(handler: Callable[[int, FrameType | None], None]) -> dict[int, Any]:
    """``handler`` for SIGTERM and SIGINT, when in the main thread (only it can);
    returns the handlers it replaced, to put back.

    The handler runs on a thread of its own, not in the interrupted main
    thread: Python runs a signal handler between two bytecodes of the main
    thread, which may be inside ``Event.wait`` holding the very lock that the
    handler's ``Event.set`` then waits for, for good (a pool that never
    stopped on SIGTERM, seen about once in 50 starts)."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def deferred(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=handler, args=(signum, None), name="alsek-signal", daemon=True).start()

    return {signum: signal.signal(signum, deferred) for signum in (signal.SIGTERM, signal.SIGINT)}


def index_tasks(tasks: Iterable[Task]) -> dict[str, Task]:
    by_name: dict[str, Task] = {}
    for task in tasks:
        if not isinstance(task, Task):
            raise ValidationError(f"a worker pool runs Tasks, got {task!r}")
        other = by_name.setdefault(task.name, task)
        if other is not task:
            raise ValidationError(f"two different tasks are named {task.name!r}; task names must be unique")
    if not by_name:
        raise ValidationError("a worker pool needs at least one task")
    return by_name


def common_broker(tasks: Iterable[Task]) -> Broker:
    """The broker the pool consumes: every task must submit to the same storage."""
    brokers = {id(t.broker): t.broker for t in tasks}
    first = next(iter(brokers.values()))
    for broker in brokers.values():
        if not broker.same_storage(first):
            raise ValidationError(
                f"the tasks use different brokers ({first!r} and {broker!r}); run one pool per broker"
            )
    return first


class BaseWorkerPool(ABC):
    """See the module docstring for what a subclass implements."""

    def __init__(
        self,
        tasks: Iterable[Task],
        queues: Iterable[str] | None = None,
        backoff: Backoff | None = IDLE_BACKOFF,
        lease_ms: int = DEFAULT_LEASE_MS,
        slot_wait_interval: int = DEFAULT_SLOT_WAIT_MS,
        grace_period: int = DEFAULT_GRACE_MS,
    ) -> None:
        self.tasks = index_tasks(tasks)
        self.broker = common_broker(self.tasks.values()).batching()
        self.queues = (
            [validate_queue_name(q) for q in queues]
            if queues
            else sorted({t.queue for t in self.tasks.values()})
        )
        if lease_ms < 100:
            raise ValidationError(f"lease_ms must be at least 100, got {lease_ms}")
        self.backoff = NO_BACKOFF if backoff is None else backoff
        self.lease_ms = lease_ms
        self.slot_wait_interval = slot_wait_interval
        self.grace_period = grace_period
        self.stop_event = threading.Event()
        self.hurry = threading.Event()
        self._slot_freed = threading.Event()
        self.holdings = Holdings()
        self.gate = Gate(lease_ms)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(tasks={sorted(self.tasks)}, queues={self.queues})"

    # --- what a subclass implements ---------------------------------------------------

    @abstractmethod
    def free_slots(self) -> int:
        """How many messages to accept now (0 when full)."""

    @abstractmethod
    def submit_to_executor(self, task: Task, message: Message) -> None:
        """Start running ``message``; the runner must call ``self.execute(task, message)``."""

    def watch(self) -> None:  # noqa: B027 - optional hook
        """Housekeeping, about every 100 ms, from a background thread."""

    # --- what a subclass calls ------------------------------------------------------

    def execute(self, task: Task, message: Message, user_code: AbstractContextManager[Any] | None = None) -> None:
        """Run ``message`` and record its outcome. Does nothing if the pool
        handed the message back in the meantime. ``user_code`` is entered
        around the task's own code (see ``execution.process``)."""
        assert message.delivery is not None
        if not self.holdings.start(message.delivery):
            return
        if not self.within_limits(task, message):
            return
        started = time.perf_counter()
        self.record(message, started, lambda: process(task, message, self.tasks, self.broker, user_code))

    def record(self, message: Message, started: float, settle: Callable[[], None]) -> None:
        """Run ``settle`` (what records the outcome of ``message``, which
        started running at ``started``), then let go of the message. A
        backend error while recording is logged: the lease runs out, and
        the message comes back."""
        try:
            settle()
        except Exception:
            log.exception("could not record the outcome of %s; it will be delivered again", message.summary)
        finally:
            self.finished(message, started)

    def finished(self, message: Message, started: float) -> None:
        """``message`` is no longer running here, whatever its outcome. One
        whose settlement waits in the batch is kept in the holdings (for a
        supervisor to apply if this process dies); one that cannot be kept
        there is flushed at once."""
        self.gate.release(self.broker, message.uuid)  # settled (or coming back): its slot is free
        settlement = self.broker.pending_settlement(message.uuid)
        awaiting_ack = settlement is not None or self.broker.ack_pending(message.uuid)
        kept = self.holdings.finish(message.uuid, time.perf_counter() - started, awaiting_ack, settlement)
        if not kept or self.broker.acks_pending() >= ACK_BATCH:
            self.flush_acks(everything=False)

    def within_limits(self, task: Task, message: Message) -> bool:
        """Whether ``message`` may run now under its task's limits (see
        :mod:`alsek_core.worker.gate`); if not, it is handed back, delayed,
        or failed when its limit key cannot be computed. Every kind of run
        asks it just before it starts (``execute``, the coroutine runner),
        and ``finished`` frees the slot it took."""
        try:
            retry_at = self.gate.admit(self.broker, task, message)
        except LimitKeyError as exc:
            self.holdings.drop(message.uuid)
            try:
                fail(task, message, exc, self.broker)
            except Exception:
                log.exception("could not fail %s; it comes back when its lease ends", message.summary)
            return False
        except Exception:
            log.exception("could not check the limits of %s; handing it back", message.summary)
            retry_at = now_ms() + SLOT_WAIT_MS
        if retry_at is None:
            return True
        self.holdings.drop(message.uuid)
        try:
            self.broker.release(message, retry_at)
        except Exception:
            log.exception("could not hand back %s; it comes back when its lease ends", message.summary)
        return False

    def flush_acks(self, everything: bool = True) -> None:
        """Ack what finished, in one round trip; with ``everything``, write the
        job history and the middleware's batches too (see the module doc)."""
        self.holdings.acked(self.broker.flush_acks(history=everything))
        if everything:
            middleware.flush()

    def claim_limit(self) -> int:
        """How many messages the next claim may take."""
        return self.free_slots()

    def slot_freed(self) -> None:
        """Wake the claim loop: a full pool then claims at once instead of after
        ``slot_wait_interval``."""
        self._slot_freed.set()

    # --- running ---------------------------------------------------------------------

    def consumer(self) -> Consumer:
        return Consumer(
            self.broker,
            subset=self.queues,
            backoff=self.backoff,
            lease_ms=self.lease_ms,
            on_undecodable=self.reject_undecodable,
        )

    def run(self) -> None:
        """Consume until stopped (``stop()``, SIGTERM or SIGINT), then wind down."""
        self.consume()

    def consume(self) -> None:
        """Claim, run and settle messages here until stopped, then wind down."""
        previous = install_signal_handlers(self._on_signal)
        self._consumer = consumer = self.consumer()
        keeper = threading.Thread(target=self._keep, name="alsek-lease-keeper", daemon=True)
        keeper.start()
        log.info("%s consuming %s", self, ", ".join(self.queues))
        outage = 0
        try:
            while not self.stop_event.is_set():
                self._slot_freed.clear()
                free = self.claim_limit()
                if free <= 0:
                    self._slot_freed.wait(self.slot_wait_interval / 1000)
                    continue
                self.flush_acks(everything=False)  # what finished since the last claim, in one round trip
                try:
                    # Hold the whole batch before running any of it, so that its
                    # leases are kept alive while the first ones run.
                    batch = [(task, m) for m in consumer.claim(free) if (task := self._accept(m)) is not None]
                except Exception as exc:  # the backend is down: wait for it, do not die
                    outage = self._wait_out(exc, outage)
                    continue
                outage = 0
                for task, message in batch:
                    self._submit(task, message)
        finally:
            consumer.stop()
            self.stop_event.set()
            self._wind_down()
            keeper.join(timeout=1)
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _wait_out(self, exc: Exception, failures: int) -> int:
        """Back off after a failed claim (1 s, doubling to 30 s); returns the count."""
        delay = min(30.0, 2.0**failures)
        log.error("cannot claim from %s: %s: %s; trying again in %.0f s",
                  self.broker.backend, type(exc).__name__, " ".join(str(exc).split()), delay,
                  exc_info=log.isEnabledFor(logging.DEBUG))
        self.stop_event.wait(delay)
        return failures + 1

    def stop(self) -> None:
        """Stop claiming; ``run()`` then lets running messages finish and returns."""
        self.stop_event.set()
        self._slot_freed.set()
        consumer = getattr(self, "_consumer", None)
        if consumer is not None:
            consumer.stop()

    def _accept(self, message: Message) -> Task | None:
        """The task to run ``message`` with, holding it; None if it was dealt with."""
        if self.stop_event.is_set():  # claimed while stopping: hand it straight back
            self.broker.nack(message)
            return None
        task = self.tasks.get(message.task_name)
        if task is None:
            self.reject_unknown(message)
            return None
        assert message.delivery is not None
        if message.delivery.deliveries > 1:
            log.warning("redelivered (delivery %d): task %r, queue %r, uuid %s: the lease of an earlier "
                        "delivery was lost (its worker died or stalled)", message.delivery.deliveries,
                        message.task_name, message.queue, message.uuid)
        self.holdings.add(message.delivery)
        return task

    def _submit(self, task: Task, message: Message) -> None:
        assert message.delivery is not None
        if self.stop_event.is_set() or not self.holdings.holds(message.delivery):
            return  # stopping (the wind-down releases it) or already handed back
        try:
            self.submit_to_executor(task, message)
        except Exception:
            log.exception("could not start %s; releasing it", message.summary)
            self.release(message.delivery)

    def _keep(self) -> None:
        """Extend leases every lease/3 and call ``watch()`` in between."""
        every = self.lease_ms / 3000
        next_extend = time.monotonic() + every
        while not (self.stop_event.is_set() and not len(self.holdings)):
            try:
                self.flush_acks()
                self.watch()
                for delivery in self.holdings.take_unstarted():
                    log.info("message %s waited behind a slow one; handed back", delivery.uuid)
                    self.release(delivery)
                if time.monotonic() >= next_extend:
                    next_extend = time.monotonic() + every
                    self._extend_leases()
            except Exception:
                log.exception("worker pool housekeeping failed; continuing")
            time.sleep(min(WATCH_INTERVAL_S, every))

    def _extend_leases(self) -> None:
        self.gate.extend(self.broker)
        for delivery in self.holdings.deliveries():
            if self.broker.extend(delivery, self.lease_ms):
                continue
            # Settled between our snapshot and the extension, or really lost?
            if self.holdings.holds(delivery) and self.broker.contains(delivery.queue, delivery.uuid):
                log.warning("lost the lease of message %s in queue %r: it may run twice",
                                delivery.uuid, delivery.queue)

    def _wind_down(self) -> None:
        """Give running messages the grace period, then release what still runs."""
        deadline = time.monotonic() + self.grace_period / 1000
        if len(self.holdings):
            log.info("stopping: waiting up to %d ms for %d message(s)", self.grace_period, len(self.holdings))
        for delivery in self.holdings.take_unstarted(older_than_s=0):
            self.release(delivery)
        while len(self.holdings) and time.monotonic() < deadline and not self.hurry.is_set():
            self._slot_freed.clear()
            self._slot_freed.wait(0.05)
        self.flush_acks()
        for delivery in self.holdings.deliveries():
            log.warning("message %s in queue %r did not finish in time; released for another worker",
                        delivery.uuid, delivery.queue)
            self.release(delivery, ran=True)

    def release(self, delivery: Delivery, ran: bool = False) -> None:
        """Hand a held message back untouched, claimable again at once;
        ``ran``: it had started here (its status said RUNNING)."""
        self.holdings.drop(delivery.uuid)
        try:
            if ran:
                set_waiting(self.broker, self.tasks, delivery)
            self.broker.release(delivery)
        except Exception:
            log.exception("could not release message %s; it comes back when its lease runs out",
                          delivery.uuid)

    # --- signals ---------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stop_event.is_set():
            self.hurry.set()
        self.stop()

    # --- bad input ---------------------------------------------------------------------

    def reject_unknown(self, message: Message) -> None:
        rejects.reject_unknown(self.broker, self.tasks, message)

    def reject_undecodable(self, delivery: Delivery, exc: Exception) -> None:
        rejects.reject_undecodable(self.broker, self.tasks, delivery, exc)
