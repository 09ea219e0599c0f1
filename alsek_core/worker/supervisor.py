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
  in it, or a coroutine that did not stop when it was cancelled (both
  ``STUCK_THREAD_GRACE_S`` later). The process first drains: it claims
  nothing more and hands back what it has not started, and its other threads
  finish what they run (not its other coroutines: the stuck one blocks
  their event loop, so they are handed back for another process to run).
  Then it is killed, the message is settled with TimeoutError (retried if
  its task allows, else failed), and a fresh process replaces it;
* stops what runs of a revoked message: it asks the broker which of the
  messages its slots run are revoked (woken at once where the backend pushes
  revocations, else within ``VIEW_MS``) and asks each such slot to stop
  (``SlotTable.request_stop``). A worker process that runs messages in
  threads raises RevokedError in the slot's thread itself
  (``SupervisedPool.stop_slot``); a slot running in a process of its own (a
  process pool, a 'process' task), or a thread still running
  ``REVOKED_THREAD_GRACE_S`` later, has its process stopped as for a timeout,
  and the message is settled REVOKED;
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
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any, Protocol

from alsek_core import middleware
from alsek_core.broker import Broker
from alsek_core.errors import TaskTimeoutError
from alsek_core.execution import set_waiting, settle_failure, settle_revoked
from alsek_core.ports import Delivery
from alsek_core.task import Task
from alsek_core.worker import settlement_record
from alsek_core.worker.base import install_signal_handlers
from alsek_core.worker.fork import detach, owners, unconnected_copies
from alsek_core.worker.mp import context
from alsek_core.worker.slots import SharedState, SlotState
from alsek_core.workers import Heartbeat

log = logging.getLogger(__name__)

#: How long a thread may outlive its deadline (after TimeoutError was raised in
#: it) before its whole process is stopped.
STUCK_THREAD_GRACE_S = 5.0
#: How long a thread may run on after its message was revoked (and
#: RevokedError raised in it) before its whole process is stopped.
REVOKED_THREAD_GRACE_S = 0.5
#: A process with nothing to do for this long is let go (unless it is the last).
IDLE_BEFORE_PRUNE_S = 10.0
#: Cutting a lease short: the message is claimable again right away.
CUT_LEASE_MS = 1
#: While the pool may still grow, how often to look whether it should: a
#: backlog should not wait a whole prune_interval for its second process.
GROW_CHECK_S = 0.025
#: Slack between a process's own grace period and the supervisor's kill.
SHUTDOWN_SLACK_S = 2.0


#: How the supervisor settles a message whose process it stopped.
Settle = Callable[[Delivery], None]


