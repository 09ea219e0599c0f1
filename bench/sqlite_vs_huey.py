#!/usr/bin/env python3
"""The embedded default against Huey's SQLite storage, side by side, one run.

Both drain the same N no-op tasks (the peer harness's ``common.mark_done``: one
Redis INCR) with 2-way concurrency, counted from worker spawn, like
../shared/bench/peers/run.py does for the Redis peers:

  huey    SqliteHuey, ``huey_consumer -w 2`` (threads)
  alsek   DiskCacheBackend, ``alsek thread-pool --n_threads 2 --n_processes 1``
          and ``alsek process-pool --n_processes 2``

Usage: python bench/sqlite_vs_huey.py [N] [--huey-python PATH] [--alsek-python PATH]
Huey comes from the peers venv (../shared/bench/peers/run.sh makes it at
/tmp/peers-venv); alsek from the interpreter given (default: this one).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import redis

PEERS = Path(__file__).resolve().parents[2] / "shared" / "bench" / "peers"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")

HUEY_MODULE = """
from huey import SqliteHuey
from common import mark_done
huey = SqliteHuey("bench", filename={db!r})

@huey.task()
def noop():
    mark_done()

def enqueue(n):
    for _ in range(n):
        noop()
"""

ALSEK_MODULE = """
from alsek import Broker, task
from alsek.storage.backends.disk import DiskCacheBackend
from common import mark_done
broker = Broker(DiskCacheBackend({directory!r}))

@task(broker, queue="bench", mechanism={mechanism!r})
def noop():
    mark_done()

def enqueue(n):
    for _ in range(n):
        noop.generate()

def enqueue_bulk(n):
    broker.submit_many([noop.generate(submit=False) for _ in range(n)])
"""


def run(
    label: str, python: str, workdir: Path, module: str, enqueue: str, worker: list[str], n: int
) -> dict:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(workdir), str(PEERS)]), PYTHONUNBUFFERED="1"
    )
    r = redis.Redis.from_url(REDIS_URL)
    r.delete("bench:done", "bench:first")
    started = time.perf_counter()
    subprocess.run(
        [python, "-c", f"import {module}; {module}.{enqueue}({n})"],
        env=env,
        cwd=workdir,
        check=True,
    )
    enqueue_s = time.perf_counter() - started
    log = open(workdir / f"{label}.log", "w")  # noqa: SIM115
    spawn = time.perf_counter()
    proc = subprocess.Popen(
        worker, env=env, cwd=workdir, stdout=log, stderr=log, start_new_session=True
    )
    done = 0
    deadline = spawn + 300
    while time.perf_counter() < deadline:
        done = int(r.get("bench:done") or 0)
        if done >= n:
            break
        if proc.poll() is not None:
            break
        time.sleep(0.01)
    drain_s = time.perf_counter() - spawn
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    row = {
        "mode": label,
        "n": n,
        "done": done,
        "enqueue_per_s": round(n / enqueue_s),
        "drain_per_s": round(n / drain_s) if done >= n else None,
    }
    print(
        f"{label:<22} enqueue/s {row['enqueue_per_s']:>8}   drain/s {row['drain_per_s'] or 'INCOMPLETE':>8}",
        flush=True,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int, nargs="?", default=10_000)
    parser.add_argument("--huey-python", default="/tmp/peers-venv/bin/python")
    parser.add_argument("--alsek-python", default=sys.executable)
    args = parser.parse_args()
    alsek_bin = Path(args.alsek_python).parent / "alsek"
    alsek = [str(alsek_bin)] if alsek_bin.exists() else [args.alsek_python, "-m", "alsek_cli"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="alsek-bench-") as tmp:
        work = Path(tmp)
        (work / "huey_bench.py").write_text(HUEY_MODULE.format(db=str(work / "huey.db")))
        huey_consumer = str(Path(args.huey_python).parent / "huey_consumer")
        rows.append(
            run(
                "huey-sqlite-w2",
                args.huey_python,
                work,
                "huey_bench",
                "enqueue",
                [huey_consumer, "huey_bench.huey", "-w", "2", "-q"],
                args.n,
            )
        )
        for mechanism, label, pool in (
            (
                "thread",
                "alsek-thread-t2",
                ["thread-pool", "--n_threads", "2", "--n_processes", "1"],
            ),
            ("process", "alsek-process-p2", ["process-pool", "--n_processes", "2"]),
        ):
            for enqueue in ("enqueue", "enqueue_bulk"):
                directory = work / f"disk-{mechanism}-{enqueue}"
                module = f"alsek_{mechanism}_{enqueue}"
                (work / f"{module}.py").write_text(
                    textwrap.dedent(
                        ALSEK_MODULE.format(directory=str(directory), mechanism=mechanism)
                    )
                )
                suffix = "" if enqueue == "enqueue" else "+bulk"
                rows.append(
                    run(
                        label + suffix,
                        args.alsek_python,
                        work,
                        module,
                        enqueue,
                        [
                            *alsek,
                            *pool[:1],
                            module,
                            *pool[1:],
                            "-qu",
                            "bench",
                            "--log-level",
                            "WARNING",
                        ],
                        args.n,
                    )
                )
                shutil.rmtree(directory, ignore_errors=True)
    huey = rows[0]["drain_per_s"] or 0
    best = max((r["drain_per_s"] or 0) for r in rows[1:])
    print(
        f"best alsek drain / huey-sqlite drain = {best / huey:.2f}x"
        if huey
        else "huey did not finish"
    )
    print(json.dumps({"rows": rows}, indent=1))


if __name__ == "__main__":
    main()
