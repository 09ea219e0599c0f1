#!/usr/bin/env python3
"""alsek against the peer that owns the same storage, side by side in one run.

  sqlite    Huey's SqliteHuey (``huey_consumer -w 2``) vs the embedded DiskCache default
  postgres  procrastinate (``worker --concurrency 2``) vs the PostgreSQL backend

Every task body is the peer harness's ``common.mark_done`` (one Redis INCR),
N tasks are enqueued one by one (and in bulk for alsek), then drained with
2-way concurrency, counted from worker spawn, as ../shared/bench/peers/run.py
does for the Redis peers. alsek runs both pools: thread-pool (2 threads, 1
process group) and process-pool (2 processes). Beside them, the "bare loop":
``mark_done`` itself in 2 processes with no queue, timed from their spawn
(bench/bare.py), and each drain's ratio to it, in the same sitting.

Usage: python bench/versus.py sqlite|postgres [N] [--peer-python PATH] [--alsek-python PATH]
The peers come from the venv ../shared/bench/peers/run.sh makes (/tmp/peers-venv).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from bare import bare_loop

#: The peer harness: ../shared/bench/peers from the repository, whichever
#: folder (a clone, a worktree) holds it.
PEERS = next(
    (p / "shared" / "bench" / "peers" for p in Path(__file__).resolve().parents
     if (p / "shared" / "bench" / "peers").is_dir()),
    Path(__file__).resolve().parents[2] / "shared" / "bench" / "peers",
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
PG_DSN = os.environ.get(
    "BENCH_PG_DSN", "postgresql://bench_peers:bench_peers@127.0.0.1:5432/bench_peers"
)
PG_ADMIN = os.environ.get("BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")

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
from alsek_core.config import backend_from_url
from common import mark_done
broker = Broker(backend_from_url({url!r}))

@task(broker, queue="bench", mechanism={mechanism!r})
def noop():
    mark_done()

def enqueue(n):
    for _ in range(n):
        noop.generate()

def enqueue_bulk(n):
    broker.submit_many([noop.generate(submit=False) for _ in range(n)])
"""


@dataclass
class Mode:
    label: str
    python: str
    module: str
    enqueue: str
    worker: list[str]


def drain(mode: Mode, workdir: Path, n: int, reset: object) -> dict[str, object]:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(workdir), str(PEERS)]), PYTHONUNBUFFERED="1"
    )
    r = redis.Redis.from_url(REDIS_URL)
    r.delete("bench:done", "bench:first")
    if callable(reset):
        reset()
    code = f"import {mode.module} as m; m.{mode.enqueue}({n})"
    started = time.perf_counter()
    subprocess.run([mode.python, "-c", code], env=env, cwd=workdir, check=True)
    enqueue_s = time.perf_counter() - started
    with open(workdir / f"{mode.label}.log", "w") as log:
        spawn = time.perf_counter()
        proc = subprocess.Popen(
            mode.worker, env=env, cwd=workdir, stdout=log, stderr=log, start_new_session=True
        )
        done, deadline = 0, spawn + 300
        while time.perf_counter() < deadline and proc.poll() is None:
            done = int(r.get("bench:done") or 0)
            if done >= n:
                break
            time.sleep(0.01)
        drain_s = time.perf_counter() - spawn
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    row: dict[str, object] = {
        "mode": mode.label,
        "n": n,
        "done": done,
        "enqueue_per_s": round(n / enqueue_s),  # includes the enqueuing interpreter's start-up
        "drain_per_s": round(n / drain_s) if done >= n else None,
    }
    print(
        f"{mode.label:<26} enqueue/s {row['enqueue_per_s']:>8}   drain/s {row['drain_per_s'] or 'INCOMPLETE':>8}",
        flush=True,
    )
    return row


def alsek_cli(python: str) -> list[str]:
    script = Path(python).parent / "alsek"
    return [str(script)] if script.exists() else [python, "-m", "alsek_cli"]


def alsek_modes(python: str, workdir: Path, url: str) -> list[Mode]:
    cli = alsek_cli(python)
    modes = []
    for mechanism, label, pool in (
        ("thread", "alsek-thread-t2", ["thread-pool", "--n_threads", "2", "--n_processes", "1"]),
        ("process", "alsek-process-p2", ["process-pool", "--n_processes", "2"]),
    ):
        module = f"alsek_bench_{mechanism}"
        (workdir / f"{module}.py").write_text(ALSEK_MODULE.format(url=url, mechanism=mechanism))
        argv = [*cli, pool[0], module, *pool[1:], "-qu", "bench", "--log-level", "WARNING"]
        modes.append(Mode(label, python, module, "enqueue", argv))
        modes.append(Mode(label + "+bulk", python, module, "enqueue_bulk", argv))
    return modes


