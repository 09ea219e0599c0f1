"""``alsek demo``: the whole life of a few thousand tasks on the embedded
default, in a scratch store that is deleted afterwards.

The mix is what a real job queue sees: quick I/O-ish tasks, CPU-ish ones,
chains of callbacks, tasks that fail once and succeed on retry, tasks that
fail for good (they end in the dead letters), and delayed ones. A
ThreadWorkerPool runs them as they are submitted while a progress bar
follows the queues; the summary comes from the stored results and the dead
letters. The queue wait of a message is from when it was due (submitted, or
its delay or retry backoff over) to when a worker started it.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import statistics
import tempfile
import time
import uuid as uuid_lib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from alsek_cli.options import backend_option, log_level_option, option
from alsek_core.backoff import ConstantBackoff
from alsek_core.broker import Broker
from alsek_core.clock import now_ms
from alsek_core.config import backend_from_url
from alsek_core.message import Message
from alsek_core.redact import redact_url
from alsek_core.result import ResultStore
from alsek_core.status import StatusTracker
from alsek_core.task import Task, task
from alsek_core.worker import ThreadWorkerPool
from alsek_core.worker.mp import context

if TYPE_CHECKING:
    from rich.progress import Progress
    from rich.table import Table

QUEUES = ("default", "reports")
RETRY_BACKOFF = ConstantBackoff(constant=200, floor=0, ceiling=200)


class TransientError(ConnectionError):
    """What the flaky task raises on its first attempt."""


def _ran(message: Message, value: Any) -> dict[str, Any]:
    """Each task reports when it started relative to when it was due."""
    return {"value": value, "waited_ms": max(0, now_ms() - message.ready_at), "retries": message.retries}


def make_tasks(broker: Broker, results: ResultStore, tracker: StatusTracker) -> dict[str, Task]:
    common: dict[str, Any] = {"result_store": results, "status_tracker": tracker, "mechanism": "thread"}

    @task(broker, queue="default", **common)
    def resize(width: int, message: Message) -> Any:
        time.sleep(random.uniform(0.001, 0.004))  # an I/O-bound step
        return _ran(message, [width // 2, width // 4])

    @task(broker, queue="default", **common)
    def checksum(size: int, message: Message) -> Any:
        return _ran(message, hashlib.sha256(b"x" * size).hexdigest()[:12])

    @task(broker, queue="default", **common)
    def notify(message: Message) -> Any:
        return _ran(message, f"notified about {message.previous_result['value']}")

    @task(broker, queue="default", backoff=RETRY_BACKOFF, **common)
    def flaky(n: int, message: Message) -> Any:
        if message.retries == 0:
            raise TransientError("upstream hiccup (fails once, then succeeds)")
        return _ran(message, n)

    @task(broker, queue="default", backoff=RETRY_BACKOFF, max_retries=1, **common)
    def doomed(n: int) -> Any:
        raise ValueError(f"record {n} is malformed (fails every time)")

    @task(broker, queue="reports", **common)
    def report(day: int, message: Message) -> Any:
        return _ran(message, f"report for day {day}")

    return {t.name: t for t in (resize, checksum, notify, flaky, doomed, report)}


@dataclass
class Submitted:
    messages: list[Message] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, *messages: Message) -> None:
        self.messages.extend(messages)
        self.kinds[kind] = self.kinds.get(kind, 0) + 1


def submit_mix(tasks: dict[str, Task], n: int, progress: Progress) -> Submitted:
    rng = random.Random(7)
    out = Submitted()
    bar = progress.add_task("submitting", total=n)
    for i in range(n):
        roll = rng.random()
        if roll < 0.50:
            out.add("resize", tasks["resize"].generate(args=(rng.randint(200, 4000),)))
        elif roll < 0.65:
            callback = tasks["notify"].generate(submit=False)
            out.add("resize + callback", tasks["resize"].generate(args=(1024,), callback=callback), callback)
        elif roll < 0.83:
            out.add("checksum", tasks["checksum"].generate(args=(rng.randint(1_000, 50_000),)))
        elif roll < 0.91:
            out.add("flaky (retried)", tasks["flaky"].generate(args=(i,)))
        elif roll < 0.93:
            out.add("doomed (fails)", tasks["doomed"].generate(args=(i,)))
        else:
            out.add("delayed", tasks["report"].generate(args=(i,), delay=rng.randint(500, 2500)))
        progress.advance(bar)
    return out


def _close(store: Any) -> None:
    close = getattr(store, "close", None)
    if close is not None:
        close()


def live(broker: Broker) -> int:
    total = 0
    for queue in QUEUES:
        counts = broker.counts(queue)
        total += counts.ready + counts.delayed + counts.in_flight
    return total


def summarize(submitted: Submitted, results: ResultStore, broker: Broker, elapsed: float) -> Table:
    from rich.table import Table

    waits, retried, succeeded = [], 0, 0
    for message in submitted.messages:
        try:
            record = results.get(message, keep=True)
        except KeyError:
            continue
        succeeded += 1
        waits.append(record["waited_ms"])
        retried += record["retries"] > 0
    failed = sum(broker.counts(q).dead for q in QUEUES)
    done = succeeded + failed
    cuts = statistics.quantiles(waits, n=100) if len(waits) >= 2 else [0.0] * 99
    table = Table(title="alsek demo: summary", show_header=False)
    table.add_column(justify="left")
    table.add_column(justify="right")
    for kind, count in sorted(submitted.kinds.items()):
        table.add_row(f"submitted: {kind}", str(count))
    table.add_row("messages run (incl. callbacks)", str(len(submitted.messages)))
    table.add_row("[green]succeeded", str(succeeded))
    table.add_row("[yellow]succeeded after a retry", str(retried))
    table.add_row("[red]failed (dead letters)", str(failed))
    table.add_row("lost", str(len(submitted.messages) - done))
    table.add_row("wall time", f"{elapsed:.2f} s")
    table.add_row("throughput (first submit to last done)", f"{done / elapsed:,.0f} messages/s")
    table.add_row("queue wait p50 (due -> started)", f"{cuts[49]:.0f} ms")
    table.add_row("queue wait p99", f"{cuts[98]:.0f} ms")
    return table


@click.command()
@click.option("--tasks", "n", type=click.IntRange(min=1), default=3000, show_default=True,
              help="How many tasks to submit.")
@option("--n_threads", type=click.IntRange(min=1), default=8, show_default=True)
@option("--n_processes", type=click.IntRange(min=1), default=2, show_default=True)
@backend_option
@log_level_option("critical")
def demo(n: int, n_threads: int, n_processes: int, backend: str | None) -> None:
    """Submit a realistic mix of tasks, run them, and summarize (no server needed).

    Uses a scratch store (a temporary directory, or a namespace of its own on
    --backend) that is removed afterwards, so it can be run again and again."""
    # rich is imported here: a worker pool's start-up need not pay for it.
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    scratch = None if backend else tempfile.mkdtemp(prefix="alsek-demo-")
    url = backend or f"sqlite:///{scratch}"
    store = backend_from_url(url, namespace=f"demo-{uuid_lib.uuid4().hex[:8]}")
    broker, results, tracker = Broker(store), ResultStore(store), StatusTracker(store)
    console = Console()
    try:
        store.exists("demo-probe")
        tasks = make_tasks(broker, results, tracker)
        console.print(f"[bold]alsek demo[/]: {n} tasks on {redact_url(url)} "
                      f"(ThreadWorkerPool: {n_threads} threads x up to {n_processes} processes)")
        columns = (TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        pool = ThreadWorkerPool(list(tasks.values()), n_threads=n_threads, n_processes=n_processes,
                                queues=QUEUES, backoff=None, grace_period=5_000)
        runner = context().Process(target=pool.run, name="alsek-demo-pool")
        _close(store)  # the pool forks: it must not inherit our connection
        started = time.perf_counter()
        runner.start()
        try:
            with Progress(*columns, console=console) as progress:
                submitted = submit_mix(tasks, n, progress)
                bar = progress.add_task("running", total=len(submitted.messages))
                while (remaining := live(broker)) > 0:
                    progress.update(bar, completed=len(submitted.messages) - remaining)
                    if not runner.is_alive():
                        raise click.ClickException(f"the worker pool exited with code {runner.exitcode}")
                    time.sleep(0.1)
                progress.update(bar, completed=len(submitted.messages))
                elapsed = time.perf_counter() - started
        finally:
            runner.terminate()
            runner.join()
        console.print(summarize(submitted, results, broker, elapsed))
    finally:
        if scratch is None:
            for queue in QUEUES:
                broker.purge(queue)
            broker.purge_dead()
            for name in list(store.scan()):
                store.delete(name, missing_ok=True)
        _close(store)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
