"""The ``alsek`` command as a user runs it (a subprocess), on the embedded
default in a scratch directory: admin commands, pools on a project, the
demo, and errors that are one line each."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from alsek_core.broker import Broker
from alsek_core.clock import now_ms
from alsek_core.config import backend_from_url
from alsek_core.consumer import Consumer
from alsek_core.message import Message
from alsek_core.ports import Backend, Envelope
from alsek_core.result import ResultStore
from alsek_core.status import StatusTracker, TaskStatus

pytestmark = pytest.mark.slow


def alsek(*args: str, cwd: Path | None = None, stdin: str = "", env: dict[str, str] | None = None,
          timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "alsek_cli", *args], cwd=cwd, input=stdin, text=True,
                          capture_output=True, timeout=timeout, env={**os.environ, **(env or {})})


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The only line of stderr that is not a log line."""
    lines = [line for line in result.stderr.strip().splitlines() if " INFO [" not in line]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/store"


@pytest.fixture
def backend(url: str) -> Iterator[Backend]:
    found = backend_from_url(url)
    yield found
    close = getattr(found, "close", None)
    if close is not None:
        close()


def test_entry_points() -> None:
    version = alsek("--version")
    assert version.returncode == 0 and "0.1.0" in version.stdout
    listing = alsek("--help").stdout
    for command in ("thread-pool", "process-pool", "queues", "jobs", "status", "result", "dlq",
                    "purge", "healthcheck", "backends", "demo", "db"):
        assert f"  {command} " in listing, command
    assert alsek().returncode == 0, "bare `alsek` prints its help"


def test_errors_are_one_line_and_debug_shows_the_traceback(tmp_path: Path) -> None:
    unknown = alsek("thread-pool", "no_such_module_anywhere", cwd=tmp_path)
    assert unknown.returncode == 1
    assert "cannot find 'no_such_module_anywhere'" in one_error_line(unknown)

    (tmp_path / "empty_mod.py").write_text("X = 1\n")
    nothing = alsek("process-pool", "empty_mod", cwd=tmp_path)
    assert nothing.returncode == 1 and "no tasks found in 'empty_mod'" in one_error_line(nothing)

    bad_value = alsek("thread-pool", "empty_mod", "--n_threads", "zero", cwd=tmp_path)
    assert bad_value.returncode == 2 and "'--n_threads'" in one_error_line(bad_value)

    unreachable = alsek("queues", "--backend", "redis://127.0.0.1:1/0")
    assert unreachable.returncode == 1 and "127.0.0.1:1" in one_error_line(unreachable)
    debug = alsek("queues", "--backend", "redis://127.0.0.1:1/0", "--log-level", "debug")
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr

    bad_url = alsek("healthcheck", "--backend", "nosuch://x")
    assert bad_url.returncode == 2 and "no backend for URL scheme 'nosuch'" in one_error_line(bad_url)

    (tmp_path / "one_task.py").write_text("from alsek import Broker, task\n"
                                          "@task(Broker())\ndef t() -> None: ...\n")
    down = alsek("thread-pool", "one_task", "--backend", "redis://127.0.0.1:1/0", cwd=tmp_path)
    assert down.returncode == 1 and "the backend does not answer" in one_error_line(down)

    torch = alsek("thread-pool", "empty_mod", cwd=tmp_path, env={"ALSEK_MULTIPROCESSING_BACKEND": "torch"})
    if torch.returncode == 1:  # torch is not installed here
        assert "ALSEK_MULTIPROCESSING_BACKEND=torch" in one_error_line(torch)


def test_healthcheck_exit_code_says_whether_the_backend_answers(url: str, backend: Backend) -> None:
    backend.exists("anything")  # the store now exists
    ok = alsek("healthcheck", "--backend", url)
    assert ok.returncode == 0 and ok.stdout.startswith("ok: ")
    down = alsek("healthcheck", "--backend", "redis://127.0.0.1:1/0")
    assert down.returncode == 1 and "does not answer" in one_error_line(down)


def test_backends_lists_every_plugin() -> None:
    listed = json.loads(alsek("backends", "--json").stdout)
    names = {(row["kind"], row["name"]) for row in listed["registered"]}
    assert {("backend", "diskcache"), ("backend", "redis"), ("backend", "postgres"),
            ("serializer", "json")} <= names
    assert listed["errors"] == []


