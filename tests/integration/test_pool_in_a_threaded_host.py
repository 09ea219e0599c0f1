"""A pool embedded in a program that runs threads of its own (producers
submitting over open Redis and PostgreSQL connections): starting and stopping
it again and again never hangs, and never closes the program's connections."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from alsek_core.config import backend_from_url
from alsek_core.testing.contract.fixtures import unavailable, wipe
from tests.integration.pool_harness import ROOT, backend_url

pytestmark = pytest.mark.slow
HOST = str(Path(__file__).with_name("fork_host_app.py"))
ROUNDS = 50


def test_a_pool_started_50_times_next_to_producer_threads() -> None:
    scratch = tempfile.mkdtemp(prefix="alsek-fork-host-")
    urls = [backend_url("redis", scratch), backend_url("postgres", scratch)]
    backends = [backend_from_url(url) for url in urls]
    try:
        for backend in backends:
            try:
                backend.exists("probe")
            except Exception as exc:
                unavailable(f"{backend!r} is unreachable: {exc}")
        try:
            done = subprocess.run([sys.executable, HOST, *urls, str(ROUNDS)], cwd=ROOT, capture_output=True,
                                  text=True, timeout=240)
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"the host hung: {exc.stdout!r} {exc.stderr!r}")
        assert done.returncode == 0, done.stderr[-3000:]
        summary = done.stdout.splitlines()[0]
        assert summary.startswith(f"rounds={ROUNDS} ") and summary.endswith(" errors=0"), done.stdout[-3000:]
    finally:
        for backend in backends:
            wipe(backend)
            backend.close()
