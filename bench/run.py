#!/usr/bin/env python3
"""End-to-end figures per backend, for the lead (not a test; nothing asserted).

For the embedded DiskCache/SQLite store always, and for every other registered
backend with a test URL that answers (Redis, PostgreSQL):

* enqueue/s: ``Task.generate()`` one by one, and ``Broker.submit_many`` in one batch;
* drain/s of N no-op tasks by each pool kind with 2-way concurrency, run by the
  CLI as a user would (``alsek thread-pool bench/bench_tasks.py --n_threads 2
  --n_processes 1`` and ``alsek process-pool ... --n_processes 2``), counted from
  the pool's spawn like ../shared/bench/peers does ("drain"), and from the first
  message done ("steady");
* beside them, the "bare loop": the same task body in the same number of
  processes (2) with no queue, timed the same way from the spawn
  (``bench/bare.py``), and each drain's ratio to it, measured in the same run;
* with ``--stores``, each drain again with a status tracker and a result store
  on every task (``StatusTracker(backend)``, ``ResultStore(backend)``, as the
  tour builds them), in the same run, so "stores on / stores off" compares
  figures measured minutes apart;
* submit-to-start latency p50/p99 on an idle pool of each kind: one message at a
  time, each submitted after the pool has been idle for a while (``--samples 0``
  leaves it out).

* with ``--rounds R``, each drain R times (off and on alternating) and the
  median reported: on a shared machine one drain moves by ±40%.

Usage: python bench/run.py [N] [--samples S] [--stores] [--rounds R] [--backends diskcache,redis] [--json PATH]
Prints a table, then the JSON (also written to --json when given).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid as uuid_lib
from pathlib import Path
from typing import Any

from bare import bare_loop

from alsek_core.broker import Broker
from alsek_core.config import backend_from_url
from alsek_core.message import Message
from alsek_core.plugins import plugin_host
from alsek_core.result import ResultStore
from alsek_core.status import StatusTracker
from alsek_core.task import Task, task
from alsek_core.testing.contract.fixtures import shared_across_processes

HERE = Path(__file__).resolve().parent
TASKS = str(HERE / "bench_tasks.py")
QUEUE = "bench"
POOLS = {
    "thread-t2": ["thread-pool", "--n_threads", "2", "--n_processes", "1"],
    "process-p2": ["process-pool", "--n_processes", "2"],
}


def targets(only: list[str], scratch: str) -> list[tuple[str, str]]:
    specs = {spec.name: spec for spec, _ in plugin_host().registry.backends.values()}
    found = []
    for name, spec in sorted(specs.items()):
        if spec.test_url is None or (only and name not in only):
            continue
        url = spec.test_url(scratch)
        found.append((name, f"{url}{'&' if '?' in url else '?'}namespace=bench-{uuid_lib.uuid4().hex[:8]}"))
    return found


class Bench:
    def __init__(self, url: str) -> None:
        self.url = url
        self.backend = backend_from_url(url)
        self.broker = Broker(self.backend)
        self.results = ResultStore(self.backend)
        self.statuses = StatusTracker(self.backend)
        self.noop: Task = task(self.broker, name="noop", queue=QUEUE)(lambda: None)
        self.stored: Task = task(self.broker, name="stored", queue=QUEUE, result_store=self.results,
                                 status_tracker=self.statuses)(lambda: True)
        self.stamp: Task = task(self.broker, name="stamp", queue=QUEUE, result_store=self.results)(time.time)

    def live(self) -> int:
        counts = self.broker.counts(QUEUE)
        return counts.ready + counts.delayed + counts.in_flight

    def clear(self) -> None:
        """Empty the queue, and forget every result and status written (the
        stores' own way, so a native store's table rows go too)."""
        self.broker.purge(QUEUE)
        for uuid in list(self.statuses.uuids()):
            self.statuses.remove(uuid)
            self.results.delete(Message("stored", uuid=uuid), descendants=False, missing_ok=True)
        for name in list(self.backend.scan("results:")):
            self.backend.delete(name, missing_ok=True)

    def enqueue_single(self, n: int) -> float:
        started = time.perf_counter()
        for _ in range(n):
            self.noop.generate()
        rate = n / (time.perf_counter() - started)
        self.clear()
        return rate

    def enqueue_batch(self, n: int) -> float:
        started = time.perf_counter()
        self.broker.submit_many([self.noop.generate(submit=False) for _ in range(n)])
        rate = n / (time.perf_counter() - started)
        self.clear()
        return rate

    def pool(self, kind: str, log: Any) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-m", "alsek_cli", *POOLS[kind], TASKS, "--backend", self.url,
                "--log-level", "warning"]
        return subprocess.Popen(argv, cwd=HERE.parent, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def drain(self, kind: str, n: int, timeout: float, log: Any, job: Task) -> dict[str, Any]:
        for start in range(0, n, 5000):
            self.broker.submit_many([job.generate(submit=False) for _ in range(min(5000, n - start))])
        spawned = time.perf_counter()
        pool = self.pool(kind, log)
        first = None
        try:
            while (live := self.live()) > 0:
                if first is None and live < n:
                    first, first_left = time.perf_counter(), live
                if time.perf_counter() - spawned > timeout or pool.poll() is not None:
                    return {"status": f"stopped with {live} left (exit code {pool.poll()})"}
                time.sleep(0.005)
            ended = time.perf_counter()
        finally:
            stop(pool)
            self.clear()
        out: dict[str, Any] = {"status": "ok", "drain_per_s": n / (ended - spawned), "exit_code": pool.returncode}
        if first is not None and ended > first:
            out["steady_per_s"] = first_left / (ended - first)
        return out

    def bare(self, n: int) -> tuple[float, float]:
        """The tasks' body (``noop``, and ``stored``'s is as empty) run n times
        by bare_loop's processes, each importing the task module as a pool does."""
        env = dict(os.environ, ALSEK_BACKEND_URL=self.url)
        return bare_loop(n, "import bench_tasks", "bench_tasks.noop()", env=env, cwd=str(HERE))

    def latency(self, kind: str, samples: int, log: Any) -> dict[str, Any]:
        pool = self.pool(kind, log)
        try:
            self.results.get(self.stamp.generate(), timeout=60_000)  # the pool is up
            waits = []
            for _ in range(samples):
                time.sleep(0.05)  # let the pool go idle
                before = time.time()
                started_at = self.results.get(self.stamp.generate(), timeout=10_000)
                waits.append((started_at - before) * 1000)
        finally:
            stop(pool)
            self.clear()
        cuts = statistics.quantiles(waits, n=100)
        return {"p50_ms": cuts[49], "p99_ms": cuts[98], "samples": samples}


