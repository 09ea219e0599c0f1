"""``--log-format json``: every log line a pool writes is one JSON object,
whatever the order of --log-format and --log-level; tracebacks are inside it."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alsek_cli.json_logs import JsonFormatter
from tests.integration.pool_harness import ROOT, TASKS

pytestmark = pytest.mark.slow


def pool_log(tmp_path: Path, until: str, *options: str) -> list[str]:
    """stderr lines of a thread pool started with ``options`` and stopped once
    its log shows ``until``."""
    log_file = tmp_path / "pool.log"
    with log_file.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "alsek_cli", "thread-pool", TASKS, "--backend", f"sqlite:///{tmp_path}/db",
             "--n_threads", "1", "--n_processes", "1", *options],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while until not in log_file.read_text():
            assert process.poll() is None and time.monotonic() < deadline, log_file.read_text()
            time.sleep(0.05)
        process.terminate()
        assert process.wait(60) == 0
    return log_file.read_text().splitlines()


@pytest.mark.parametrize("options", [("--log-format", "json", "--log-level", "debug"),
                                     ("--log-level", "debug", "--log-format", "json")])
def test_every_line_is_a_json_object(tmp_path: Path, options: tuple[str, ...]) -> None:
    lines = pool_log(tmp_path, "started worker process", *options)  # a DEBUG line
    entries = [json.loads(line) for line in lines]
    assert entries and all(set(e) >= {"time", "level", "logger", "message"} for e in entries)
    assert any(e["level"] == "DEBUG" for e in entries)  # --log-level held too
    assert any(e["message"].startswith("found ") and " task(s) in " in e["message"] for e in entries)


def test_text_stays_the_default(tmp_path: Path) -> None:
    lines = pool_log(tmp_path, "consuming")
    assert lines and not any(line.startswith("{") for line in lines)


def test_the_traceback_is_inside_the_object() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("alsek.test", logging.ERROR, __file__, 1, "failed %s", ("x",), sys.exc_info())
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "failed x" and entry["level"] == "ERROR" and entry["logger"] == "alsek.test"
    assert entry["exc_info"].startswith("Traceback") and "ValueError: boom" in entry["exc_info"]
    assert entry["time"].endswith("+00:00")
