"""Pools whose work runs in child processes, each child a whole worker: it
claims, runs and settles messages on its own, so no message is ever passed
between processes and the parent stays out of the hot path.

The parent only supervises, every ``prune_interval`` ms:

* scales: one child at first; another (up to ``n_processes``) whenever every
  slot of every child is busy; a child idle for a while is asked to leave
  (never the last one);
* restarts a child that died, and makes what it held claimable again at once
  (what it had not started is released as it was; what it was running gets
  its lease cut short with the delivery counted, so a message that kills
  every worker it reaches ends as a poison message, not in a loop; and the
  pool then runs that many messages one at a time, so the culprit dies alone);
* enforces timeouts that need a process to go: a 'process' task past its
  deadline, or a 'thread' task that did not stop when TimeoutError was raised
  in it (``STUCK_THREAD_GRACE_S`` later). The child is killed, the message is
  settled with TimeoutError (retried if its task allows, else failed), the
  other messages the child held are released, and a fresh child replaces it;
* on SIGTERM / SIGINT tells every child to stop, waits ``grace_period``, then
  kills what is left and releases what it held.

What each child runs is in the shared :class:`~alsek_core.worker.slots.SlotTable`,
and every lease it holds in the :class:`~alsek_core.worker.slots.LeaseBook`.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import time
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Any

from alsek_core.backoff import Backoff
from alsek_core.errors import AlsekError
from alsek_core.execution import settle_failure
from alsek_core.message import Message
from alsek_core.ports import Delivery
from alsek_core.task import Task
from alsek_core.worker.base import IDLE_BACKOFF, BaseWorkerPool
from alsek_core.worker.holdings import MAX_CLAIM_AHEAD, Entry, Holdings
from alsek_core.worker.interrupt import TaskTimeoutError
from alsek_core.worker.mp import context
from alsek_core.worker.slots import LeaseBook, SlotState, SlotTable

log = logging.getLogger(__name__)

#: How long a thread may outlive its deadline (after TimeoutError was raised in
#: it) before its whole process is stopped.
STUCK_THREAD_GRACE_S = 5.0
#: A child with nothing to do for this long is let go (unless it is the last).
IDLE_BEFORE_PRUNE_S = 10.0
#: Cutting a lease short: the message is claimable again right away.
CUT_LEASE_MS = 1
#: While the pool may still grow, how often to look whether it should: a
#: backlog should not wait a whole prune_interval for its second process.
GROW_CHECK_S = 0.025
#: Slack between a child's own grace period and the parent's kill.
SHUTDOWN_SLACK_S = 2.0


class _Child:
    def __init__(self, index: int, process: Any) -> None:
        self.index = index
        self.process = process
        self.started = time.monotonic()
        self.leaving = False


class SharedHoldings(Holdings):
    """A child's holdings, also written to the pool's lease book (in the
    records ``room``), where the parent finds them if the child dies."""

    def __init__(self, book: LeaseBook, room: range) -> None:
        super().__init__()
        self._book = book
        self._free = list(reversed(room))

    def _added(self, entry: Entry) -> None:
        if self._free and self._book.put(self._free[-1], entry.delivery):
            entry.record = self._free.pop()

    def _removed(self, entry: Entry) -> None:
        if entry.record >= 0:
            self._book.clear(entry.record)
            self._free.append(entry.record)


class SupervisedPool(BaseWorkerPool):
    """A :class:`BaseWorkerPool` run as up to ``n_processes`` child processes of
    ``slots_per_process`` slots each. Subclasses implement the engine every
    child runs (``free_slots`` / ``submit_to_executor``) and report each
    message they run with ``begin_slot`` / ``end_slot``."""

    def __init__(
        self,
        tasks: Iterable[Task],
        n_processes: int,
        slots_per_process: int,
        queues: Iterable[str] | None = None,
        prune_interval: int = 100,
        backoff: Backoff | None = IDLE_BACKOFF,
        **options: Any,
    ) -> None:
        super().__init__(tasks, queues=queues, backoff=backoff, **options)
        if n_processes < 1 or slots_per_process < 1:
            raise AlsekError(f"need at least one process and one slot, got {n_processes} and {slots_per_process}")
        self.n_processes = n_processes
        self.slots_per_process = slots_per_process
        self.prune_interval = prune_interval
        self.slot_table: SlotTable | None = None
        self.lease_book: LeaseBook | None = None
        self._careful: Any = None  # shared: messages still to run one at a time
        self.child_index: int | None = None
        self._parent_pid = os.getpid()
        self._children: dict[int, _Child] = {}
        self._quick_deaths = 0
        self._respawn_at = 0.0

    @property
    def capacity(self) -> int:
        return self.n_processes * self.slots_per_process

    @property
    def leases_per_process(self) -> int:
        """Room for what a child can hold: its slots, a claim ahead, and slack
        for messages finishing while the next batch arrives."""
        return 2 * (self.slots_per_process + MAX_CLAIM_AHEAD)

    # --- the child side -------------------------------------------------------------

    def slot_index(self, local: int) -> int:
        assert self.child_index is not None
        return self.child_index * self.slots_per_process + local

    def begin_slot(self, local: int, delivery: Delivery, timeout_ms: int, terminate: bool) -> None:
        assert self.slot_table is not None
        self.slot_table.begin(self.slot_index(local), delivery, timeout_ms, terminate)

    def end_slot(self, local: int) -> None:
        assert self.slot_table is not None
        self.slot_table.end(self.slot_index(local))

    def claim_limit(self) -> int:
        """After a child died running several messages, any of which may have
        killed it, the pool runs that many messages one at a time (its children
        take turns), so the culprit dies alone and ends as a poison message
        while the others, run apart from it, succeed."""
        free = self.free_slots()
        if self._careful is None or self._careful.value <= 0 or free <= 0:
            return free
        return 0 if len(self.holdings) else 1

    def execute(self, task: Task, message: Message, user_code: AbstractContextManager[Any] | None = None) -> None:
        super().execute(task, message, user_code)
        if self._careful is not None and self._careful.value > 0:
            with self._careful.get_lock():
                self._careful.value = max(0, self._careful.value - 1)

    def start_engine(self) -> None:
        """Set up what a child needs before it consumes (threads, ...)."""

    def watch(self) -> None:
        if os.getppid() != self._parent_pid and not self.stop_event.is_set():
            log.error("the pool's parent process is gone; stopping")
            self.stop()

    def _child_main(self, index: int) -> None:
        # stop_event is the parent's, as it was at the fork: a SIGTERM that
        # reached this process before its own handlers were in place still counts.
        self.child_index = index
        assert self.lease_book is not None
        self.holdings = SharedHoldings(self.lease_book, self._leases_of(index))
        self.broker = self.broker.batching()  # an ack batch of its own
        try:
            self.start_engine()
            BaseWorkerPool.run(self)
        except Exception as exc:
            log.error("worker process %d failed: %s: %s", index, type(exc).__name__, exc,
                      exc_info=log.isEnabledFor(logging.DEBUG))
            sys.exit(1)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.child_index is not None:
            self.stop()  # the parent decides when the grace period is over
        else:
            super()._on_signal(signum, frame)

    # --- the parent side ------------------------------------------------------------

    def run(self) -> None:
        """Start the children and supervise them until SIGTERM / SIGINT or ``stop()``."""
        if self.child_index is not None:
            BaseWorkerPool.run(self)
            return
        ctx = context()
        self.slot_table = SlotTable(ctx, self.capacity)
        self.lease_book = LeaseBook(ctx, self.n_processes * self.leases_per_process)
        self._careful = ctx.Value(ctypes.c_int, 0)
        self._parent_pid = os.getpid()
        previous = self._install_signal_handlers()
        log.info("%s: up to %d process(es) x %d slot(s), consuming %s",
                 type(self).__name__, self.n_processes, self.slots_per_process, ", ".join(self.queues))
        try:
            while not self.stop_event.is_set():
                self._reap(ctx)
                self._enforce_timeouts(ctx)
                self._scale(ctx)
                tick = self.prune_interval / 1000
                self.stop_event.wait(min(tick, GROW_CHECK_S) if len(self._children) < self.n_processes else tick)
        finally:
            self._shut_down()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _slots_of(self, index: int) -> range:
        return range(index * self.slots_per_process, (index + 1) * self.slots_per_process)

    def _leases_of(self, index: int) -> range:
        return range(index * self.leases_per_process, (index + 1) * self.leases_per_process)

    def _states(self, index: int) -> list[SlotState | None]:
        assert self.slot_table is not None
        return [self.slot_table.read(s) for s in self._slots_of(index)]

    def _close_connections(self) -> None:
        """A forked child must not share its parent's connections (SQLite and
        psycopg forbid it); backends reconnect on next use."""
        backends: dict[int, Any] = {}
        for task in self.tasks.values():
            for owner in (task.broker, task.result_store, task.status_tracker):
                backend = getattr(owner, "backend", None)
                if backend is not None:
                    backends.setdefault(id(backend), backend)
        for backend in backends.values():
            close = getattr(backend, "close", None)
            if close is not None:
                close()

    def _spawn(self, ctx: Any, index: int) -> None:
        assert self.slot_table is not None
        for s in self._slots_of(index):
            self.slot_table.reset(s)
        current = ctx.current_process()
        if current.daemon:
            # Run inside a daemonic process (the seed's pytest fixture does):
            # multiprocessing refuses children there to avoid orphans, which
            # our children avoid by themselves (they stop when we go away).
            current.daemon = False
        self._close_connections()
        process = ctx.Process(target=self._child_main, args=(index,), name=f"alsek-worker-{index}")
        process.start()
        self._children[index] = _Child(index, process)
        log.debug("started worker process %d (pid %s)", index, process.pid)

    def _reap(self, ctx: Any) -> None:
        for child in list(self._children.values()):
            if child.process.is_alive():
                continue
            child.process.join()
            del self._children[child.index]
            if child.leaving:
                log.debug("worker process %d left (idle)", child.index)
                self._recover(child.index, killed=False)
                continue
            log.warning("worker process %d (pid %s) exited unexpectedly with code %s; replacing it",
                        child.index, child.process.pid, child.process.exitcode)
            held = self._recover(child.index, killed=False)
            if held:
                with self._careful.get_lock():
                    self._careful.value = max(self._careful.value, held)
            # Dying at start-up with nothing in hand (a broken environment) is
            # retried ever more slowly; a task that kills its process is not:
            # its message's delivery count ends that loop.
            failing = not held and time.monotonic() - child.started < 2.0
            self._quick_deaths = self._quick_deaths + 1 if failing else 0
            self._respawn_at = time.monotonic() + min(30.0, 0.5 * 2 ** self._quick_deaths) if failing else 0.0
        if not self._children and time.monotonic() >= self._respawn_at and not self.stop_event.is_set():
            self._spawn(ctx, 0)

    def _recover(self, index: int, killed: bool, timed_out: tuple[int, int] | None = None) -> int:
        """Deal with what a dead child held, so that none of it waits for its
        lease to end. The message that timed out (``timed_out``: its slot and
        sequence number) is settled. What it was running otherwise gets its
        lease cut short if the child crashed (any of them may have caused it,
        so the delivery counts towards the poison limit), and is released as it
        was if we killed the child. What it had claimed but not started is
        released as it was. Returns how many messages it was running."""
        assert self.slot_table is not None and self.lease_book is not None
        running, handled = 0, set()
        for s, state in zip(self._slots_of(index), self._states(index), strict=True):
            self.slot_table.reset(s)
            if state is None or not state.busy or state.delivery is None:
                continue
            running += 1
            if timed_out == (s, state.seq):
                handled.add(state.delivery.uuid)
                self._try(self._settle_timeout, state.delivery)
            elif killed:
                handled.add(state.delivery.uuid)
                self._try(self._release_state, state.delivery)
            else:
                handled.add(state.delivery.uuid)
                self._try(self._cut_lease, state.delivery)
        for r in self._leases_of(index):
            delivery = self.lease_book.take(r)
            if delivery is None or delivery.uuid in handled:
                continue
            self._try(self._release_state if delivery.payload else self._cut_lease, delivery)
        return running

    def _try(self, action: Any, delivery: Delivery) -> None:
        try:
            action(delivery)
        except Exception:
            log.exception("could not recover message %s of a dead worker; it returns when its lease ends",
                          delivery.uuid)

    def _cut_lease(self, delivery: Delivery) -> None:
        self.broker.extend(delivery, CUT_LEASE_MS)

    def _release_state(self, delivery: Delivery) -> None:
        self.broker.release(delivery)

    def _settle_timeout(self, delivery: Delivery) -> None:
        message = self.broker.decode(self.broker.payload(delivery))
        message.delivery = delivery
        task = self.tasks.get(message.task_name)
        if task is None:
            self.broker.fail(message, TaskTimeoutError())
            return
        settle_failure(task, message, TaskTimeoutError(
            f"ran past its timeout of {message.timeout} ms; its worker process was stopped"))

    def _enforce_timeouts(self, ctx: Any) -> None:
        now = time.monotonic()
        for child in list(self._children.values()):
            for s, state in zip(self._slots_of(child.index), self._states(child.index), strict=True):
                if state is None or not state.busy or now <= state.deadline:
                    continue
                if not state.terminate and now - state.deadline < STUCK_THREAD_GRACE_S:
                    continue
                uuid = state.delivery.uuid if state.delivery else "?"
                log.warning("message %s ran past its timeout; stopping worker process %d (pid %s)",
                            uuid, child.index, child.process.pid)
                child.process.kill()
                child.process.join()
                del self._children[child.index]
                self._recover(child.index, killed=True, timed_out=(s, state.seq))
                self._spawn(ctx, child.index)
                break

    def _scale(self, ctx: Any) -> None:
        now = time.monotonic()
        staying = [c for c in self._children.values() if not c.leaving]
        states = {c.index: self._states(c.index) for c in staying}
        full = bool(staying) and all(self._full(c.index, states[c.index]) for c in staying)
        if len(self._children) < self.n_processes and full:  # no child at all: _reap respawns, with its slow-down
            free = next(i for i in range(self.n_processes) if i not in self._children)
            self._spawn(ctx, free)
            return
        if len(staying) <= 1:
            return
        for child in staying:
            group = states[child.index]
            idle = all(s is not None and not s.busy and now - s.changed_at > IDLE_BEFORE_PRUNE_S for s in group)
            if idle and now - child.started > IDLE_BEFORE_PRUNE_S:
                child.leaving = True
                child.process.terminate()
                log.debug("worker process %d is idle; letting it go", child.index)
                return

    def _full(self, index: int, states: list[SlotState | None]) -> bool:
        """Every slot busy, or more held than slots (it has claimed ahead: there
        is a backlog). The second catches a pool of tiny tasks, whose slots are
        each idle for a moment between messages."""
        assert self.lease_book is not None
        if all(s is not None and s.busy for s in states):
            return True
        return self.lease_book.count(self._leases_of(index)) > self.slots_per_process

    def _shut_down(self) -> None:
        if not self._children:
            return
        log.info("stopping %d worker process(es)", len(self._children))
        for child in self._children.values():
            if child.process.is_alive():
                child.process.terminate()
        deadline = time.monotonic() + self.grace_period / 1000 + SHUTDOWN_SLACK_S
        while any(c.process.is_alive() for c in self._children.values()):
            if time.monotonic() >= deadline or self._hurry.is_set():
                break
            time.sleep(0.05)
        for child in self._children.values():
            killed = child.process.is_alive()
            if killed:
                child.process.kill()
            child.process.join()
            self._recover(child.index, killed=killed)
        self._children.clear()