def stop(pool: subprocess.Popen[bytes]) -> None:
    if pool.poll() is None:
        pool.send_signal(signal.SIGTERM)
    try:
        pool.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(pool.pid, signal.SIGKILL)
        pool.wait()


def median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median drain (failed runs count as slowest), with
    every run's drain under ``runs``."""
    ranked = sorted(runs, key=lambda r: r.get("drain_per_s", 0.0))
    return {**ranked[(len(ranked) - 1) // 2], "runs": [r.get("drain_per_s") for r in runs]}


def measure(
    name: str, url: str, n: int, samples: int, timeout: float, logdir: str, stores: bool, rounds: int = 1
) -> dict[str, Any]:
    row: dict[str, Any] = {"backend": name}
    bench = Bench(url)
    try:
        bench.backend.exists("bench-probe")
    except Exception as exc:
        row["status"] = f"unavailable: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
        return row
    if not shared_across_processes(bench.backend, functools.partial(backend_from_url, url)):
        row["status"] = "left out: its storage lives in one process, and pools run in several"
        return row
    with open(os.path.join(logdir, f"{name}.log"), "w") as log:
        try:
            bench.clear()
            row["enqueue_single_per_s"] = bench.enqueue_single(min(n, 5000))
            row["enqueue_batch_per_s"] = bench.enqueue_batch(n)
            for kind in POOLS:
                jobs = {f"drain_{kind}": bench.noop} | ({f"drain_{kind}_stores": bench.stored} if stores else {})
                runs: dict[str, list[dict[str, Any]]] = {key: [] for key in jobs}
                for _ in range(rounds):  # off and on alternate, so both meet the same load
                    for key, job in jobs.items():
                        runs[key].append(bench.drain(kind, n, timeout, log, job))
                row.update({key: median(found) for key, found in runs.items()})
            row["bare_loop_per_s"], row["bare_loop_steady_per_s"] = bench.bare(n)
            for kind in POOLS:
                if samples:
                    row[f"latency_{kind}"] = bench.latency(kind, samples, log)
            row["status"] = "ok"
        except Exception as exc:
            row["status"] = f"error: {type(exc).__name__}: {exc}"
        finally:
            bench.clear()
    return row


def fmt(value: Any, spec: str = ",.0f") -> str:
    return format(value, spec) if isinstance(value, (int, float)) else "-"


def table(rows: list[dict[str, Any]]) -> str:
    """One line per backend; with stores on, each pool's drain with them and
    its share of the drain without them; "/bare" is each drain over the bare loop."""
    drains = [f"drain_{k}{suffix}" for k in POOLS for suffix in ("", "_stores")
              if any(f"drain_{k}{suffix}" in r for r in rows)]
    latencies = [f"latency_{k}" for k in POOLS if any(f"latency_{k}" in r for r in rows)]
    head = (f"{'backend':<11}{'enq 1by1/s':>11}{'enq batch/s':>12}{'bare loop/s':>12}{'(steady)':>12}"
            + "".join(f"{d.removeprefix('drain_') + ' drain/s':>28}{'(steady)':>10}{'/bare':>7}" for d in drains)
            + "".join(f"{lat.removeprefix('latency_') + ' p50/p99 ms':>22}" for lat in latencies))
    lines = [head]
    for r in rows:
        if r.get("status") != "ok":
            lines.append(f"{r['backend']:<11}{r.get('status')}")
            continue
        bare = r.get("bare_loop_per_s")
        line = (f"{r['backend']:<11}{fmt(r['enqueue_single_per_s']):>11}{fmt(r['enqueue_batch_per_s']):>12}"
                f"{fmt(bare):>12}{fmt(r.get('bare_loop_steady_per_s')):>12}")
        for key in drains:
            d = r[key]
            figure = fmt(d.get("drain_per_s"))
            off = r.get(key.removesuffix("_stores"), {}).get("drain_per_s")
            if key.endswith("_stores") and isinstance(off, float) and "drain_per_s" in d:
                figure += f" ({d['drain_per_s'] / off:.0%})"
            ratio = d["drain_per_s"] / bare if isinstance(bare, float) and "drain_per_s" in d else None
            line += f"{figure:>28}{fmt(d.get('steady_per_s')):>10}{fmt(ratio, '.2f'):>7}"
        for key in latencies:
            lat = r[key]
            line += f"{fmt(lat['p50_ms'], '.1f') + ' / ' + fmt(lat['p99_ms'], '.1f'):>22}"
        lines.append(line)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=200, help="latency samples per pool kind")
    parser.add_argument("--stores", action="store_true",
                        help="also drain with a status tracker and a result store on every task")
    parser.add_argument("--rounds", type=int, default=1,
                        help="drain each pool kind this many times (with --stores, off and on alternating); "
                             "the median is reported")
    parser.add_argument("--backends", default="", help="comma list (default: every registered one)")
    parser.add_argument("--timeout", type=float, default=300, help="per drain, seconds")
    parser.add_argument("--json", dest="json_path", default=None)
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="alsek-bench-")
    only = [b for b in args.backends.split(",") if b]
    rows = [measure(name, url, args.n, args.samples, args.timeout, scratch, args.stores, args.rounds)
            for name, url in targets(only, scratch)]
    report = {"n": args.n, "python": platform.python_version(), "cpus": os.cpu_count(), "rows": rows,
              "logs": scratch}
    print(table(rows))
    print(json.dumps(report, indent=1))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