class Supervised(Protocol):
    """The pool as its supervisor sees it."""

    broker: Broker
    queues: list[str]
    n_processes: int
    slots_per_process: int
    sync_slots: int
    prune_interval: int
    grace_period: int
    lease_ms: int
    stop_event: threading.Event
    hurry: threading.Event
    #: The pool's id in the workers registry, set before its processes start.
    worker_id: str

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
        #: Runs asked to stop because revoked: (slot, seq) -> when asked.
        self._stops: dict[tuple[int, int], float] = {}
        #: Set to start the next round at once (a revocation pushed, a signal).
        self._wake = threading.Event()

    def run(self) -> None:
        """Start the worker processes and supervise them until SIGTERM / SIGINT or ``stop()``."""
        previous = install_signal_handlers(self._on_signal)
        pool = self.pool
        log.info("%s: up to %d process(es) x %d slot(s), consuming %s",
                 type(pool).__name__, pool.n_processes, pool.slots_per_process, ", ".join(pool.queues))
        capacity = pool.n_processes * pool.slots_per_process
        heartbeat = Heartbeat(self.broker.backend, type(pool).__name__, pool.queues, capacity, self.busy,
                              self.running)
        pool.worker_id = heartbeat.id  # before any worker process starts: each names itself after it
        threading.Thread(target=self._follow_revocations, name="alsek-revocations", daemon=True).start()
        try:
            while not self.stop_event.is_set():
                heartbeat.beat()  # the workers registry (alsek_core.workers)
                middleware.flush()  # what this process counted (a timeout's failure)
                self._reap()
                self._stop_revoked()
                self._enforce()
                self._scale()
                tick = pool.prune_interval / 1000
                self._wake.wait(min(tick, GROW_CHECK_S) if len(self._children) < pool.n_processes else tick)
                self._wake.clear()
        finally:
            self._shut_down()
            heartbeat.stop()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def busy(self) -> int:
        """Slots running a message now, across every process (for the workers registry)."""
        table = self.shared.slot_table
        return sum(1 for s in range(self.pool.n_processes * self.pool.slots_per_process)
                   if (state := table.read(s)) is not None and state.busy)

    def running(self) -> list[str]:
        """The uuids of the messages running now (for the workers registry)."""
        table = self.shared.slot_table
        return [state.delivery.uuid for s in range(self.pool.n_processes * self.pool.slots_per_process)
                if (state := table.read(s)) is not None and state.busy and state.delivery is not None]

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        """The first signal stops the pool; a second ends the grace period at once."""
        if self.stop_event.is_set():
            self.pool.hurry.set()
        self.stop_event.set()
        self._wake.set()

    def _follow_revocations(self) -> None:
        try:
            self.broker.follow_revocations(self.stop_event, self._wake.set)
        except Exception as exc:
            log.warning("cannot follow revocations as they happen (%s: %s); revoked messages are stopped "
                        "within a few hundred ms instead", type(exc).__name__, exc)

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

    def _recover(self, index: int, killed: bool, settle: Mapping[tuple[int, int], Settle] | None = None) -> int:
        """Deal with what a dead worker process held, so that none of it waits
        for its lease to end. What finished there is acked, or settled (its
        ack or settlement was still in the process's batch): it never runs
        again. The messages it was stopped for (``settle``: by slot and
        sequence number, how to settle each: timed out, revoked) are
        settled; so is a revoked one it was running when it died. What it
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
        states = list(zip(self.shared.slots_of(index), self.shared.states(index), strict=True))
        ran = [state.delivery.uuid for _, state in states
               if state is not None and state.busy and state.delivery is not None]
        revoked = self._revoked(ran) if ran else set()
        for s, state in states:
            self.shared.slot_table.reset(s)
            if state is None or not state.busy or state.delivery is None or state.delivery.uuid in finished:
                continue
            running += 1
            handled.add(state.delivery.uuid)
            how = (settle or {}).get((s, state.seq))
            if how is not None:
                self._try(how, state.delivery)
            elif state.delivery.uuid in revoked:
                self._try(self._settle_revoked, state.delivery)
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
        if that was still waiting in the worker's batch (see ``_try_acks``).
        Nobody here knows its unique key (the record keeps no message): a key
        left held after its holder is gone is taken over by the next submit
        (``Queue.submit_unique``). Nor is it told again: the worker told it
        when it handed it to its batch (see :mod:`alsek_core.execution`); its
        job-history entry, which waited for that worker's flush, is lost."""
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

    def _still_held(self, delivery: Delivery) -> bool:
        """Whether the message of a process that is gone is still held under
        its lease. If not, the process settled it just before it was stopped
        (or the lease ran out): its outcome stands, never overwritten."""
        if self.broker.extend(delivery, self.pool.lease_ms):
            return True
        log.info("message %s was settled before its worker process was stopped; left as it is", delivery.uuid)
        return False

    def _settle_timeout(self, delivery: Delivery) -> None:
        if not self._still_held(delivery):
            return
        message = self.broker.decode(self.broker.payload(delivery))
        message.delivery = delivery
        task = self.pool.tasks.get(message.task_name)
        if task is None:
            self.broker.fail(message, TaskTimeoutError())
            return
        settle_failure(task, message, TaskTimeoutError(
            f"ran past its timeout of {message.timeout} ms; its worker process was stopped"),
            started=time.time() - message.timeout / 1000)

    def _settle_revoked(self, delivery: Delivery) -> None:
        if not self._still_held(delivery):
            return
        message = self.broker.decode(self.broker.payload(delivery))
        message.delivery = delivery
        task = self.pool.tasks.get(message.task_name)
        if task is None:  # a pool only runs its own tasks: it cannot have run this
            self.broker.remove(message)
        else:
            settle_revoked(task, message)

    def _revoked(self, uuids: list[str]) -> set[str]:
        try:
            return self.broker.revoked_among(uuids)
        except Exception as exc:
            log.warning("cannot read the revocations (%s: %s); looking again shortly", type(exc).__name__, exc)
            return set()

    def _stop_revoked(self) -> None:
        """Ask each slot running a revoked message to stop it, once per run
        (``_enforce`` stops its process if that is how it must go)."""
        running: dict[tuple[int, int], str] = {}
        for child in self._children.values():
            for s, state in zip(self.shared.slots_of(child.index), self.shared.states(child.index), strict=True):
                if state is not None and state.busy and state.delivery is not None:
                    running[(s, state.seq)] = state.delivery.uuid
        self._stops = {run: asked for run, asked in self._stops.items() if run in running}
        revoked = self._revoked(list(running.values())) if running else set()
        now = time.monotonic()
        for (s, seq), uuid in running.items():
            if uuid in revoked and (s, seq) not in self._stops:
                log.info("message %s was revoked while running; stopping it", uuid)
                self._stops[(s, seq)] = now
                self.shared.slot_table.request_stop(s, seq)

    def _enforce(self) -> None:
        """Stop a worker process whose message must go (past its timeout, or
        revoked; see the module doc), but only once its other slots are idle
        or must go themselves: until then it drains (claims nothing more,
        hands back what it has not started), so the messages its other
        threads run finish instead of running again."""
        now = time.monotonic()
        for child in list(self._children.values()):
            states = list(zip(self.shared.slots_of(child.index), self.shared.states(child.index), strict=True))
            going = {(s, state.seq): (state, how) for local, (s, state) in enumerate(states)
                     if state is not None and (how := self._must_go(local, s, state, now)) is not None}
            if not going:
                continue
            stuck = [local for local, (s, state) in enumerate(states)
                     if state is not None and (s, state.seq) in going]
            if any(state is not None and state.busy and (s, state.seq) not in going
                   and not any(self._on_one_loop(local, other) for other in stuck)
                   for local, (s, state) in enumerate(states)):
                if not self.shared.draining[child.index]:
                    self.shared.draining[child.index] = True
                    log.info("a message of worker process %d must be stopped; it finishes its other "
                             "messages first", child.index)
                continue
            revoked = [how == self._settle_revoked for _, how in going.values()]
            log.log(logging.INFO if all(revoked) else logging.WARNING, "stopping worker process %d (pid %s) for %s",
                    child.index, child.process.pid, ", ".join(
                        f"{self._uuid(state)} ({'revoked' if was_revoked else 'past its timeout'})"
                        for (state, _), was_revoked in zip(going.values(), revoked, strict=True)))
            settle = {run: how for run, (_, how) in going.items()}
            child.process.kill()
            child.process.join()
            del self._children[child.index]
            self._recover(child.index, killed=True, settle=settle)
            self._spawn(child.index)

    def _must_go(self, local: int, s: int, state: SlotState, now: float) -> Settle | None:
        """How to settle the message in slot ``s`` (``local`` in its process)
        once its process is stopped, if it must be: revoked, or past its
        deadline, and either its task's mechanism is 'process' or the
        exception raised in its thread did not stop it in time. None while it
        may run on. A revoked coroutine is cancelled by its own event loop,
        never by stopping the process its neighbours run in."""
        if not state.busy:
            return None
        asked = self._stops.get((s, state.seq))
        if asked is not None and local < self.pool.sync_slots and (
                state.terminate or now - asked >= REVOKED_THREAD_GRACE_S):
            return self._settle_revoked
        if now > state.deadline and (state.terminate or now - state.deadline >= STUCK_THREAD_GRACE_S):
            return self._settle_timeout
        return None

    def _on_one_loop(self, local: int, other: int) -> bool:
        """Both slots are coroutines on the process's one event loop: one that
        outlived its cancellation blocks the loop, so the other cannot finish
        either, and waiting for it would hold the process for nothing."""
        return min(local, other) >= self.pool.sync_slots

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

