"""The tasks the pool integration tests run, in real pools started by the CLI
(``alsek thread-pool tests/integration/pool_tasks.py --backend URL``): the
backend comes from ``--backend``, like any user's project built on ``Broker()``."""

from __future__ import annotations

import ctypes
import os
import sys
import time

from alsek_core.broker import Broker
from alsek_core.message import Message
from alsek_core.result import ResultStore
from alsek_core.status import StatusTracker
from alsek_core.task import task

QUEUE = "pools"

broker = Broker()
results = ResultStore(broker.backend)
status = StatusTracker(broker.backend)


@task(broker, queue=QUEUE, mechanism="thread", result_store=results, status_tracker=status)
def echo_thread(i: int) -> int:
    return i


@task(broker, queue=QUEUE, mechanism="process", result_store=results, status_tracker=status)
def echo_process(i: int) -> int:
    return i


@task(broker, queue=QUEUE, mechanism="thread", result_store=results, status_tracker=status)
def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@task(broker, queue=QUEUE, mechanism="thread", max_retries=0, result_store=results, status_tracker=status)
def spin(seconds: float) -> None:
    """Busy in Python code: a thread timeout can interrupt it."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


@task(broker, queue=QUEUE, mechanism="process", max_retries=0, result_store=results, status_tracker=status)
def sleep_process(seconds: float) -> None:
    """Blocked in C: only terminating its process stops it."""
    time.sleep(seconds)


@task(broker, queue=QUEUE, mechanism="thread", result_store=results, status_tracker=status)
def die() -> None:
    """Takes its whole process down, every time (a segfault, the OOM killer)."""
    os._exit(3)


@task(broker, queue=QUEUE, mechanism="thread", max_retries=0, result_store=results, status_tracker=status)
def quit_thread() -> None:
    """``sys.exit()`` in task code: the task's failure, not its worker's end."""
    sys.exit(3)


@task(broker, queue=QUEUE, mechanism="process", max_retries=0, result_store=results, status_tracker=status)
def interrupt_process() -> None:
    raise KeyboardInterrupt


@task(broker, queue=QUEUE, mechanism="thread", result_store=results, status_tracker=status)
def record(path: str, i: int, seconds: float = 0.0) -> int:
    """Appends ``i`` to the file at ``path`` each time it starts (to count reruns)."""
    with open(path, "a") as runs:
        runs.write(f"{i}\n")
    time.sleep(seconds)
    return i


@task(broker, queue=QUEUE, mechanism="thread", result_store=results, status_tracker=status)
def segfault() -> None:
    """Crashes its process the way a broken C extension does: a read at
    address 0 (a SIGSEGV sent with os.kill arrives a moment later, and the
    task may return first)."""
    ctypes.string_at(0)


@task(broker, queue=QUEUE, mechanism="thread", result_store=results, status_tracker=status, unique_key=True)
def unique_echo(i: int) -> int:
    """One queued at a time per argument (tests/integration/core/test_unique_and_pause.py)."""
    return i


@task(broker, queue="canary", mechanism="thread", result_store=results, status_tracker=status)
def canary(i: int) -> int:
    """On a queue of its own: proof that a pool is claiming while "pools" is paused."""
    return i


@task(broker, queue=QUEUE, mechanism="thread", result_store=results, status_tracker=status)
def doze(seconds: float) -> float:
    """Sleeps in short steps, in Python code: an exception raised in its thread lands at once."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.05)
    return seconds


# --- rate and concurrency limits (tests/integration/core/test_limits.py) -------------------

#: What test_limits expects of ``paced``.
PACED_RATE = 20


@task(broker, queue=QUEUE, mechanism="thread", rate_limit=f"{PACED_RATE}/s", result_store=results)
def paced(i: int) -> float:
    """When it started (wall clock, shared by every process on the host)."""
    return time.time()


@task(broker, queue=QUEUE, mechanism="thread", concurrency_limit=2, concurrency_key=lambda m: m.kwargs["tenant"],
      result_store=results)
def per_tenant(tenant: str, seconds: float) -> list[float]:
    """When it started and ended: at most 2 of a tenant may overlap."""
    started = time.time()
    time.sleep(seconds)
    return [started, time.time()]


@task(broker, queue=QUEUE, mechanism="thread", concurrency_limit=1, result_store=results)
def hold_once(marker: str) -> str:
    """Holds its slot for a minute the first time (its worker is then killed),
    at once on a rerun."""
    if not os.path.exists(marker):
        with open(marker, "w") as file:
            file.write(str(os.getpid()))
        time.sleep(60)
    return marker


@task(broker, queue=QUEUE, mechanism="process", backoff=None)
def chord_member(i: int, fail_first: bool, seconds: float, message: Message) -> int:
    """A chord member taking ``seconds``; with ``fail_first``, every fifth
    fails its first try."""
    time.sleep(seconds)
    if fail_first and i % 5 == 0 and message.retries == 0:
        raise RuntimeError("fails once, then succeeds")
    return i


@task(broker, queue=QUEUE, mechanism="process", result_store=results, status_tracker=status)
def chord_collect(path: str, message: Message) -> list[int]:
    """A chord's callback: appends a line to ``path`` each time it starts."""
    with open(path, "a") as runs:
        runs.write(f"{len(message.previous_result)}\n")
    return list(message.previous_result)
