"""The supervisor of a pool's worker processes (the worker side is
:mod:`alsek_core.worker.runtime`). It never claims or runs a message; every
``prune_interval`` ms it:

* scales: one worker process at first; another (up to ``n_processes``)
  whenever every slot of every process is busy; a process idle for a while is
  asked to leave (never the last one);
* restarts a process that died, and makes what it held claimable again at
  once (what it had not started is released as it was; what it was running
  gets its lease cut short with the delivery counted, so a message that kills
  every worker it reaches ends as a poison message, not in a loop; and the
  pool then runs that many messages one at a time, so the culprit dies alone);
* enforces timeouts that need a process to go: a 'process' task past its
  deadline, or a 'thread' task that did not stop when TimeoutError was raised
  in it (``STUCK_THREAD_GRACE_S`` later). The process first drains: it claims
  nothing more and hands back what it has not started, and its other threads
  finish what they run. Then it is killed, the message is settled with
  TimeoutError (retried if its task allows, else failed), and a fresh process
  replaces it;
* on SIGTERM / SIGINT tells every process to stop, waits ``grace_period``,
  then kills what is left and releases what it held.

What each process runs, and every lease it holds, it reads from the
:class:`~alsek_core.worker.slots.SharedState`, and only acts on it once that
process is gone.
"""

from __future__ import annotations

import functools
import logging
import signal
import threading
import time
from collections.abc import Mapping
from types import FrameType
from typing import Any, Protocol

from alsek_core.broker import Broker
from alsek_core.execution import set_waiting, settle_failure
from alsek_core.ports import Delivery
from alsek_core.task import Task
from alsek_core.worker import settlement_record
from alsek_core.worker.base import install_signal_handlers
from alsek_core.worker.fork import detach, owners, unconnected_copies
from alsek_core.worker.interrupt import TaskTimeoutError
from alsek_core.worker.mp import context
from alsek_core.worker.slots import SharedState, SlotState
from alsek_core.workers import Heartbeat

log = logging.getLogger(__name__)

#: How long a thread may outlive its deadline (after TimeoutError was raised in
#: it) before its whole process is stopped.
STUCK_THREAD_GRACE_S = 5.0
#: A process with nothing to do for this long is let go (unless it is the last).
IDLE_BEFORE_PRUNE_S = 10.0
#: Cutting a lease short: the message is claimable again right away.
CUT_LEASE_MS = 1
#: While the pool may still grow, how often to look whether it should: a
#: backlog should not wait a whole prune_interval for its second process.
GROW_CHECK_S = 0.025
#: Slack between a process's own grace period and the supervisor's kill.
SHUTDOWN_SLACK_S = 2.0


class Supervised(Protocol):
    """The pool as its supervisor sees it."""

    broker: Broker
    queues: list[str]
    n_processes: int
    slots_per_process: int
    prune_interval: int
    grace_period: int
    stop_event: threading.Event
    hurry: threading.Event

    @property
    def tasks(self) -> Mapping[str, Task]: ...

    @property
    def leases_per_process(self) -> int: ...

    def serve(self, index: int, shared: SharedState) -> None:
        """Run worker process ``index`` (called in that process)."""


class _Child:
    def __init__(self, index: int, process: Any) -> None:
        self.index = index
        self.process = process
        self.started = time.monotonic()
        self.leaving = False