def test_queue_administration(url: str, backend: Backend) -> None:
    broker, status, results = Broker(backend), StatusTracker(backend), ResultStore(backend)
    ready = [broker.submit(Message("resize", queue="images", args=[i], priority=i % 2)) for i in range(4)]
    later = broker.submit(Message("report", queue="reports", delay=3_600_000))
    status.set(ready[0], TaskStatus.SUBMITTED)
    results.set(ready[1], {"width": 640})
    failed = broker.submit(Message("resize", queue="broken", args=[99]))
    failed.delivery = broker.backend.claim(["broken"], 1, 60_000)[0]
    broker.fail(failed, ValueError("bad pixel"))

    counts = {row["queue"]: row for row in json.loads(alsek("queues", "--json", "--backend", url).stdout)}
    assert counts["images"] == {"queue": "images", "ready": 4, "delayed": 0, "in_flight": 0, "dead": 0,
                                "paused": False}
    assert (counts["reports"]["delayed"], counts["broken"]["dead"]) == (1, 1)
    assert "images" in alsek("queues", "--backend", url).stdout

    jobs = json.loads(alsek("jobs", "--json", "--backend", url).stdout)
    assert {j["uuid"] for j in jobs} == {m.uuid for m in [*ready, later, failed]}
    only_delayed = json.loads(alsek("jobs", "--json", "--state", "delayed", "--backend", url).stdout)
    assert [j["uuid"] for j in only_delayed] == [later.uuid]
    by_task = json.loads(alsek("jobs", "images", "--json", "--task", "resize", "--limit", "2",
                               "--backend", url).stdout)
    assert len(by_task) == 2 and {j["task"] for j in by_task} == {"resize"}
    tracked = [j for j in jobs if j["uuid"] == ready[0].uuid]
    assert tracked[0]["status"] == "SUBMITTED"

    assert alsek("status", ready[0].uuid, "--backend", url).stdout.startswith("SUBMITTED")
    assert "no status recorded" in one_error_line(alsek("status", later.uuid, "--backend", url))
    assert json.loads(alsek("result", ready[1].uuid, "--backend", url).stdout)["result"] == {"width": 640}
    assert "no result stored" in one_error_line(alsek("result", ready[0].uuid, "--backend", url))

    dead = json.loads(alsek("dlq", "list", "--json", "--backend", url).stdout)
    assert [(d["uuid"], d["error"]) for d in dead] == [(failed.uuid, "ValueError: bad pixel")]
    assert "requeued 1" in alsek("dlq", "retry", failed.uuid, "--backend", url).stdout
    assert broker.dead_letters() == [] and broker.counts("broken").ready == 1
    assert "not among the dead letters" in one_error_line(alsek("dlq", "retry", "nope", "--backend", url))

    refused = alsek("purge", "reports", "--backend", url)  # no answer on stdin
    assert refused.returncode == 1 and "nothing deleted" in refused.stderr
    assert broker.counts("reports").delayed == 1
    assert "deleted 1 message(s)" in alsek("purge", "reports", "--backend", url, stdin="y\n").stdout
    assert "deleted 4 message(s)" in alsek("purge", "images", "--yes", "--backend", url).stdout


def test_dlq_purge_asks_first(url: str, backend: Backend) -> None:
    broker = Broker(backend)
    message = broker.submit(Message("t", queue="q"))
    message.delivery = broker.backend.claim(["q"], 1, 60_000)[0]
    broker.fail(message, RuntimeError("x"))
    assert alsek("dlq", "purge", "--backend", url).returncode == 1
    assert len(broker.dead_letters()) == 1
    assert "deleted 1 dead letter(s)" in alsek("dlq", "purge", "--yes", "--backend", url).stdout
    assert broker.dead_letters() == []


def test_every_dead_letter_is_listed_shown_retried_and_purged_by_its_row_id(url: str, backend: Backend) -> None:
    broker = Broker(backend)
    garbage = b"\x00\xff\x1b[2J[/bold] \xe2\x80\xae" + b"x" * 5_000
    no_uuid = {k: v for k, v in Message("t", queue="q").data.items() if k != "uuid"}
    backend.submit([Envelope("q", "garbage-row", 0, now_ms(), garbage),
                    Envelope("q", "no-uuid-row", 0, now_ms(), backend.serializer.dumps(no_uuid))])
    assert Consumer(broker, subset=["q"], wait_ms=0).claim(10) == []  # both dead-lettered
    hostile = broker.submit(Message("[/bold]\x1b[31mred", queue="q"))
    hostile.delivery = backend.claim(["q"], 1, 60_000)[0]
    broker.fail(hostile, ValueError("\x1b]0;pwned\x07 [/red]"))

    listed = {d["uuid"]: d for d in json.loads(alsek("dlq", "list", "--json", "--backend", url).stdout)}
    assert listed.keys() == {"garbage-row", "no-uuid-row", hostile.uuid}
    assert listed["garbage-row"]["task"] == "(undecodable)"
    assert listed["garbage-row"]["error"].startswith("SerializationError: ")
    assert "its row" in listed["no-uuid-row"]["error"]
    table = alsek("dlq", "list", "--backend", url)
    assert table.returncode == 0 and "garbage-row" in table.stdout and "\x1b" not in table.stdout

    shown = alsek("dlq", "show", "garbage-row", "--backend", url)
    assert shown.returncode == 0, shown.stderr
    assert "\x1b" not in shown.stdout and "\u202e" not in shown.stdout
    assert r"\x00\xff\x1b[2J" in shown.stdout and "5,017 bytes" in shown.stdout
    assert len(shown.stdout) < 2_000  # the payload is cut short
    shown = alsek("dlq", "show", hostile.uuid, "--backend", url)
    assert "\x1b" not in shown.stdout and "\x07" not in shown.stdout and "pwned" in shown.stdout
    as_json = json.loads(alsek("dlq", "show", "no-uuid-row", "--json", "--backend", url).stdout)
    assert as_json[0]["uuid"] == "no-uuid-row" and "its row" in as_json[0]["error"]
    assert "not among the dead letters" in one_error_line(alsek("dlq", "show", "nope", "--backend", url))

    assert "requeued 2" in alsek("dlq", "retry", "garbage-row", "no-uuid-row", "--backend", url).stdout
    queued = {item.uuid: item.payload for item in backend.messages("q")}
    assert queued.keys() == {"garbage-row", "no-uuid-row"} and queued["garbage-row"] == garbage
    assert broker.decode(queued["no-uuid-row"]).uuid == "no-uuid-row"  # retried under its row's id
    assert "not among the dead letters" in one_error_line(alsek("dlq", "purge", "nope", "--yes", "--backend", url))
    assert "deleted 1 dead letter(s)" in alsek("dlq", "purge", hostile.uuid, "--yes", "--backend", url).stdout
    assert broker.dead_letters() == []


