#!/usr/bin/env python3
"""Redis drain with results on: the peers that keep results, against alsek
with a status tracker and a result store on every task, in one run.

Uses the peer harness (``../shared/bench/peers``: its ``common.mark_done``
task body, its ``enqueue`` and ``drain`` steps; see its README) with task
modules of our own in ``bench/peers_results/`` that keep results:

* Huey: ``RedisHuey``'s result store (on by default; the task returns True,
  since Huey stores no None);
* RQ: its default results (``result_ttl`` 500 s);
* Celery: the Redis result backend, ``task_ignore_result=False``;
* Dramatiq: the ``Results`` middleware with its Redis backend, ``store_results=True``;
* alsek: ``StatusTracker(backend)`` and ``ResultStore(backend)`` on the task.

Same N, 2-way concurrency, the harness's worker commands and modes. Drain is
N / (time the N-th task finished - worker spawn), as the harness counts it.
Redis DB 12 by default (``--redis-url``); between rows only the keys these
peers write are deleted (never FLUSHDB: the server is shared).

Run under a Python that has the peers and psycopg installed (the harness's
``run.py`` imports it), e.g. ``/tmp/settle-peers-venv/bin/python
bench/peers_results.py 5000``; alsek runs under ``--alsek-python`` (default:
this checkout's ``.venv``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEERS_DIR = Path(os.environ.get("PEERS_DIR", ROOT.parent.parent / "shared" / "bench" / "peers"))
TASKS_DIR = HERE / "peers_results"
QUEUE = "bench-results"
#: What the peers below write (their queues, results and the harness's counter);
#: Dramatiq's result keys are the md5 of the message's key, 32 hex digits.
KEY_PATTERNS = ("bench:*", "*bench-results*", "huey.*", "rq:*", "celery*", "_kombu*", "unacked*", "dramatiq:*",
                "[0-9a-f]" * 32)


def rows(redis_url: str, alsek_python: str) -> list[tuple[str, str, str, list[list[str]], dict[str, str]]]:
    """(peer, mode, task module, worker argvs, extra env), the harness's modes."""
    bin_dir = Path(sys.executable).parent

    def b(*argv: str) -> list[str]:
        return [str(bin_dir / argv[0]), *argv[1:]]

    huey = b("huey_consumer", "results_huey.huey", "-w", "2", "-q")
    rq = b("rq", "worker", "-u", redis_url, "--quiet", "-w", "rq.worker.SimpleWorker", QUEUE)
    dramatiq = b("dramatiq", "results_dramatiq", "--queues", QUEUE, "--processes", "1", "--threads", "2")
    alsek = [alsek_python, "-m", "alsek_cli"]
    alsek_opts = ["--queues", QUEUE, "--log-level", "warning"]
    tasks = str(TASKS_DIR / "results_alsek.py")
    return [
        ("huey", "thread-w2", "results_huey", [[*huey, "-k", "thread"]], {}),
        ("huey", "process-w2", "results_huey", [[*huey, "-k", "process"]], {}),
        ("rq", "simple-2w", "results_rq", [rq, rq], {}),
        ("celery", "prefork-c2", "results_celery", [b(
            "celery", "-A", "results_celery", "worker", "-c", "2", "-P", "prefork", "-Q", QUEUE,
            "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat")], {}),
        ("dramatiq", "p1-t2", "results_dramatiq", [dramatiq], {}),
        ("dramatiq", "p1-t2-prefetch64", "results_dramatiq", [dramatiq], {"dramatiq_queue_prefetch": "64"}),
        ("alsek", "thread-t2", "results_alsek",
         [[*alsek, "thread-pool", tasks, "--n_threads", "2", "--n_processes", "1", *alsek_opts]],
         {"ALSEK_BENCH_MECHANISM": "thread"}),
        ("alsek", "process-p2", "results_alsek",
         [[*alsek, "process-pool", tasks, "--n_processes", "2", *alsek_opts]],
         {"ALSEK_BENCH_MECHANISM": "process"}),
    ]


def clear(client: Any) -> None:
    for pattern in KEY_PATTERNS:
        keys = list(client.scan_iter(match=pattern, count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=5000)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--alsek-python", default=str(ROOT / ".venv" / "bin" / "python"))
    parser.add_argument("--only", default="", help="comma list of peers (default: all)")
    parser.add_argument("--timeout", type=float, default=180, help="per enqueue and per drain, s")
    parser.add_argument("--json", dest="json_path", default=None)
    args = parser.parse_args()
    os.environ["BENCH_REDIS_URL"] = args.redis_url  # read by the harness's common.py on import
    sys.path.insert(0, str(PEERS_DIR))
    import run as harness  # the peer harness's run.py

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(PEERS_DIR), str(TASKS_DIR)]), PYTHONUNBUFFERED="1")
    only = {p for p in args.only.split(",") if p}
    logdir = tempfile.mkdtemp(prefix="peers-results-")
    found: list[dict[str, Any]] = []
    print(f"{'peer':<10}{'mode':<20}{'enqueue/s':>10}{'drain/s':>10}{'steady/s':>10}  (N={args.n}, results on)")
    for peer, mode, module, cmds, extra in rows(args.redis_url, args.alsek_python):
        if only and peer not in only:
            continue
        python = args.alsek_python if peer == "alsek" else sys.executable
        row: dict[str, Any] = {"peer": peer, "mode": mode, "cmds": cmds, "env": extra}
        try:
            clear(harness.R)
            secs = harness.enqueue(module, "single", args.n, args.timeout, python, dict(env, **extra))
            row["enqueue_per_s"] = args.n / secs
            row.update(harness.drain(cmds, args.n, args.timeout, os.path.join(logdir, f"{peer}-{mode}.log"),
                                     dict(env, **extra)))
        except Exception as exc:  # record it and go on, as the harness does
            row["status"] = f"ERROR {type(exc).__name__}: {str(exc)[:300]}"
        found.append(row)
        drain, steady = row.get("drain_per_s"), row.get("steady_per_s")
        print(f"{peer:<10}{mode:<20}{harness.fmt(row.get('enqueue_per_s')):>10}{harness.fmt(drain):>10}"
              f"{harness.fmt(steady):>10}  {'' if row.get('status') == 'ok' else row.get('status')}", flush=True)
    clear(harness.R)
    ours = [r for r in found if r["peer"] == "alsek" and "drain_per_s" in r]
    theirs = [r for r in found if r["peer"] != "alsek" and "drain_per_s" in r]
    if ours and theirs:
        best, peer = (max(rs, key=lambda r: r["drain_per_s"]) for rs in (ours, theirs))
        print(f"alsek {best['mode']} / fastest peer ({peer['peer']} {peer['mode']}): "
              f"{best['drain_per_s'] / peer['drain_per_s']:.2f}x")
        for r in ours:
            print(f"  alsek {r['mode']}: {r['drain_per_s'] / peer['drain_per_s']:.2f}x")
    print("worker logs:", logdir)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({"n": args.n, "rows": found}, indent=1))


if __name__ == "__main__":
    main()
