#!/usr/bin/env python3
"""``async def`` tasks on Redis: alsek against taskiq and arq, in one run.

N tasks, each ``await asyncio.sleep(S)`` then the peer harness's
``common.mark_done`` (one Redis INCR, the same body for every peer), are
enqueued with no worker running, then drained by 2 worker processes running
up to C coroutines each:

  alsek   ``alsek process-pool --n_processes 2 --n-async C`` (bulk submit)
  taskiq  ``taskiq worker --workers 2 --max-async-tasks C`` (taskiq-redis's
          RedisStreamBroker, the one that acknowledges messages)
  arq     two ``arq`` processes with ``max_jobs = C`` (arq runs one process
          per CLI call), arq's defaults otherwise

Wall time is from worker spawn to the N-th completion, so it includes start-
up (the time the first task finished is printed too); the ideal is
N * S / (2 * C), as if every slot were always busy. The workers' CPU time per
task (start-up included, read when the last task is done) says what wall
time cannot on a loaded machine. Logging
at WARNING, results off.

Usage: python bench/async_sleep.py [N] [--sleep S] [--n-async C]
          [--taskiq-python PATH] [--arq-python PATH] [--peers alsek,taskiq,arq]
taskiq needs ``taskiq taskiq-redis`` in its venv, arq ``arq`` in one of its
own (arq pins redis-py < 6), as ../shared/bench/peers/run.sh sets them up.
Redis DB 13 (``BENCH_REDIS_URL``); only the keys of this run are removed.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT.parents[1] / "shared" / "bench" / "peers"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
DONE_KEY, FIRST_KEY = "bench:done", "bench:first"  # common.mark_done's keys
N_PROCESSES = 2

ALSEK = """
import asyncio
from alsek_core.broker import Broker
from alsek_core.config import backend_from_url
from alsek_core.task import task
from common import mark_done

broker = Broker(backend_from_url({url!r}))

@task(broker, queue="bench")
async def nap():
    await asyncio.sleep({sleep})
    mark_done()

def enqueue(n):
    nap.generate_many([()] * n)
"""

TASKIQ = """
import asyncio
from taskiq_redis import RedisStreamBroker
from common import REDIS_URL, mark_done

broker = RedisStreamBroker(url=REDIS_URL, queue_name={queue!r})

@broker.task(task_name="bench.nap")
async def nap():
    await asyncio.sleep({sleep})
    mark_done()

async def _enqueue(n):
    await broker.startup()  # creates the consumer group the workers read
    for _ in range(n):
        await nap.kiq()
    await broker.shutdown()

def enqueue(n):
    asyncio.run(_enqueue(n))
"""

ARQ = """
import asyncio
from arq import create_pool
from arq.connections import RedisSettings
from common import REDIS_URL, mark_done

async def nap(ctx):
    await asyncio.sleep({sleep})
    mark_done()

class WorkerSettings:
    functions = [nap]
    redis_settings = RedisSettings.from_dsn(REDIS_URL)
    queue_name = {queue!r}
    max_jobs = {n_async}
    keep_result = 0

LOG_CONFIG = {{"version": 1, "disable_existing_loggers": False,
              "loggers": {{"arq": {{"level": "WARNING"}}}}}}

async def _enqueue(n):
    pool = await create_pool(WorkerSettings.redis_settings, default_queue_name={queue!r})
    for _ in range(n):
        await pool.enqueue_job("nap")
    await pool.aclose()

def enqueue(n):
    asyncio.run(_enqueue(n))
