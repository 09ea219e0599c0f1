"""``alsek dashboard`` end to end, as an operator uses it: a real pool and
the dashboard run as ``alsek`` subprocesses, and Debian's Chromium (driven by
Playwright, never a downloaded browser) reads the pages and clicks Retry on
a dead letter, which then runs, Pause and Resume on a queue, and Revoke on a
running job. Screenshots are kept under ``artifacts/``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from alsek_core.message import Message
from alsek_core.pause import VIEW_MS
from alsek_core.result import store_for
from alsek_core.status import TaskStatus, tracker_for
from alsek_core.testing.contract.fixtures import unavailable
from alsek_core.workers import live_workers
from tests.integration.network import free_port
from tests.integration.pool_harness import (
    ROOT,
    Store,
    registered_backends,
)

pytestmark = pytest.mark.slow
TASKS = str(Path(__file__).parents[1] / "dashboard_tasks.py")
CHROMIUM = os.environ.get("ALSEK_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = ROOT / "artifacts"


class Server:
    """An ``alsek`` subprocess whose output goes to a file (read on failure)."""

    def __init__(self, log: Path, *args: str) -> None:
        self.log_path = log
        self._log = log.open("w")
        self.process = subprocess.Popen([sys.executable, "-m", "alsek_cli", *args], cwd=ROOT,
                                        stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@pytest.fixture
def servers() -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(log: Path, *args: str) -> Server:
        started.append(Server(log, *args))
        return started[-1]

    yield start
    for server in started:
        server.stop()


def dashboard(start: Callable[..., Server], tmp_path: Path, url: str, *extra: str) -> str:
    port = free_port()
    server = start(tmp_path / f"dashboard-{port}.log", "dashboard", "--backend", url, "--port", str(port), *extra)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(base + "/workers", timeout=5).close()
            return base
        except OSError:
            if server.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the dashboard did not start:\n{server.log()}")
            time.sleep(0.1)


@pytest.fixture
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        unavailable(f"no browser at {CHROMIUM} (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        found = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield found
        found.close()


def dead_uuids(found: Store) -> set[str]:
    return {item.uuid for item in found.backend.messages("dash", dead=True)}


def wait(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def screenshot(page: Any, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(path, ARTIFACTS / path.name)


@pytest.mark.parametrize("store", registered_backends(), indirect=True)
def test_an_operator_retries_a_dead_letter_from_the_page(
    store: Store, servers: Callable[..., Server], browser: Any, tmp_path: Path
) -> None:
    pool = servers(tmp_path / "pool.log", "thread-pool", TASKS, "--backend", store.url,
                   "--n_threads", "2", "--n_processes", "1", "--grace_period", "200")
    base = dashboard(servers, tmp_path, store.url, "--allow-actions")
    flag = tmp_path / "flag"
    failing = [store.broker.submit(Message("flaky", queue="dash", args=(str(flag),))) for _ in range(3)]
    store.broker.submit(Message("nap", queue="dash", args=(0.1,), delay=3_600_000))
    wait(lambda: len(dead_uuids(store)) == 3 and bool(live_workers(store.backend)),
         f"3 dead letters and a registered pool:\n{pool.log()}")
    page = browser.new_page(viewport={"width": 1200, "height": 800})

    page.goto(base + "/")
    row = page.locator("tr", has=page.locator("a", has_text="dash"))
    assert row.locator("td").nth(2).inner_text() == "1"  # delayed
    assert row.locator("td").nth(4).inner_text() == "3"  # dead
    page.goto(base + "/workers")
    assert "ThreadWorkerPool" in page.inner_text("#workers") and "/ 2" in page.inner_text("#workers")

    page.goto(base + "/jobs?state=dead&task=flaky")
    assert page.locator("td.state-dead").count() == 3
    page.click(f"a[href='/jobs/{failing[0].uuid}']")
    detail = page.inner_text("main")
    assert "Traceback" in detail and "RuntimeError: the flag" in detail and "state\tdead" in detail

    page.goto(base + "/dead")
    screenshot(page, tmp_path, f"dashboard-dead-{store.url.split(':')[0]}")
    flag.touch()
    page.click(f"button[data-uuid='{failing[0].uuid}']")
    assert "requeued 1 message(s)" in page.inner_text("p.done")
    results = store_for(store.backend)
    wait(lambda: results.exists(failing[0]), "the retried message to run")
    assert len(dead_uuids(store)) == 2

    page.goto(base + f"/jobs/{failing[0].uuid}")
    assert "'fixed'" in page.inner_text("main") and "succeeded" in page.inner_text("main").lower()
    wait(lambda: len(store.broker.history("dash", "succeeded")) == 1, "the job history of the retried message")
    page.goto(base + f"/jobs/{failing[0].uuid}")
    history = page.inner_text("#history")
    assert "succeeded" in history and "attempts\t1" in history and "ThreadWorkerPool" not in history
    page.goto(base + "/jobs?state=failed&task=flaky")
    assert page.locator("td.state-failed").count() == 3
    assert "RuntimeError: the flag" in page.inner_text("main")
    page.goto(base + "/jobs?state=succeeded")
    assert page.locator(f"a[href='/jobs/{failing[2].uuid}']").count() == 0
    page.click(f"a[href='/jobs/{failing[0].uuid}']")
    assert "History" in page.inner_text("main")
    page.goto(base + "/")
    page.wait_for_selector("svg.chart", timeout=30_000)  # two samples, a few seconds apart
    screenshot(page, tmp_path, f"dashboard-queues-{store.url.split(':')[0]}")
    page.close()


@pytest.mark.parametrize("store", registered_backends(), indirect=True)
def test_an_operator_pauses_a_queue_and_revokes_a_job(
    store: Store, servers: Callable[..., Server], browser: Any, tmp_path: Path
) -> None:
    pool = servers(tmp_path / "pool.log", "thread-pool", TASKS, "--backend", store.url, "--queues", "dash,probe",
                   "--n_threads", "2", "--n_processes", "1", "--grace_period", "200")
    base = dashboard(servers, tmp_path, store.url, "--allow-actions")
    store.broker.submit(Message("nap", queue="dash", args=(0.1,), delay=3_600_000))  # lists the queue
    wait(lambda: bool(live_workers(store.backend)), f"a registered pool:\n{pool.log()}")
    results, statuses = store_for(store.backend), tracker_for(store.backend)
    page = browser.new_page(viewport={"width": 1200, "height": 800})

    page.goto(base + "/")
    row = page.locator("tr[data-queue='dash']")
    row.locator("button", has_text="Pause").click()
    assert "paused" in page.inner_text("p.done") and row.locator("td.paused").count() == 1
    assert store.broker.is_paused("dash")
    time.sleep(2 * VIEW_MS / 1000)  # every pool's view of the paused queues is this fresh
    held = [store.broker.submit(Message("nap", queue="dash", args=(0,))) for _ in range(3)]
    # Submitted after them, on a queue the pool claims after "dash": once it ran,
    # a claim saw all four, and took only it.
    probe = store.broker.submit(Message("nap", queue="probe", args=(0,)))
    wait(lambda: results.exists(probe), f"the probe to run:\n{pool.log()}")
    assert not any(results.exists(m) for m in held) and store.broker.counts("dash").ready == 3
    page.goto(base + "/")
    assert row.locator("td").nth(1).inner_text() == "3" and row.locator("td.paused").count() == 1  # ready, held
    screenshot(page, tmp_path, f"dashboard-paused-{store.url.split(':')[0]}")

    row.locator("button", has_text="Resume").click()
    assert "resumed" in page.inner_text("p.done") and row.locator("td.paused").count() == 0
    wait(lambda: all(results.exists(m) for m in held), f"the resumed queue to run:\n{pool.log()}")

    long = store.broker.submit(Message("nap", queue="dash", args=(600,)))
    wait(lambda: statuses.get(long) == TaskStatus.RUNNING, f"the long job to run:\n{pool.log()}")
    page.goto(base + f"/jobs/{long.uuid}")
    assert "state\tin_flight" in page.inner_text("main")
    page.click("button:has-text('Revoke')")
    assert "revoked" in page.inner_text("p.done")
    wait(lambda: statuses.get(long) == TaskStatus.REVOKED, f"the revoked job to stop:\n{pool.log()}")
    wait(lambda: not store.broker.contains("dash", long.uuid), "the revoked job to leave its queue")
    page.goto(base + f"/jobs/{long.uuid}")
    assert page.locator("button").count() == 0  # finished: nothing left to revoke
    page.close()
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(base + f"/jobs/{long.uuid}/revoke", data=b"queue=dash",
                                                      method="POST"), timeout=10)
    assert refused.value.code == 409
    refused.value.close()


@pytest.mark.parametrize("store", ["diskcache"], indirect=True)
def test_read_only_by_default(store: Store, servers: Callable[..., Server], browser: Any,
                              tmp_path: Path) -> None:
    base = dashboard(servers, tmp_path, store.url)
    page = browser.new_page()
    store.broker.submit(Message("nap", queue="dash", args=(0.1,), delay=3_600_000))
    for path in ("/dead", "/", "/jobs"):
        page.goto(base + path)
        assert "read-only" in page.inner_text("header") and page.locator("form[method=post]").count() == 0
    page.close()
    for action in ("/dead/retry", "/dead/purge", "/jobs/some-uuid/revoke", "/queues/pause", "/queues/resume"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(base + action, data=b"", method="POST"), timeout=10)
        assert refused.value.code == 403
        refused.value.close()
    for path, code in (("/jobs?queue=not%20a%20queue!", 400), ("/jobs/no-such-uuid", 404)):
        with pytest.raises(urllib.error.HTTPError) as answered:
            urllib.request.urlopen(base + path, timeout=10)
        assert answered.value.code == code
        answered.value.close()


@pytest.mark.parametrize("store", ["postgres"], indirect=True)
def test_the_password_is_never_shown(store: Store, servers: Callable[..., Server], tmp_path: Path) -> None:
    """The test server trusts local connections, so any password connects."""
    url = re.sub(r"^(postgres\w*://)([^:@/]+)@", r"\1\2:s3cret-pw@", store.url)
    assert "s3cret-pw" in url
    base = dashboard(servers, tmp_path, url)
    for path in ("/", "/jobs", "/dead", "/workers"):
        with urllib.request.urlopen(base + path, timeout=10) as response:
            text = response.read().decode()
            assert "s3cret-pw" not in text and "***" in text
