"""A program that embeds a worker pool next to threads of its own: producers
that keep submitting over open Redis and PostgreSQL connections while the
main thread starts and stops a pool again and again.

``python fork_host_app.py REDIS_URL POSTGRES_URL ROUNDS`` prints one line,
``rounds=N produced=N errors=N``, and the producers' errors after it."""

from __future__ import annotations

import sys
import threading
import traceback

from alsek_core.broker import Broker
from alsek_core.config import backend_from_url
from alsek_core.message import Message
from alsek_core.result import ResultStore
from alsek_core.task import Task, task
from alsek_core.worker import ThreadWorkerPool

QUEUE = "fork-host"


def make_tasks(url: str, name: str) -> tuple[Task, Task, ResultStore]:
    """The task a pool runs, and one the producers submit (to a queue of its
    own, so the pool's work never waits behind theirs), on one backend object:
    the producers' connections are the pool's."""
    backend = backend_from_url(url)
    broker = Broker(backend)
    results = ResultStore(backend)

    def echo(i: int) -> int:
        return i

    def produced(i: int) -> int:
        return i

    echo.__name__ = echo.__qualname__ = name
    produced.__name__ = produced.__qualname__ = f"{name}_produced"
    return (task(broker, queue=QUEUE, result_store=results)(echo),
            task(broker, queue=f"{QUEUE}-produced")(produced), results)


def stop_when_done(pool: ThreadWorkerPool, probe: Message, results: ResultStore) -> None:
    while not results.exists(probe):
        if pool.stop_event.wait(0.02):
            return
    pool.stop()


def main() -> None:
    redis_url, postgres_url, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    made = [make_tasks(redis_url, "echo_redis"), make_tasks(postgres_url, "echo_postgres")]
    stop = threading.Event()
    errors: list[str] = []
    produced = [0]

    def produce(echo: Task) -> None:
        while not stop.is_set():
            try:
                echo.generate(args=(produced[0],))
                produced[0] += 1
            except Exception:
                errors.append(traceback.format_exc())
            stop.wait(0.01)  # steady, not flooding: what is submitted is wiped after

    producers = [threading.Thread(target=produce, args=(p,), daemon=True) for _, p, _ in made for _ in range(2)]
    for producer in producers:
        producer.start()
    done = 0
    for i in range(rounds):
        echo, _, results = made[i % 2]
        pool = ThreadWorkerPool([echo], n_threads=2, n_processes=1, lease_ms=2_000, grace_period=2_000)
        probe = echo.generate(args=(-1,))
        watcher = threading.Thread(target=stop_when_done, args=(pool, probe, results), daemon=True)
        watcher.start()
        pool.run()
        watcher.join()
        done += 1
    stop.set()
    for producer in producers:
        producer.join()
    print(f"rounds={done} produced={produced[0]} errors={len(errors)}", flush=True)
    for error in errors[:3]:
        print(error, flush=True)


if __name__ == "__main__":
    main()
