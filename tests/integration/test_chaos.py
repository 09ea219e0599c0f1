"""The chaos soak (bench/chaos.py), short, on every backend: half a minute of
worker and pool SIGKILLs, connection kills, a private redis-server's restarts
and poison inputs loses nothing, and every message completed twice had the
process of its earlier completion die before the ack.

PostgreSQL runs without the cluster restart: the server is shared.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from alsek_core.testing.contract.fixtures import unavailable

ROOT = Path(__file__).resolve().parents[2]
SOAK = ROOT / "bench" / "chaos.py"
#: chaos for half a minute, then at most this long to drain and stop.
DRAIN_S = 45


def reachable(backend: str) -> None:
    if backend == "redis":
        pytest.importorskip("redis")
        if not shutil.which("redis-server"):
            unavailable("redis-server is not on PATH (the soak restarts a private one)")
    if backend == "postgres":
        psycopg = pytest.importorskip("psycopg")
        from tests.integration.conftest import postgres_url

        try:
            psycopg.Connection.connect(postgres_url(), connect_timeout=5).close()
        except psycopg.OperationalError as exc:
            unavailable(f"PostgreSQL unreachable at {postgres_url()}: {exc}")


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("backend", ["sqlite", "redis", "postgres"])
def test_chaos_soak_loses_nothing(backend: str, tmp_path: Path) -> None:
    reachable(backend)
    figures = tmp_path / "chaos.json"
    done = subprocess.run(
        [sys.executable, str(SOAK), backend, "--minutes", "0.5", "--interval", "2",
         "--drain", str(DRAIN_S), "--json", str(figures)],
        cwd=ROOT, capture_output=True, text=True, timeout=200, check=False,
    )
    output = f"exit {done.returncode}\n{done.stdout}\n{done.stderr[-4000:]}"
    assert figures.exists(), output
    report = json.loads(figures.read_text())
    assert report["submitted"] > 0, output
    assert report["lost"] == 0, output
    unexplained = [d for d in report["doubles"] if d["verdict"] == "no worker death"]
    assert not unexplained, output
    stuck = {kind: counts for kind, counts in report["poisons"].items()
             if counts.get("dead-lettered", 0) != counts["submitted"]}
    assert not stuck, output
    assert done.returncode == 0, output
