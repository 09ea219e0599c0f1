"""What a task does must not stall a pool or rerun other work: ``sys.exit()``
or KeyboardInterrupt in task code, a worker process that dies (a segfault)
while other messages had finished, a 'process' task timing out next to other
threads. Real pools, started by the CLI, on every backend processes share."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest

from alsek_core.message import Message
from tests.integration.pool_harness import (
    POOLS,
    QUEUE,
    Pool,
    Store,
    registered_backends,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize("store", registered_backends(), indirect=True),
]
Start = Callable[..., Pool]


def runs(path: Path) -> collections.Counter[int]:
    """How many times each ``record`` message ran."""
    if not path.exists():
        return collections.Counter()
    return collections.Counter(int(line) for line in path.read_text().split())


def record_all(store: Store, path: Path, n: int, seconds: float = 0.0, start: int = 0) -> list[Message]:
    return [store.submit("record", str(path), i, seconds) for i in range(start, start + n)]


@pytest.mark.parametrize("kind", sorted(POOLS))
def test_sys_exit_and_keyboard_interrupt_in_a_task_are_its_failure(
    store: Store, pools: Start, kind: str, tmp_path: Path
) -> None:
    quitting = [store.submit("quit_thread") for _ in range(3)]
    interrupted = store.submit("interrupt_process", mechanism="process")
    later = record_all(store, tmp_path / "runs", 10)
    # One slot in all: a worker thread or process lost to sys.exit() would stall the pool.
    extra = ["--n_threads", "1", "--n_processes", "1"] if kind == "thread-pool" else ["--n_processes", "1"]
    pool = pools(kind, store.url, *extra)
    store.wait(lambda: store.done(later) == 10, 60, "the tasks after the exits", pool)
    failed = {m.uuid for m in [*quitting, interrupted]}
    store.wait(lambda: store.dead_uuids() == failed, 30, "the exits to be dead-lettered", pool)
    names = {m.uuid: (m.exception_details or {}).get("name") for m in store.broker.dead_letters(QUEUE)}
    assert names == {**{m.uuid: "SystemExit" for m in quitting}, interrupted.uuid: "KeyboardInterrupt"}
    assert all(store.status.record(uuid)["status"] == "FAILED" for uuid in failed)
    assert pool.terminate() == 0
    assert "exited unexpectedly" not in pool.log(), "the task's exit was taken for its worker's"
    assert "quit_thread" in pool.log() and "SystemExit" in pool.log(), "the failure is logged"
    assert set(runs(tmp_path / "runs").values()) == {1}


@pytest.mark.parametrize("deaths", ["die", "segfault"])
def test_a_dying_process_does_not_rerun_what_had_finished(
    store: Store, pools: Start, deaths: str, tmp_path: Path
) -> None:
    path = tmp_path / "runs"
    finished = record_all(store, path, 20)
    killer = store.submit(deaths)
    rest = record_all(store, path, 180, start=20)
    pool = pools("process-pool", store.url, "--n_processes", "2")
    store.wait(lambda: store.dead_uuids() == {killer.uuid}, 60, "the killer to be a poison message", pool)
    store.wait(lambda: store.done(finished + rest) == 200 and store.live() == 0, 60, "every other task", pool)
    assert pool.terminate() == 0
    twice = {i: n for i, n in runs(path).items() if n > 1}
    assert twice == {}, f"ran again though they had finished when a worker died: {twice}"


def test_a_process_task_timing_out_in_a_thread_pool_spares_its_siblings(
    store: Store, pools: Start, tmp_path: Path
) -> None:
    path = tmp_path / "runs"
    sleeping = store.submit("sleep_process", 60, mechanism="process", timeout=500)
    siblings = record_all(store, path, 3, seconds=2.0)
    pool = pools("thread-pool", store.url, "--n_threads", "4", "--n_processes", "1")
    store.wait(lambda: store.dead_uuids() == {sleeping.uuid}, 60, "the sleeper to time out", pool)
    store.wait(lambda: store.done(siblings) == 3 and store.live() == 0, 60, "its siblings", pool)
    (dead,) = store.broker.dead_letters(QUEUE)
    assert dead.exception_details is not None and dead.exception_details["name"] == "TaskTimeoutError"
    assert pool.terminate() == 0
    assert runs(path) == {0: 1, 1: 1, 2: 1}, "a sibling ran again: its thread was killed with the sleeper"


@pytest.mark.parametrize("kind", sorted(POOLS))
def test_a_message_handed_back_unfinished_reads_as_waiting_again(store: Store, pools: Start, kind: str) -> None:
    long = store.submit("nap", 60)
    pool = pools(kind, store.url, "--grace_period", "300")
    store.wait(lambda: (store.status.record(long.uuid) or {}).get("status") == "RUNNING", 30, "it to run", pool)
    assert pool.terminate() == 0
    assert store.broker.counts(QUEUE).ready == 1
    assert store.status.record(long.uuid)["status"] == "SUBMITTED", "it waits in its queue, it does not run"


def test_a_message_whose_whole_pool_was_killed_reads_as_waiting_again(store: Store, pools: Start) -> None:
    """Nobody is left to write SUBMITTED back: readers see it from the queue,
    once the dead pool's lease has run out."""
    long = store.submit("nap", 60)
    pool = pools("process-pool", store.url)
    store.wait(lambda: (store.status.record(long.uuid) or {}).get("status") == "RUNNING", 30, "it to run", pool)
    pool.kill()
    store.wait(lambda: store.broker.counts(QUEUE).ready == 1, 30, "its lease to run out")

    def alsek(*args: str) -> dict[str, Any]:
        out = subprocess.run([sys.executable, "-m", "alsek_cli", *args, "--backend", store.url, "--json"],
                             text=True, capture_output=True, check=True).stdout
        return cast(dict[str, Any], json.loads(out))

    shown = alsek("status", long.uuid)
    assert (shown["status"], shown["redelivery"]) == ("SUBMITTED", True)
    [row] = cast(list[dict[str, Any]], alsek("jobs", QUEUE))
    assert (row["uuid"], row["state"], row["status"]) == (long.uuid, "ready", "SUBMITTED")
