"""What the ops tests share: a Redis namespace of their own, a thread pool
of ``ops_tasks.py`` started by the CLI, and the ``alsek`` commands."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from alsek_core.ports import Backend
from tests.integration.pool_harness import ROOT

TASKS = str(Path(__file__).with_name("ops_tasks.py"))
ASYNC_TASKS = str(Path(__file__).with_name("ops_async_tasks.py"))
QUEUE = "ops"
#: Backoff settings of a message retried at once.
NO_WAIT = {"algorithm": "ConstantBackoff",
           "parameters": {"constant": 0, "floor": 0, "ceiling": 0, "zero_override": True}}


def start_pool(url: str, log: Path, *extra: str, env: dict[str, str] | None = None,
               tasks: str = TASKS) -> subprocess.Popen[bytes]:
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "alsek_cli", "thread-pool", tasks, "--backend", url, "--n_threads", "4",
             "--n_processes", "1", "--lease_ms", "1000", "--log-level", "info", *extra],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)


def alsek(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "alsek_cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def wait_for(condition: Callable[[], bool], what: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{log.read_text()}"
        time.sleep(0.1)


def history_size(backend: Backend, kind: str) -> int:
    return len(backend.history_of(QUEUE, kind, 100_000))