def sqlite(args: argparse.Namespace, workdir: Path) -> tuple[list[Mode], object]:
    (workdir / "huey_bench.py").write_text(HUEY_MODULE.format(db=str(workdir / "huey.db")))
    consumer = str(Path(args.peer_python).parent / "huey_consumer")
    peer = Mode(
        "huey-sqlite-w2",
        args.peer_python,
        "huey_bench",
        "enqueue",
        [consumer, "huey_bench.huey", "-w", "2", "-q"],
    )
    store = workdir / "alsek-store"

    def reset() -> None:
        import shutil

        shutil.rmtree(store, ignore_errors=True)
        (workdir / "huey.db").unlink(missing_ok=True)

    return [peer, *alsek_modes(args.alsek_python, workdir, f"sqlite:///{store}")], reset


def postgres(args: argparse.Namespace, workdir: Path) -> tuple[list[Mode], object]:
    import psycopg

    procrastinate = str(Path(args.peer_python).parent / "procrastinate")
    peer = Mode(
        "procrastinate-async-c2",
        args.peer_python,
        "peer_procrastinate",
        "enqueue_single",
        [
            procrastinate,
            "--app",
            "peer_procrastinate.app",
            "--log-level",
            "warning",
            "worker",
            "--concurrency",
            "2",
            "--queues",
            "bench",
        ],
    )
    url = f"{PG_DSN}?schema=alsek_bench"
    env = dict(os.environ, PYTHONPATH=str(PEERS))

    def reset() -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'bench_peers'").fetchone():
                conn.execute("CREATE ROLE bench_peers LOGIN CREATEDB PASSWORD 'bench_peers'")
            conn.execute("DROP DATABASE IF EXISTS bench_peers WITH (FORCE)")
            conn.execute("CREATE DATABASE bench_peers OWNER bench_peers")
        subprocess.run(
            [procrastinate, "--app", "peer_procrastinate.app", "schema", "--apply"],
            cwd=PEERS,
            env=env,
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [*alsek_cli(args.alsek_python), "db", "init", "--backend", url],
            check=True,
            capture_output=True,
        )

    return [peer, *alsek_modes(args.alsek_python, workdir, url)], reset


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("storage", choices=["sqlite", "postgres"])
    parser.add_argument("n", type=int, nargs="?", default=10_000)
    parser.add_argument("--peer-python", default="/tmp/peers-venv/bin/python")
    parser.add_argument("--alsek-python", default=sys.executable)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="alsek-versus-") as tmp:
        workdir = Path(tmp)
        modes, reset = (sqlite if args.storage == "sqlite" else postgres)(args, workdir)
        rows = [drain(mode, workdir, args.n, reset) for mode in modes]
    bare, bare_steady = bare_loop(args.n, "from common import mark_done", "mark_done()",
                                  env=dict(os.environ, PYTHONPATH=str(PEERS)), python=args.alsek_python)
    redis.Redis.from_url(REDIS_URL).delete("bench:done", "bench:first")
    print(f"{'bare loop (mark_done) x2':<26} {'':>17}   drain/s {bare:>8.0f}   (loops alone {bare_steady:.0f}/s)")
    for row in rows:
        row["drain_over_bare"] = round(int(row["drain_per_s"]) / bare, 3) if row["drain_per_s"] else None  # type: ignore[call-overload]
        print(f"{row['mode']:<26} drain / bare loop = {row['drain_over_bare']}")
    peer = rows[0]["drain_per_s"]
    best = max(int(r["drain_per_s"] or 0) for r in rows[1:])  # type: ignore[call-overload]
    if peer:
        print(f"best alsek drain / {rows[0]['mode']} drain = {best / int(peer):.2f}x")  # type: ignore[call-overload]
    print(json.dumps({"storage": args.storage, "rows": rows, "bare_loop_per_s": round(bare),
                      "bare_loop_steady_per_s": round(bare_steady)}))


if __name__ == "__main__":
    main()
