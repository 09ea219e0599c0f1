"""Coroutine (``async def``) tasks in a worker process: one event loop, in a
thread of its own, runs up to ``n_async`` of them at once.

The process's claim loop hands each claimed coroutine message to the loop
(:meth:`CoroutineRunner.submit`) and goes on claiming while slots are free.
Each running coroutine holds one of the process's async slots, written to
the shared slot table like a thread's, and its lease is in the process's
lease book: if the process dies (SIGKILL, the OOM killer), its supervisor
cuts the leases of what ran there short, so those messages run again at once
elsewhere, and none is lost.

What blocks (status writes, settling the outcome: round trips to the
backend) runs on a few I/O threads, never on the loop, so one slow write
does not hold up the other coroutines.

* Timeout: a coroutine past its task's timeout is cancelled
  (``CancelledError`` at the ``await`` it is in), and its message settled
  with :class:`~alsek_core.errors.TaskTimeoutError`: retried if its task
  allows, else failed. A coroutine that blocks the loop (``time.sleep``, a
  busy loop) cannot be cancelled: its slot tells the supervisor, which stops
  the process ``STUCK_THREAD_GRACE_S`` past the deadline, as for a stuck thread.
* Revocation: every ``REVOCATION_CHECK_S`` the runner asks the broker which
  running messages are revoked (this process's view of the revocations: no
  round trip per message) and cancels them; each then ends as
  :func:`~alsek_core.execution.settle_revoked` says.
* A coroutine that catches its ``CancelledError`` and returns ends with what
  it returned.
* Limits: a task's rate and concurrency limits hold as for any task (the
  pool's ``within_limits``, asked from an I/O thread just before the run; a
  message over a limit is handed back, delayed), and the slot taken is freed
  when the run is recorded (``Host.finished``).
* Middleware: each run, its settle included, is inside ``middleware.running``
  (a tracer's consumer span), entered on the loop in the run's own asyncio
  task; the coroutine and the I/O threads' calls for it see its context.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from alsek_core import middleware
from alsek_core.broker import Broker
from alsek_core.chord import gather, is_callback
from alsek_core.errors import TaskTimeoutError
from alsek_core.execution import admit, settle_failure, settle_revoked, settle_success
from alsek_core.message import Message
from alsek_core.ports import Delivery
from alsek_core.task import Task
from alsek_core.worker.holdings import Holdings
from alsek_core.worker.offload import Offload

log = logging.getLogger(__name__)


#: Coroutines a worker process runs at once by default.
DEFAULT_N_ASYNC = 100
#: Threads per worker process for what the coroutines' bookkeeping blocks on.
IO_THREADS = 4
#: How often running coroutines are checked for revocation.
REVOCATION_CHECK_S = 0.15
#: How long stopping waits for the loop to cancel what still runs.
STOP_WAIT_S = 5.0


class Host(Protocol):
    """The worker pool as a runner sees it."""

    broker: Broker
    holdings: Holdings

    @property
    def tasks(self) -> Mapping[str, Task]: ...

    def within_limits(self, task: Task, message: Message) -> bool: ...

    def record(self, message: Message, started: float, settle: Callable[[], None]) -> None: ...

    def finished(self, message: Message, started: float) -> None: ...

    def begin_slot(self, local: int, delivery: Delivery, timeout_ms: int, terminate: bool) -> None: ...

    def end_slot(self, local: int) -> None: ...

    def slot_freed(self) -> None: ...


@dataclass
class _Run:
    message: Message
    user_code: asyncio.Future[tuple[bool, Any]] | None = None
    revoked: bool = False


async def _guarded(awaitable: Any) -> tuple[bool, Any]:
    """The coroutine's result, or what it raised, as a value: a SystemExit or
    KeyboardInterrupt in a task is that task's failure, and must not reach
    the event loop (which would stop on it)."""
    try:
        return True, await awaitable
    except asyncio.CancelledError:
        raise
    except BaseException as exc:
        return False, exc


class CoroutineRunner:
    """Runs coroutine messages on an event loop of its own, in the async
    ``slots`` (local indexes) of the worker process ``host`` runs."""

    def __init__(self, host: Host, slots: range) -> None:
        self.host = host
        self.size = len(slots)
        self._free = list(reversed(slots))
        self._waiting: deque[tuple[Task, Message]] = deque()
        self._lock = threading.Lock()
        self._taken = 0  # running or waiting for a slot; the claim loop reads it
        self._running: dict[str, _Run] = {}
        self._jobs: set[asyncio.Task[None]] = set()
        self.loop = asyncio.new_event_loop()
        self._io = Offload(self.loop, IO_THREADS, "alsek-async-io")
        self._thread = threading.Thread(target=self._serve, name="alsek-async-loop", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def free_slots(self) -> int:
        """Free slots, plus a few messages claimed ahead (see
        ``Holdings.claim_ahead``). While more than half of those claimed
        ahead still wait, none: the next claim then takes many at once
        rather than one per finished coroutine, a round trip each."""
        with self._lock:
            taken = self._taken
        ahead = self.host.holdings.claim_ahead(self.size)
        if taken - self.size > ahead // 2:
            return 0
        return max(0, self.size + ahead - taken)

    def submit(self, task: Task, message: Message) -> None:
        """From the claim loop: run ``message`` when a slot is free."""
        with self._lock:
            self._taken += 1
        self.loop.call_soon_threadsafe(self._arrive, task, message)

    def stop(self) -> None:
        """Cancel what still runs (the pool released it already) and end the loop."""
        if self._thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(self._cancel_all(), self.loop).result(STOP_WAIT_S)
            except Exception:
                log.warning("the event loop did not stop in time (a coroutine blocks it)")
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(STOP_WAIT_S)
        self._io.stop()

    # --- on the loop ------------------------------------------------------------------

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        watcher = self.loop.create_task(self._watch_revocations())
        try:
            self.loop.run_forever()
        finally:
            watcher.cancel()

    async def _cancel_all(self) -> None:
        self._waiting.clear()
        for job in list(self._jobs):
            job.cancel()
        await asyncio.gather(*self._jobs, return_exceptions=True)

    def _arrive(self, task: Task, message: Message) -> None:
        if self._free:
            self._start(task, message)
        else:
            self._waiting.append((task, message))

    def _start(self, task: Task, message: Message) -> None:
        job = self.loop.create_task(self._run(self._free.pop(), task, message))
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    async def _run(self, slot: int, task: Task, message: Message) -> None:
        host = self.host
        delivery = message.delivery
        assert delivery is not None
        try:
            if not host.holdings.start(delivery):
                return  # handed back while it waited for a slot
            host.begin_slot(slot, delivery, message.timeout, terminate=False)
            # A task without limits skips the hop to an I/O thread (the gate would admit it at once).
            if task.limits is not None and not await self._io.call(host.within_limits, task, message):
                return  # over a limit: handed back, delayed
            with middleware.running(message):
                started = time.perf_counter()
                if not await self._io.call(self._admit, task, message, started):
                    return
                run = self._running[message.uuid] = _Run(message)
                settle = await self._call(run, task, message)
                await self._io.call(host.record, message, started, settle)
        finally:
            self._running.pop(message.uuid, None)
            host.end_slot(slot)
            self._free.append(slot)
            with self._lock:
                self._taken -= 1
            if self._waiting:  # emptied first when the pool stops
                self._start(*self._waiting.popleft())
            if self.free_slots():
                host.slot_freed()

    def _admit(self, task: Task, message: Message, started: float) -> bool:
        """In an I/O thread: may it run (RUNNING), or was it dealt with here?
        A chord's callback reads its members' results here, off the loop."""
        try:
            if admit(task, message, self.host.broker):
                if is_callback(message):
                    message.previous_result = gather(self.host.broker, message)
                return True
        except Exception:
            log.exception("could not start %s; it will be delivered again", message.summary)
        self.host.finished(message, started)
        return False

    async def _call(self, run: _Run, task: Task, message: Message) -> Callable[[], None]:
        """Run the task's code within its timeout; what records its outcome."""
        host = self.host
        began = time.time()
        try:
            async with asyncio.timeout(message.timeout / 1000) as deadline:
                task.pre_op(message)
                result = task.execute(message)
                if inspect.isawaitable(result):
                    run.user_code = asyncio.ensure_future(_guarded(result))
                    if run.revoked:
                        run.user_code.cancel()
                    ok, result = await run.user_code
                    if not ok:
                        raise result
                task.post_op(message, result)
        except asyncio.CancelledError:
            if not run.revoked:
                raise  # the pool is stopping: the message was handed back already
            return lambda: settle_revoked(task, message, host.broker, began)
        except BaseException as exc:
            if isinstance(exc, TimeoutError) and deadline.expired():
                exc = TaskTimeoutError(f"ran past its timeout of {message.timeout} ms; cancelled")
            failure = exc
            return lambda: settle_failure(task, message, failure, host.broker, began)
        return lambda: settle_success(task, message, result, host.tasks, host.broker, began)

    async def _watch_revocations(self) -> None:
        while True:
            await asyncio.sleep(REVOCATION_CHECK_S)
            runs = [run for run in self._running.values() if not run.revoked]
            if not runs:
                continue
            try:
                refused = await self._io.call(self._refused, [run.message for run in runs])
            except Exception:
                log.exception("could not read the revocations; looking again")
                continue
            for run in runs:
                if run.message.uuid in refused:
                    run.revoked = True
                    if run.user_code is not None:
                        run.user_code.cancel()

    def _refused(self, messages: list[Message]) -> set[str]:
        return {message.uuid for message in messages if self.host.broker.refuses(message)}