PROJECT = """
import time
from alsek import Broker, task
from alsek_core.result import ResultStore

broker = Broker()
results = ResultStore(broker.backend)


@task(broker, queue="queue_a", result_store=results, mechanism="thread")
def in_a(i: int) -> int:
    return time.time_ns()


@task(broker, queue="queue_b", result_store=results)
def in_b(i: int) -> int:
    return time.time_ns()
"""


@pytest.mark.parametrize("kind", ["thread-pool", "process-pool"])
def test_a_pool_on_a_project_directory_respects_queue_order(tmp_path: Path, url: str, backend: Backend,
                                                             kind: str) -> None:
    package = tmp_path / "my_project"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "my_tasks.py").write_text(textwrap.dedent(PROJECT))
    broker, results = Broker(backend), ResultStore(backend)
    a = [broker.submit(Message("in_a", queue="queue_a", args=[i])) for i in range(30)]
    b = [broker.submit(Message("in_b", queue="queue_b", args=[i])) for i in range(30)]
    one_slot = ["--n_threads", "1"] if kind == "thread-pool" else []
    pool = subprocess.Popen(
        [sys.executable, "-m", "alsek_cli", kind, "my_project", "-qu", "queue_b,queue_a", "--n_processes", "1",
         *one_slot, "--backend", url, "--log-level", "warning"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not all(results.exists(m) for m in a + b):
            assert pool.poll() is None, pool.stdout.read() if pool.stdout else ""
            assert time.monotonic() < deadline, "the pool did not run every task"
            time.sleep(0.05)
    finally:
        pool.send_signal(signal.SIGTERM)
        output, _ = pool.communicate(timeout=30)
    assert pool.returncode == 0, output
    finished_b = max(results.get(m, keep=True) for m in b)
    assert finished_b < min(results.get(m, keep=True) for m in a), "queue_b is consumed first"


def test_demo_runs_and_summarizes(tmp_path: Path) -> None:
    demo = alsek("demo", "--tasks", "300", cwd=tmp_path, timeout=180)
    assert demo.returncode == 0, demo.stderr
    for row in ("succeeded", "succeeded after a retry", "failed (dead letters)", "throughput",
                "queue wait p50", "queue wait p99"):
        assert row in demo.stdout, row
    lost = [line for line in demo.stdout.splitlines() if "lost" in line]
    assert lost and lost[0].split()[-2] == "0", demo.stdout
    assert list(tmp_path.iterdir()) == [], "the demo cleans up after itself"


def test_pause_and_resume_from_the_shell(url: str, backend: Backend) -> None:
    broker = Broker(backend)
    broker.submit(Message("resize", queue="images"))
    assert json.loads(alsek("pause", "images", "--json", "--backend", url).stdout) == {
        "queue": "images", "paused": True}
    assert "paused 'emails'" in alsek("pause", "emails", "--backend", url).stdout
    assert broker.paused() == ["emails", "images"]
    rows = {row["queue"]: row["paused"] for row in json.loads(alsek("queues", "--json", "--backend", url).stdout)}
    assert rows == {"emails": True, "images": True}, "a paused queue is listed while empty"
    assert json.loads(alsek("resume", "images", "--json", "--backend", url).stdout)["paused"] is False
    assert broker.paused() == ["emails"] and broker.counts("images").ready == 1
    bad = alsek("pause", "no:colons", "--backend", url)
    assert bad.returncode == 2 and "invalid queue name 'no:colons'" in one_error_line(bad)
