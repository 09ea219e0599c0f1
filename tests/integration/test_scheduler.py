"""``alsek scheduler`` as a user runs it (subprocesses), on every registered
backend that processes can share: the schedule fires where the scheduler runs,
once per fire however many schedulers run, and nowhere else (not in pools)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from alsek_core.broker import Broker
from alsek_core.message import Message
from alsek_core.ports import Backend
from alsek_core.result import store_for

pytestmark = pytest.mark.slow

PROJECT = """\
import atexit
import os
import threading

from apscheduler.triggers.cron import CronTrigger

from alsek import Broker, task
from alsek_core.result import store_for

broker = Broker()


@task(broker, queue="beats", trigger=CronTrigger(second="*"))
def beat() -> None:
    pass


@task(broker, queue="probe", mechanism="thread", result_store=store_for(broker.backend))
def thread_names() -> list:
    return [thread.name for thread in threading.enumerate()]


@atexit.register
def tell_threads() -> None:
    with open(f"threads-{os.getpid()}.txt", "w") as out:
        out.write(" ".join(thread_names()))
"""
SUBMITTED = re.compile(r"fire (\d+) of 'beat': submitted")
SKIPPED = re.compile(r"fire (\d+) of 'beat': another scheduler submitted it")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "beats.py").write_text(PROJECT)
    return tmp_path


def start(project: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "alsek_cli", *args], cwd=project,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop(process: subprocess.Popen[str], signum: int = signal.SIGTERM) -> str:
    process.send_signal(signum)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    return output


def wait_for(condition: Callable[[], bool], what: str, processes: list[subprocess.Popen[str]]) -> None:
    """A guard against hanging, not a timing claim."""
    deadline = time.monotonic() + 120
    while not condition():
        for process in processes:
            assert process.poll() is None, f"exited early: {process.communicate()[0]}"
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)


def test_two_schedulers_submit_each_fire_once(project: Path, shared_url: str, backend: Backend) -> None:
    broker = Broker(backend)
    schedulers = [start(project, "scheduler", "beats.py", "--backend", shared_url, "--log-level", "debug")
                  for _ in range(2)]
    try:
        wait_for(lambda: broker.counts("beats").ready >= 6, "six fires", schedulers)
    finally:
        outputs = [stop(schedulers[0], signal.SIGTERM), stop(schedulers[1], signal.SIGINT)]
    submitted = [slot for output in outputs for slot in SUBMITTED.findall(output)]
    skipped = [slot for output in outputs for slot in SKIPPED.findall(output)]
    assert len(submitted) == len(set(submitted)), "a fire was submitted twice"
    assert skipped and set(skipped) <= set(submitted), "both schedulers fired; the second one stood down"
    fires = [m for _, _, m in broker.messages("beats")]
    assert len(fires) == len(submitted) == broker.counts("beats").ready
    assert all(m is not None and m.task_name == "beat" and m.progenitor_uuid for m in fires)
    # Each scheduler has a schedule of its own; which one takes a fire is a race.
    assert len({m.progenitor_uuid for m in fires if m is not None}) in (1, 2)
    locks = [name for name in backend.scan("triggers:beat:")]
    assert len(locks) == len(submitted)


@pytest.mark.parametrize("kind", ["thread-pool", "process-pool"])
def test_a_pool_fires_no_trigger(project: Path, shared_url: str, backend: Backend, kind: str) -> None:
    broker, results = Broker(backend), store_for(backend)
    message = broker.submit(Message("thread_names", queue="probe"))
    pool = start(project, kind, "beats.py", "-qu", "probe", "--n_processes", "1", "--backend", shared_url,
                 "--log-level", "warning")
    try:
        wait_for(lambda: results.exists(message), "the probe to run", [pool])
    finally:
        stop(pool)
    seen = [results.get(message), *((project / f).read_text().split() for f in project.glob("threads-*.txt"))]
    assert len(seen) >= 2, "the pool's own process told its threads at exit"
    assert not any("APScheduler" in name for names in seen for name in names), seen
    assert broker.counts("beats").ready == 0


PLAIN = """\
from alsek import Broker, task

@task(Broker())
def plain(x: int) -> int:
    return x
"""
TWINS = """\
from apscheduler.triggers.interval import IntervalTrigger
from alsek import Broker, task

broker = Broker()

@task(broker, name="tick", trigger=IntervalTrigger(seconds=1))
def one() -> None: ...

@task(broker, name="tick", trigger=IntervalTrigger(seconds=2))
def two() -> None: ...
"""


@pytest.mark.parametrize(("source", "error"), [
    (PLAIN, "error: no trigger tasks in 'app.py' (its tasks, plain, have no trigger)"),
    (TWINS, "error: two different trigger tasks are named 'tick'; names must be unique"),
])
def test_a_scheduler_refuses_a_target_it_cannot_run(tmp_path: Path, source: str, error: str) -> None:
    (tmp_path / "app.py").write_text(source)
    result = subprocess.run([sys.executable, "-m", "alsek_cli", "scheduler", "app.py", "--backend",
                             f"sqlite:///{tmp_path}/store"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [error]
