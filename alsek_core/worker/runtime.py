"""Pools whose work runs in worker processes, each process a whole worker: it
claims, runs and settles messages on its own, so no message is ever passed
between processes and the supervisor (:mod:`alsek_core.worker.supervisor`)
stays out of the hot path.

This module is the worker side: what one worker process runs once the
supervisor has started it. It writes what each of its slots runs to the
shared :class:`~alsek_core.worker.slots.SlotTable` and every lease it holds
to the :class:`~alsek_core.worker.slots.LeaseBook`, where the supervisor
finds them if the process dies.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Iterable
from typing import Any, Unpack

from alsek_core.errors import AlsekError
from alsek_core.message import Message
from alsek_core.ports import Delivery, Settlement
from alsek_core.task import Task
from alsek_core.worker import settlement_record
from alsek_core.worker.aio import DEFAULT_N_ASYNC, CoroutineRunner
from alsek_core.worker.base import BaseWorkerPool
from alsek_core.worker.holdings import MAX_CLAIM_AHEAD, Entry, Holdings
from alsek_core.worker.options import WorkerOptions
from alsek_core.worker.slots import LeaseBook, SharedState
from alsek_core.worker.supervisor import Supervisor

log = logging.getLogger(__name__)

#: ms between the supervisor's rounds (timeouts, scaling, restarts).
DEFAULT_PRUNE_MS = 100


class SharedHoldings(Holdings):
    """A worker process's holdings, also written to the pool's lease book (in
    the records ``room``), where the supervisor finds them if the process
    dies: with the settlement of each finished message waiting in the
    batch, for the supervisor to apply."""

    def __init__(self, book: LeaseBook, room: range) -> None:
        super().__init__()
        self._book = book
        self._free = list(reversed(room))

    def _added(self, entry: Entry) -> None:
        if self._free and self._book.put(self._free[-1], entry.delivery):
            entry.record = self._free.pop()

    def _finished(self, entry: Entry, settlement: Settlement | None) -> bool:
        if entry.record < 0:
            return settlement is None
        data = None if settlement is None else settlement_record.encode(settlement)
        return self._book.mark_finished(entry.record, data)

    def _removed(self, entry: Entry) -> None:
        if entry.record >= 0:
            self._book.clear(entry.record)
            self._free.append(entry.record)


class SupervisedPool(BaseWorkerPool):
    """A :class:`BaseWorkerPool` run as up to ``n_processes`` worker processes
    under a :class:`Supervisor`. Each process has ``slots_per_process`` slots
    for plain tasks (none if the pool has no plain task) and, if the pool has
    ``async def`` tasks, ``n_async`` more for them, run by a
    :class:`~alsek_core.worker.aio.CoroutineRunner` (``self.coroutines``).
    Subclasses implement the engine every process runs for plain tasks
    (``free_slots`` / ``submit_to_executor``, handing coroutine tasks to
    ``self.coroutines``) and report each message they run with
    ``begin_slot`` / ``end_slot``."""

    def __init__(
        self,
        tasks: Iterable[Task],
        n_processes: int,
        slots_per_process: int,
        prune_interval: int = DEFAULT_PRUNE_MS,
        n_async: int = DEFAULT_N_ASYNC,
        **options: Unpack[WorkerOptions],
    ) -> None:
        super().__init__(tasks, **options)
        if n_processes < 1 or slots_per_process < 1 or n_async < 1:
            raise AlsekError(f"need at least one process, one slot and one async slot, got "
                             f"{n_processes}, {slots_per_process} and {n_async}")
        self.n_processes = n_processes
        self.sync_slots = slots_per_process if any(not t.is_async for t in self.tasks.values()) else 0
        self.n_async = n_async if any(t.is_async for t in self.tasks.values()) else 0
        self.slots_per_process = self.sync_slots + self.n_async
        self.prune_interval = prune_interval
        self.shared: SharedState | None = None
        self.coroutines: CoroutineRunner | None = None
        self.index = -1  # which worker process this is, once one
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}"  # the workers registry's, once running
        self._parent_pid = os.getpid()
        self._supervisor: Supervisor | None = None

    @property
    def leases_per_process(self) -> int:
        """Room for what a process can hold: its slots, a claim ahead, and
        slack for messages finishing while the next batch arrives."""
        return 2 * (self.slots_per_process + MAX_CLAIM_AHEAD)

    @property
    def capacity(self) -> int:
        """How many messages the pool can run at once."""
        return self.n_processes * self.slots_per_process

    def busy_slots(self) -> int:
        """How many run now (read by the supervisor; 0 before it starts)."""
        supervisor = self._supervisor
        return 0 if supervisor is None else supervisor.busy()

    def run(self) -> None:
        """Start the worker processes and supervise them until SIGTERM / SIGINT or ``stop()``."""
        self._parent_pid = os.getpid()
        self._supervisor = Supervisor(self)
        self._supervisor.run()

    def serve(self, index: int, shared: SharedState) -> None:
        """The worker process ``index``: consume until stopped. Its stop_event is
        the supervisor's as it was at the fork, so a SIGTERM that reached this
        process before its own handlers were in place still counts."""
        self.index, self.shared = index, shared
        self.holdings = SharedHoldings(shared.lease_book, shared.leases_of(index))
        self.broker = self.broker.batching()  # an ack batch of its own
        self.broker.worker = f"{self.worker_id}/{index}"
        try:
            if self.n_async:
                self.coroutines = CoroutineRunner(self, range(self.sync_slots, self.slots_per_process))
                self.coroutines.start()
            self.start_engine()
            self.consume()
        except Exception as exc:
            log.error("worker process %d failed: %s: %s", index, type(exc).__name__, exc,
                      exc_info=log.isEnabledFor(logging.DEBUG))
            sys.exit(1)
        finally:
            if self.coroutines is not None:
                self.coroutines.stop()

    def submit_coroutine(self, task: Task, message: Message) -> bool:
        """Hand ``message`` to the event loop if its task is ``async def``;
        False if it is a plain task, for the subclass's own engine."""
        if not task.is_async:
            return False
        assert self.coroutines is not None
        self.coroutines.submit(task, message)
        return True

    def coroutine_slots(self) -> int:
        """What the event loop accepts now (0 when the pool has no async task)."""
        return self.coroutines.free_slots() if self.coroutines is not None else 0

    def start_engine(self) -> None:
        """Set up what a worker process needs before it consumes (threads, ...)."""

    def begin_slot(self, local: int, delivery: Delivery, timeout_ms: int, terminate: bool) -> None:
        assert self.shared is not None
        self.shared.slot_table.begin(self.shared.slots_of(self.index)[local], delivery, timeout_ms, terminate)

    def end_slot(self, local: int) -> None:
        assert self.shared is not None
        self.shared.slot_table.end(self.shared.slots_of(self.index)[local])

    def stop_slot(self, local: int) -> None:
        """Stop the run in slot ``local``: its message was revoked. Asked at
        every ``watch()`` until the run ends. By default nothing: the
        supervisor stops the whole process instead, as a process pool's slot
        is its process. A pool whose slots share a process overrides it (a
        thread: RevokedError raised in it; an event loop: the coroutine
        cancelled) and ends the run with ``execution.settle_revoked``; a run
        still going ``REVOKED_THREAD_GRACE_S`` later has its process stopped."""

    def claim_limit(self) -> int:
        """After a process died running several messages, any of which may have
        killed it, the pool runs that many messages one at a time (its
        processes take turns), so the culprit dies alone and ends as a poison
        message while the others, run apart from it, succeed."""
        if self.draining:
            return 0
        free = self.free_slots()
        if self.shared is None or self.shared.careful.value <= 0 or free <= 0:
            return free
        return 0 if len(self.holdings) else 1

    def finished(self, message: Message, started: float) -> None:
        super().finished(message, started)
        careful = self.shared.careful if self.shared is not None else None
        if careful is not None and careful.value > 0:
            with careful.get_lock():
                careful.value = max(0, careful.value - 1)

    @property
    def draining(self) -> bool:
        """Told by the supervisor to finish what runs here and start nothing more."""
        return self.shared is not None and bool(self.shared.draining[self.index])

    def watch(self) -> None:
        if os.getppid() != self._parent_pid and not self.stop_event.is_set():
            log.error("the pool's supervisor is gone; stopping")
            self.stop()
        if self.draining:
            for delivery in self.holdings.take_unstarted(older_than_s=0):
                self.release(delivery)
        if self.shared is not None:
            # Coroutine slots are left out: the coroutine runner cancels its own revoked runs.
            for local, s in enumerate(self.shared.slots_of(self.index)[:self.sync_slots]):
                if self.shared.slot_table.stop_requested(s):
                    self.stop_slot(local)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stop()  # the supervisor decides when the grace period is over