"""


def redis_url_with_namespace(namespace: str) -> str:
    return f"{REDIS_URL}?namespace={namespace}"


def run_peer(name: str, python: str, module_text: str, workers: list[list[str]], n: int,
             scratch: Path, client: redis.Redis, timeout: float) -> tuple[float, float, float] | None:
    """Enqueue ``n``, spawn ``workers``; seconds from spawn to the first and
    to the n-th completion, and the CPU seconds the workers used in all."""
    module = f"bench_async_{name}"
    (scratch / f"{module}.py").write_text(module_text)
    env = {**os.environ, "BENCH_REDIS_URL": REDIS_URL,
           "PYTHONPATH": os.pathsep.join([str(scratch), str(PEERS), str(ROOT)])}
    client.delete(DONE_KEY, FIRST_KEY)
    subprocess.run([python, "-c", f"import {module}; {module}.enqueue({n})"], env=env, check=True, cwd=scratch)
    started, started_at = time.perf_counter(), time.time()
    procs = [subprocess.Popen([arg.replace("MODULE", module) for arg in argv], env=env, cwd=scratch,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
             for argv in workers]
    elapsed: tuple[float, float, float] | None = None
    try:
        while time.perf_counter() - started < timeout:
            if int(client.get(DONE_KEY) or 0) >= n:
                first = float(client.get(FIRST_KEY) or started_at) - started_at
                cpu = sum(cpu_of_session(p.pid) for p in procs)
                elapsed = first, time.perf_counter() - started, cpu
                break
            if any(p.poll() is not None for p in procs):
                print(f"  {name}: a worker exited early", file=sys.stderr)
                break
            time.sleep(0.01)
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    return elapsed


def cpu_of_session(session: int) -> float:
    """CPU seconds used so far by the live processes of ``session`` (a worker
    command and every process it started): less at the mercy of a loaded
    machine than wall time."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[3]) == session:  # fields[0] is the state: session is stat's 6th field
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def remove_keys(client: redis.Redis, *patterns: str) -> None:
    for pattern in patterns:
        keys = list(client.scan_iter(match=pattern, count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i:i + 500])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n", type=int, nargs="?", default=10_000)
    parser.add_argument("--sleep", type=float, default=0.1)
    parser.add_argument("--n-async", type=int, default=100)
    parser.add_argument("--taskiq-python", default="/tmp/peers-venv/bin/python")
    parser.add_argument("--arq-python", default="/tmp/peers-venv-arq/bin/python")
    parser.add_argument("--peers", default="alsek,taskiq,arq")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    n, sleep, c = args.n, args.sleep, args.n_async
    run_id = uuid.uuid4().hex[:8]
    namespace = f"bench-async-{run_id}"
    taskiq_queue, arq_queue = f"bench-taskiq-{run_id}", f"bench-arq-{run_id}"
    client = redis.Redis.from_url(REDIS_URL)
    ideal = n * sleep / (N_PROCESSES * c)
    plans = {
        "alsek": (sys.executable, ALSEK.format(url=redis_url_with_namespace(namespace), sleep=sleep),
                  [[sys.executable, "-m", "alsek_cli", "process-pool", "MODULE.py", "--queues", "bench",
                    "--n_processes", str(N_PROCESSES), "--n-async", str(c), "--log-level", "warning"]]),
        "taskiq": (args.taskiq_python, TASKIQ.format(queue=taskiq_queue, sleep=sleep),
                   [[str(Path(args.taskiq_python).with_name("taskiq")), "worker", "MODULE:broker",
                     "--workers", str(N_PROCESSES), "--max-async-tasks", str(c), "--log-level", "WARNING"]]),
        "arq": (args.arq_python, ARQ.format(queue=arq_queue, sleep=sleep, n_async=c),
                [[str(Path(args.arq_python).with_name("arq")), "MODULE.WorkerSettings",
                  "--custom-log-dict", "MODULE.LOG_CONFIG"]] * N_PROCESSES),
    }
    print(f"N={n} sleep={sleep}s processes={N_PROCESSES} concurrency={c} per process; "
          f"ideal {ideal:.2f}s", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-async-") as scratch:
        try:
            for name in args.peers.split(","):
                python, text, workers = plans[name]
                timing = run_peer(name, python, text, workers, n, Path(scratch), client, args.timeout)
                if timing is None:
                    print(f"{name:7s} did not finish within {args.timeout:.0f}s", flush=True)
                    continue
                first, elapsed, cpu = timing
                print(f"{name:7s} {elapsed:6.2f}s  {n / elapsed:7.0f} tasks/s  {elapsed / ideal:5.2f}x ideal  "
                      f"(first task done at {first:.2f}s; workers' CPU {1000 * cpu / n:.2f} ms/task)", flush=True)
        finally:
            remove_keys(client, f"*{namespace}*", f"*{taskiq_queue}*", f"*{arq_queue}*", "arq:*", DONE_KEY, FIRST_KEY)


if __name__ == "__main__":
    main()
