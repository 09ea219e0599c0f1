"""Contract: what readers see while workers record outcomes.

A worker records a message's outcome as several writes (result, callback,
status, removal). A reader polling from elsewhere must never see them
disagree, whatever instant it looks at:

* once a result is readable, the status reads SUCCEEDED; once the status
  reads SUCCEEDED, the result is readable;
* once the status reads FAILED, the dead letter exists;
* ``ResultStore.get(descendants=True)`` returns a whole callback chain or
  nothing, never part of it.

Tasks run in this process (``run_until_empty``, in submission order) while a
reader in another process watches the few messages at the front of the run,
where the writes are happening. The stores are the ones a user constructs:
``StatusTracker(backend)`` and ``ResultStore(backend)``.
"""

from __future__ import annotations

import multiprocessing
import queue as queue_lib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from alsek_core.broker import Broker
from alsek_core.message import Message
from alsek_core.ports import Backend
from alsek_core.result import ResultStore
from alsek_core.status import StatusTracker, TaskStatus
from alsek_core.task import Task, task
from alsek_core.testing.runner import run_until_empty

#: Messages per run: enough for the reader to land between two writes of an
#: outcome many times over, few enough for the five-method backend.
RUN = 300
#: Callback chains per run, each of ``CHAIN`` messages.
CHAINS = 40
CHAIN = 4
#: How many unfinished messages at the front of the run the reader watches.
FRONT = 4
#: Between two looks at the front: the reader must not take the CPU or the
#: server from the run it watches (on two cores, a spinning reader slowed a
#: Redis run forty-fold).
PAUSE = 0.001

BackendFactory = Callable[[], Backend]
#: Looks at one message through the stores: True once its outcome is fully
#: visible, False while it is not; raises AssertionError when what it sees
#: disagrees.
Look = Callable[["Stores", Message], bool]


class Stores:
    """A broker with the stores a user constructs on the same backend; what
    they wrote is removed afterwards (a native store's rows are no key-value
    names, so the suite's wipe would not find them)."""

    def __init__(self, backend: Backend) -> None:
        self.broker = Broker(backend)
        self.statuses = StatusTracker(backend)
        self.results = ResultStore(backend)
        self.written: list[Message] = []

    def task(self, function: Callable[..., object], name: str) -> Task:
        return task(self.broker, name=name, queue="outcomes", max_retries=0,
                    status_tracker=self.statuses, result_store=self.results)(function)

    def forget(self) -> None:
        for message in self.written:
            # descendants only where there are: on Redis a family is a SCAN
            self.results.delete(message, descendants=bool(message.descendant_uuids), missing_ok=True)
            for uuid in [message.uuid, *(message.descendant_uuids or ())]:
                self.statuses.remove(uuid)


@contextmanager
def stores(backend: Backend) -> Iterator[Stores]:
    made = Stores(backend)
    try:
        yield made
    finally:
        made.forget()


def read(backend_factory: BackendFactory, look: Look, messages: list[dict[str, Any]],
         started: Any, stopping: Any, out: Any) -> None:
    """The reader: polls the front of a run (the few unfinished messages
    where the writes are happening) until every message is done or it is
    told to stop; puts what disagreed (or None) in ``out``."""
    backend = backend_factory()
    reading = Stores(backend)
    pending = [Message(**data) for data in messages]
    seen: str | None = None
    try:
        started.set()
        while pending and not stopping.is_set():
            for message in pending[:FRONT]:
                if look(reading, message):
                    pending.remove(message)
            time.sleep(PAUSE)
    except AssertionError as exc:
        seen = str(exc)
    except BaseException as exc:  # reported, never lost in another process
        seen = f"the reader failed: {type(exc).__name__}: {exc}"
    finally:
        out.put(seen)
        close = getattr(backend, "close", None)
        if close is not None:
            close()


