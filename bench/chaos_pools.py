"""The chaos soak's pools, run as a user runs them, and the watcher that
notes when each of their processes ends.

A pool is ``alsek thread-pool|process-pool bench/chaos_tasks.py`` in a session
of its own, so SIGKILL to its process group takes every process it started.
Its process tree is read from /proc (``task/*/children``), which also gives
the RSS of the whole pool.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
TASKS = str(HERE / "chaos_tasks.py")
SIZES = {"thread": ["--n_threads", "3", "--n_processes", "2"], "process": ["--n_processes", "3"]}
#: Helper processes a pool may start that run no task (killing them is not "a worker died").
HELPERS = (b"resource_tracker", b"forkserver")
WATCH_EVERY_S = 0.1


def children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(c) for c in f.read().split()]
    return found


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for child in children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def rss_kb(pid: int) -> int:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Pool:
    def __init__(self, kind: str, url: str, scratch: Path, record: Path, lease_ms: int, grace_ms: int) -> None:
        self.kind = kind
        self.argv = [sys.executable, "-m", "alsek_cli", f"{kind}-pool", TASKS, *SIZES[kind], "--backend", url,
                     "--lease_ms", str(lease_ms), "--grace_period", str(grace_ms), "--log-level", "warning"]
        self.log_path = scratch / f"{kind}-pool.log"
        self.record = record
        self.incarnation = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        return f"{self.kind}#{self.incarnation}"

    def start(self) -> None:
        self.incarnation += 1
        env = {**os.environ, "CHAOS_RECORD": str(self.record), "CHAOS_POOL": self.name}
        with self.log_path.open("ab") as log:
            log.write(f"--- {self.name} {time.strftime('%H:%M:%S')}\n".encode())
            log.flush()
            self.process = subprocess.Popen(self.argv, cwd=HERE.parent, env=env, stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)

    def log_summary(self) -> dict[str, int]:
        """What the pool's log says went wrong, counted: threads ended by an
        exception nobody caught, and workers that ended with an exit code of
        their own (not a signal)."""
        text = self.log_path.read_text(errors="replace")
        own_exits = re.findall(r"exited unexpectedly with code (\d+)", text)
        return {"threads ended by an uncaught exception": text.count("Exception in thread"),
                "workers that exited by themselves": len(own_exits),
                "tracebacks": text.count("Traceback (most recent call last)")}

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def tree(self) -> list[int]:
        if self.process is None or self.process.poll() is not None:
            return []
        return [self.process.pid, *descendants(self.process.pid)]

    def workers(self) -> list[int]:
        found = []
        for pid in self.tree()[1:]:
            with contextlib.suppress(OSError), open(f"/proc/{pid}/cmdline", "rb") as f:
                if not any(helper in f.read() for helper in HELPERS):
                    found.append(pid)
        return found

    def rss_mb(self) -> float:
        return round(sum(rss_kb(pid) for pid in self.tree()) / 1024, 1)

    @staticmethod
    def signal(pid: int, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    def kill(self) -> None:
        """SIGKILL to the pool's process group: the pool and everything it started."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout: float) -> int | None:
        """SIGTERM, as a user stops a pool; its exit code, or None if it had to be killed."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None


class Watcher(threading.Thread):
    """Polls the pools' process trees; ``gone[pid]`` is when a pid was first missing."""

    def __init__(self, pools: Callable[[], list[Pool]]) -> None:
        super().__init__(name="watcher", daemon=True)
        self.pools = pools
        self.gone: dict[int, float] = {}
        self._seen: set[int] = set()
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(WATCH_EVERY_S):
            alive = {pid for pool in self.pools() for pid in pool.tree()}
            now = time.time()
            for pid in self._seen - alive:
                self.gone.setdefault(pid, now)
            self._seen = alive

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join()