class Supervisor:
    def __init__(self, pool: Supervised) -> None:
        self.pool = pool
        self.broker = pool.broker
        self.stop_event = pool.stop_event
        self.ctx = context()
        self.shared = SharedState(self.ctx, pool.n_processes, pool.slots_per_process, pool.leases_per_process)
        self._holders = owners(pool.tasks.values(), pool.broker)
        self._copies = unconnected_copies(self._holders)
        self._children: dict[int, _Child] = {}
        self._quick_deaths = 0
        self._respawn_at = 0.0

    def run(self) -> None:
        """Start the worker processes and supervise them until SIGTERM / SIGINT or ``stop()``."""
        previous = install_signal_handlers(self._on_signal)
        pool = self.pool
        log.info("%s: up to %d process(es) x %d slot(s), consuming %s",
                 type(pool).__name__, pool.n_processes, pool.slots_per_process, ", ".join(pool.queues))
        capacity = pool.n_processes * pool.slots_per_process
        heartbeat = Heartbeat(self.broker.backend, type(pool).__name__, pool.queues, capacity, self._busy)
        try:
            while not self.stop_event.is_set():
                heartbeat.beat()  # the workers registry (alsek_core.workers)
                self._reap()
                self._enforce_timeouts()
                self._scale()
                tick = pool.prune_interval / 1000
                self.stop_event.wait(min(tick, GROW_CHECK_S) if len(self._children) < pool.n_processes else tick)
        finally:
            self._shut_down()
            heartbeat.stop()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _busy(self) -> int:
        """Slots running a message now, across every process (for the workers registry)."""
        table = self.shared.slot_table
        return sum(1 for s in range(self.pool.n_processes * self.pool.slots_per_process)
                   if (state := table.read(s)) is not None and state.busy)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        """The first signal stops the pool; a second ends the grace period at once."""
        if self.stop_event.is_set():
            self.pool.hurry.set()
        self.stop_event.set()

    def _serve(self, index: int) -> None:
        """In the new worker process: leave the host's connections alone, then work."""
        detach(self._holders, self._copies)
        self.pool.serve(index, self.shared)

    def _spawn(self, index: int) -> None:
        for s in self.shared.slots_of(index):
            self.shared.slot_table.reset(s)
        self.shared.draining[index] = False
        current = self.ctx.current_process()
        if current.daemon:
            # Run inside a daemonic process (the seed's pytest fixture does):
            # multiprocessing refuses children there to avoid orphans, which
            # our children avoid by themselves (they stop when we go away).
            current.daemon = False
        process = self.ctx.Process(target=self._serve, args=(index,), name=f"alsek-worker-{index}")
        process.start()
        self._children[index] = _Child(index, process)
        log.debug("started worker process %d (pid %s)", index, process.pid)

    def _reap(self) -> None:
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
                with self.shared.careful.get_lock():
                    self.shared.careful.value = max(self.shared.careful.value, held)
            # Dying at start-up with nothing in hand (a broken environment) is
            # retried ever more slowly; a task that kills its process is not:
            # its message's delivery count ends that loop.
            failing = not held and time.monotonic() - child.started < 2.0
            self._quick_deaths = self._quick_deaths + 1 if failing else 0
            self._respawn_at = time.monotonic() + min(30.0, 0.5 * 2 ** self._quick_deaths) if failing else 0.0
        if not self._children and time.monotonic() >= self._respawn_at and not self.stop_event.is_set():
            self._spawn(0)

    def _recover(self, index: int, killed: bool, timed_out: tuple[int, int] | None = None) -> int:
        """Deal with what a dead worker process held, so that none of it waits
        for its lease to end. What finished there is acked, or settled (its
        ack or settlement was still in the process's batch): it never runs
        again. The message that timed
        out (``timed_out``: its slot and sequence number) is settled. What it
        was running otherwise gets its lease cut short if the process crashed
        (any of them may have caused it, so the delivery counts towards the
        poison limit), and is released as it was if we killed the process.
        What it had claimed but not started is released as it was. Returns how
        many messages it was running."""
        held = [found for r in self.shared.leases_of(index) if (found := self.shared.lease_book.take(r))]
        finished = {h.delivery.uuid for h in held if h.finished}
        for h in held:
            if h.finished:
                self._try(functools.partial(self._finish, settlement=h.settlement), h.delivery)
        self._try_acks()
        running, handled = 0, set(finished)
        for s, state in zip(self.shared.slots_of(index), self.shared.states(index), strict=True):
            self.shared.slot_table.reset(s)
            if state is None or not state.busy or state.delivery is None or state.delivery.uuid in finished:
                continue
            running += 1
            handled.add(state.delivery.uuid)
            if timed_out == (s, state.seq):
                self._try(self._settle_timeout, state.delivery)
            elif killed:
                self._try(self._release_ran, state.delivery)
            else:
                self._try(self._cut_lease_ran, state.delivery)
        for h in held:
            if h.delivery.uuid not in handled:
                self._try(self._release_state if h.delivery.payload else self._cut_lease, h.delivery)
        return running

    def _finish(self, delivery: Delivery, settlement: bytes | None) -> None:
        """Ack a message a dead worker had finished, or apply its settlement
        if that was still waiting in the worker's batch (see ``_try_acks``)."""
        if settlement is None:
            self.broker.ack(delivery)
        else:
            self.broker.settle(settlement_record.decode(settlement, delivery, self.broker.serializer))

    def _try_acks(self) -> None:
        try:
            self.broker.flush_acks()
        except Exception:
            log.exception("could not ack what a dead worker had finished; it runs again when its lease ends")

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

    def _release_ran(self, delivery: Delivery) -> None:
        set_waiting(self.broker, self.pool.tasks, delivery)
        self.broker.release(delivery)

    def _cut_lease_ran(self, delivery: Delivery) -> None:
        set_waiting(self.broker, self.pool.tasks, delivery)
        self._cut_lease(delivery)

    def _settle_timeout(self, delivery: Delivery) -> None:
        message = self.broker.decode(self.broker.payload(delivery))
        message.delivery = delivery
        task = self.pool.tasks.get(message.task_name)
        if task is None:
            self.broker.fail(message, TaskTimeoutError())
            return
        settle_failure(task, message, TaskTimeoutError(
            f"ran past its timeout of {message.timeout} ms; its worker process was stopped"))

    def _enforce_timeouts(self) -> None:
        """Stop a worker process whose message must go (see the module doc), but
        only once its other slots are idle or overdue themselves: until then it
        drains (claims nothing more, hands back what it has not started), so
        the messages its other threads run finish instead of running again."""
        now = time.monotonic()
        for child in list(self._children.values()):
            states = self.shared.states(child.index)
            overdue = [self._overdue(state, now) for state in states]
            for s, state, late in zip(self.shared.slots_of(child.index), states, overdue, strict=True):
                if not late or state is None:
                    continue
                if any(other is not None and other.busy and not other_late
                       for other, other_late in zip(states, overdue, strict=True) if other is not state):
                    if not self.shared.draining[child.index]:
                        self.shared.draining[child.index] = True
                        log.info("message %s ran past its timeout; worker process %d finishes its other "
                                 "messages before it is stopped", self._uuid(state), child.index)
                    break
                log.warning("message %s ran past its timeout; stopping worker process %d (pid %s)",
                            self._uuid(state), child.index, child.process.pid)
                child.process.kill()
                child.process.join()
                del self._children[child.index]
                self._recover(child.index, killed=True, timed_out=(s, state.seq))
                self._spawn(child.index)
                break

    @staticmethod
    def _overdue(state: SlotState | None, now: float) -> bool:
        """Past its deadline, and either its task's mechanism is 'process' or
        the TimeoutError raised in its thread did not stop it in time."""
        if state is None or not state.busy or now <= state.deadline:
            return False
        return state.terminate or now - state.deadline >= STUCK_THREAD_GRACE_S

    @staticmethod
    def _uuid(state: SlotState) -> str:
        return state.delivery.uuid if state.delivery else "?"

    def _scale(self) -> None:
        now = time.monotonic()
        staying = [c for c in self._children.values() if not c.leaving]
        states = {c.index: self.shared.states(c.index) for c in staying}
        full = bool(staying) and all(self._full(c.index, states[c.index]) for c in staying)
        if len(self._children) < self.pool.n_processes and full:  # no child at all: _reap respawns, with its slow-down
            free = next(i for i in range(self.pool.n_processes) if i not in self._children)
            self._spawn(free)
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
        if all(s is not None and s.busy for s in states):
            return True
        return self.shared.lease_book.count(self.shared.leases_of(index)) > self.pool.slots_per_process

    def _shut_down(self) -> None:
        if not self._children:
            return
        log.info("stopping %d worker process(es)", len(self._children))
        for child in self._children.values():
            if child.process.is_alive():
                child.process.terminate()
        deadline = time.monotonic() + self.pool.grace_period / 1000 + SHUTDOWN_SLACK_S
        while any(c.process.is_alive() for c in self._children.values()):
            if time.monotonic() >= deadline or self.pool.hurry.is_set():
                break
            time.sleep(0.05)
        for child in self._children.values():
            killed = child.process.is_alive()
            if killed:
                child.process.kill()
            child.process.join()
            self._recover(child.index, killed=killed)
        self._children.clear()