@contextmanager
def watching(process_local: bool, backend_factory: BackendFactory, messages: Sequence[Message],
             look: Look) -> Iterator[None]:
    """Run the body while a reader watches ``messages``, from another process
    as a real reader would (a thread would slow the run down for the GIL),
    or from a thread when the backend's storage lives in this process only."""
    args = [m.data for m in messages]
    started: Any
    stopping: Any
    out: Any
    if not process_local:
        ctx = multiprocessing.get_context("spawn")
        started, stopping, out = ctx.Event(), ctx.Event(), ctx.Queue()
        reader: Any = ctx.Process(target=read, args=(backend_factory, look, args, started, stopping, out))
    else:
        started, stopping, out = threading.Event(), threading.Event(), queue_lib.Queue()
        reader = threading.Thread(target=read, args=(backend_factory, look, args, started, stopping, out))
    reader.start()
    try:
        assert started.wait(120), "the reader did not start"
        yield
    finally:
        stopping.set()
        seen = out.get(timeout=120)
        reader.join(30)
    assert seen is None, seen


def square(x: int) -> int:
    return x * x


def broken() -> None:
    raise RuntimeError("broken on purpose")


def increment(message: Message, x: int = 0) -> int:
    """The chain's own step: ``x + 1`` at its root, the previous result + 1 after."""
    return int(x if message.previous_result is None else message.previous_result) + 1


def result_agrees_with_status(stores: Stores, message: Message) -> bool:
    had_result = stores.results.exists(message)
    status = stores.statuses.get(message)
    has_result = stores.results.exists(message)
    # Only an atomic settle promises this direction (see ports.Settlement).
    assert not had_result or status == TaskStatus.SUCCEEDED or not stores.broker.backend.atomic_settle, (
        f"result of {message.uuid} readable while its status reads {status.name}")
    assert status != TaskStatus.SUCCEEDED or has_result, (
        f"status of {message.uuid} reads SUCCEEDED while its result is not readable")
    return had_result


def failed_is_dead_lettered(stores: Stores, message: Message) -> bool:
    if stores.statuses.get(message) != TaskStatus.FAILED:
        return False
    dead = stores.broker.in_dlq(message)
    # Ordered steps write the status first (see ports.Settlement): the dead letter follows.
    assert dead or not stores.broker.backend.atomic_settle, (
        f"status of {message.uuid} reads FAILED while it is not among the dead letters")
    return dead


def chain_is_whole(stores: Stores, root: Message) -> bool:
    try:
        family = stores.results.get(root, descendants=True, keep=True)
    except KeyError:
        return False
    assert len(family) == CHAIN, f"chain of {root.uuid} fetched with {len(family)} of {CHAIN} results"
    return True


class OutcomeReadContract:
    def test_result_and_status_never_disagree(
        self, backend: Backend, backend_factory: BackendFactory, process_local: bool
    ) -> None:
        with stores(backend) as s:
            job = s.task(square, "square")
            s.written = [job.generate(args=(i,)) for i in range(RUN)]
            with watching(process_local, backend_factory, s.written, result_agrees_with_status):
                assert run_until_empty([job]) == RUN
            assert [s.results.get(m) for m in s.written] == [i * i for i in range(RUN)]

    def test_failed_implies_dead_letter(
        self, backend: Backend, backend_factory: BackendFactory, process_local: bool
    ) -> None:
        with stores(backend) as s:
            job = s.task(broken, "broken")
            s.written = [job.generate() for _ in range(RUN // 10)]
            with watching(process_local, backend_factory, s.written, failed_is_dead_lettered):
                run_until_empty([job])
            assert all(s.statuses.get(m) == TaskStatus.FAILED and s.broker.in_dlq(m) for m in s.written)

    def test_a_chain_is_fetched_whole_or_not_at_all(
        self, backend: Backend, backend_factory: BackendFactory, process_local: bool
    ) -> None:
        with stores(backend) as s:
            job = s.task(increment, "increment")
            s.written = [
                job.generate(kwargs={"x": i}, callback=tuple(job.defer().generate() for _ in range(CHAIN - 1)))
                for i in range(CHAINS)
            ]
            with watching(process_local, backend_factory, s.written, chain_is_whole):
                run_until_empty([job])
            assert [s.results.get(r, descendants=True) for r in s.written] == [
                [i + 1 + k for k in range(CHAIN)] for i in range(CHAINS)]
