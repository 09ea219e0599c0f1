"""The CLI reads the same everywhere, as a user meets it: both spellings of
every option, ``--json`` on every read command with one shape on every
backend, a warning for a queue no task uses, statuses by name with the next
run of a retrying message, and one concurrency figure for a pool."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid as uuid_lib
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from alsek_cli.main import cli
from alsek_core.broker import Broker
from alsek_core.config import backend_from_url
from alsek_core.message import Message
from alsek_core.plugins import plugin_host
from alsek_core.ports import Backend
from alsek_core.result import store_for
from alsek_core.status import TaskStatus, tracker_for
from alsek_core.task import task
from alsek_core.testing.contract.fixtures import wipe

pytestmark = pytest.mark.slow
READ_COMMANDS = ("queues", "jobs", "status", "result", "dlq list", "backends")


def alsek(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "alsek_cli", *args], cwd=cwd, text=True, capture_output=True,
                          timeout=120, env={**os.environ, **(env or {})})


def _commands(group: click.Group, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    for name, command in group.commands.items():
        yield f"{prefix}{name}", command
        if isinstance(command, click.Group):
            yield from _commands(command, f"{prefix}{name} ")


def test_every_long_option_has_both_spellings() -> None:
    for path, command in _commands(cli):
        for param in command.params:
            for name in param.opts:
                if name.startswith("--") and ("_" in name or "-" in name[2:]):
                    kebab, snake = "--" + name[2:].replace("_", "-"), "--" + name[2:].replace("-", "_")
                    assert {kebab, snake} <= set(param.opts), f"alsek {path} {name}"


def test_both_spellings_work_from_the_shell(tmp_path: Path) -> None:
    for spelling in (["--n_processes", "1", "--log_level", "warning", "--n-threads", "2"],
                     ["--n-processes", "1", "--log-level", "warning", "--n_threads", "2"]):
        run = alsek("thread-pool", "no_such_module_anywhere", *spelling, cwd=tmp_path)
        assert run.returncode == 1 and "cannot find 'no_such_module_anywhere'" in run.stderr, run.stderr


def test_every_read_command_takes_json() -> None:
    commands = dict(_commands(cli))
    for name in READ_COMMANDS:
        assert "--json" in {o for p in commands[name].params for o in p.opts}, name


@pytest.fixture(params=["diskcache", "redis", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Backend]]:
    spec = plugin_host().registry.backends[request.param][0]
    assert spec.test_url is not None
    base = spec.test_url(str(tmp_path))
    url = f"{base}{'&' if '?' in base else '?'}namespace=cli-json-{uuid_lib.uuid4().hex[:8]}"
    backend = backend_from_url(url)
    try:
        backend.exists("probe")
    except Exception as exc:  # a server that is down here skips, as the contract suite does
        pytest.skip(f"{request.param} unavailable: {exc}")
    yield url, backend
    wipe(backend)


def test_status_and_result_json_have_one_shape_on_every_backend(store: tuple[str, Backend]) -> None:
    url, backend = store
    broker, tracker, results = Broker(backend), tracker_for(backend), store_for(backend)
    message = broker.submit(Message("resize", queue="cli-json", args=[1]))
    tracker.set(message, TaskStatus.SUCCEEDED)
    results.set(message, {"width": 640})
    try:
        status = json.loads(alsek("status", message.uuid, "--json", "--backend", url).stdout)
        assert set(status) == {"uuid", "status", "queue", "task_name", "updated_at"}
        assert (status["uuid"], status["status"], status["queue"]) == (message.uuid, "SUCCEEDED", "cli-json")
        result = json.loads(alsek("result", message.uuid, "--json", "--backend", url).stdout)
        assert result["uuid"] == message.uuid and result["result"] == {"width": 640}
        assert {"uuid", "result", "timestamp"} <= set(result), result
        assert alsek("status", message.uuid, "--backend", url).stdout.startswith("SUCCEEDED ")
    finally:
        tracker.remove(message.uuid)
        results.delete(message, missing_ok=True)


def test_a_retrying_message_says_when_it_runs_next(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/store"
    backend = backend_from_url(url)
    broker, tracker = Broker(backend), tracker_for(backend)

    @task(broker, queue="q")
    def flaky() -> None: ...

    message = flaky.generate()
    message.delivery = broker.claim(["q"], 1, 60_000)[0]
    broker.retry(message)  # the default backoff: the first retry waits its 60 s floor
    tracker.set(message, TaskStatus.RETRYING)
    try:
        shown = json.loads(alsek("status", message.uuid, "--json", "--backend", url).stdout)
        assert shown["status"] == "RETRYING"
        in_a_minute = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 50))
        assert shown["next_run_at"] > in_a_minute, shown
        assert "next_run_at=" in alsek("status", message.uuid, "--backend", url).stdout
    finally:
        backend.close()


def test_print_shows_a_status_by_name() -> None:
    out = subprocess.run([sys.executable, "-c", "from alsek import TaskStatus; print(TaskStatus.SUCCEEDED)"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "SUCCEEDED"


TASKS = """
from alsek import Broker, task

@task(Broker(), queue="images")
def resize(n: int) -> int:
    return n
"""


def test_a_pool_on_a_queue_no_task_uses_warns_once_and_concurrency_is_split(tmp_path: Path) -> None:
    (tmp_path / "app_tasks.py").write_text(TASKS)
    pool = subprocess.Popen(
        [sys.executable, "-m", "alsek_cli", "thread-pool", "app_tasks", "--queues", "images,imagez",
         "--concurrency", "6", "--backend", f"sqlite:///{tmp_path}/store"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(3)
    finally:
        pool.send_signal(signal.SIGTERM)
        output, _ = pool.communicate(timeout=60)
    warnings = [line for line in output.splitlines() if "uses queue 'imagez'" in line]
    assert len(warnings) == 1 and " WARNING " in warnings[0], output
    assert "uses queue 'images'" not in output
    assert "--concurrency 6: " in output and " thread(s)" in output
    both = alsek("thread-pool", "app_tasks", "--concurrency", "6", "--n-threads", "2", cwd=tmp_path)
    assert both.returncode == 2 and "give one or the other" in both.stderr
