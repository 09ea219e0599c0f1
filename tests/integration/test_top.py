"""``alsek top`` through the CLI: one frame with ``--once``, and the live
view redrawn until SIGTERM, which ends it cleanly."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from alsek_core.config import backend_from_url
from alsek_core.message import Message
from alsek_core.workers import live_workers
from tests.integration.pool_harness import (
    ROOT,
    Pool,
    Store,
    pools,  # noqa: F401 - a fixture
    registered_backends,
    scratch,  # noqa: F401 - a fixture
    store,  # noqa: F401 - a fixture
)

pytestmark = pytest.mark.slow


def alsek(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "alsek_cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("store", registered_backends(), indirect=True)
def test_once_shows_queues_and_the_running_pool(store: Store, pools: Callable[..., Pool]) -> None:  # noqa: F811
    pool = pools("thread-pool", store.url, "--grace_period", "200")
    store.broker.submit(Message("nap", queue="later", args=(0.1,), delay=3_600_000))
    store.broker.submit(Message("nap", queue="later", args=(0.1,), delay=3_600_000))
    store.wait(lambda: bool(live_workers(store.backend)), 60, "the pool to register", pool)
    frame = alsek("top", "--once", "--backend", store.url)
    assert frame.returncode == 0, frame.stderr
    row = next(line for line in frame.stdout.splitlines() if " later " in line)
    assert [cell.strip() for cell in row.strip("│ ").split("│")][:5] == ["later", "0", "2", "0", "0"]
    assert "ThreadWorkerPool" in frame.stdout and "0/8" in frame.stdout


def read_until(fd: int, done: Callable[[bytes], bool], timeout: float = 60) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while not done(seen):
        assert time.monotonic() < deadline, f"timed out; the terminal shows:\n{seen.decode(errors='replace')}"
        if select.select([fd], [], [], 0.5)[0]:
            seen += os.read(fd, 65536)
    return seen


@pytest.mark.parametrize("store", ["diskcache"], indirect=True)
def test_live_view_redraws_and_stops_on_sigterm(store: Store) -> None:  # noqa: F811
    """In a terminal (a pty), as an operator runs it."""
    for _ in range(3):
        store.broker.submit(Message("nap", queue="now", args=(0.1,)))
    terminal, screen = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "alsek_cli", "top", "--interval", "0.2",
                                "--backend", store.url], cwd=ROOT, stdout=screen, stderr=subprocess.PIPE,
                               env={**os.environ, "COLUMNS": "120", "LINES": "40", "TERM": "xterm"})
    os.close(screen)
    try:
        shown = read_until(terminal, lambda seen: seen.count(b"alsek top") >= 3)
        assert b"no live workers" in shown and b" 0.0 " in shown  # a rate: frames after the first
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(AssertionError, OSError):  # keep the terminal drained while it exits
            read_until(terminal, lambda seen: process.poll() is not None, timeout=30)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(terminal)
        assert process.stderr is not None
        process.stderr.close()


def test_once_on_an_empty_backend(tmp_path: Path) -> None:
    missing = alsek("top", "--once", "--backend", f"sqlite:///{tmp_path}/missing")
    assert missing.returncode == 2 and not (tmp_path / "missing").exists()  # looking creates nothing
    backend_from_url(f"sqlite:///{tmp_path}/empty").exists("probe")  # a store with nothing in it
    frame = alsek("top", "--once", "--backend", f"sqlite:///{tmp_path}/empty")
    assert frame.returncode == 0 and "no queues yet" in frame.stdout and "no live workers" in frame.stdout
