"""``alsek thread-pool TARGET`` and ``alsek process-pool TARGET``."""

from __future__ import annotations

import logging
import os
import signal
import tempfile
from collections.abc import Callable
from typing import Any, TypeVar

import click

from alsek_cli.options import backend_option, log_level_option, one_line, option
from alsek_cli.targets import find_tasks
from alsek_core.concurrency import split_concurrency
from alsek_core.consumer import DEFAULT_LEASE_MS
from alsek_core.settings import ENV_BACKEND
from alsek_core.worker.aio import DEFAULT_N_ASYNC
from alsek_core.worker.base import DEFAULT_GRACE_MS, DEFAULT_SLOT_WAIT_MS
from alsek_core.worker.mp import multiprocessing_module
from alsek_core.worker.runtime import DEFAULT_PRUNE_MS
from alsek_core.worker.thread import DEFAULT_N_THREADS

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger(__name__)


def _queues(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [q.strip() for q in value.split(",") if q.strip()] or None


def pool_options(function: F) -> F:
    """Options both pools take, in the order ``--help`` shows them. The last
    five are the pools' own ``PoolOptions`` (alsek_core.worker.options), with
    the same defaults, and reach the pool as they are (``**options``)."""
    for decorate in reversed([
        click.argument("target"),
        option("-qu", "--queues", default=None, metavar="Q1,Q2",
               help="Queues to consume, comma separated, in this order "
                    "(default: the tasks' queues, alphabetically)."),
        option("--n_processes", type=click.IntRange(min=1), default=None,
               help="Most processes at once (default: number of CPUs)."),
        option("--concurrency", type=click.IntRange(min=1), default=None, metavar="N",
               help="Run up to N messages at once, split for you (thread-pool: processes up to "
                    "the CPU count x enough threads; process-pool: N processes)."),
        option("--slot_wait_interval", type=click.IntRange(min=1), default=DEFAULT_SLOT_WAIT_MS,
               show_default=True, help="ms to wait for a free slot when the pool is full."),
        option("--prune_interval", type=click.IntRange(min=1), default=DEFAULT_PRUNE_MS, show_default=True,
               help="ms between the supervisor's rounds (timeouts, scaling, restarts)."),
        option("--lease_ms", type=click.IntRange(min=100), default=DEFAULT_LEASE_MS, show_default=True,
               help="Lease of a claimed message, renewed while it runs; after a crash "
                    "its messages run again once this has passed."),
        option("--grace_period", type=click.IntRange(min=0), default=DEFAULT_GRACE_MS, show_default=True,
               help="ms that running tasks get to finish after SIGTERM/SIGINT before "
                    "they are released to the queue."),
        option("--n_async", type=click.IntRange(min=1), default=DEFAULT_N_ASYNC, show_default=True,
               help="'async def' tasks each worker process runs at once, on its event loop."),
        option("--metrics-port", "metrics_port", type=click.IntRange(0, 65535), default=None,
               help="Serve per-task Prometheus metrics of this pool on this port (0: any free port, "
                    "logged); needs the ops extra."),
        option("--metrics-host", "metrics_host", default="127.0.0.1", show_default=True,
               help="Address the metrics listen on (0.0.0.0 for every interface)."),
        backend_option,
        log_level_option("info"),
    ]):
        function = decorate(function)
    return function


def _run(make_pool: Callable[[], Any], metrics_port: int | None, metrics_host: str) -> None:
    """Build the pool (importing TARGET may take a while) and run it; a SIGTERM
    or SIGINT meanwhile means a clean exit, not a death by signal. With a
    metrics port, the pool's processes count into a directory of its own,
    named before anything imports prometheus_client (see alsek_ops.pool_metrics)."""
    if metrics_port is not None:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="alsek-metrics-")
    early: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, frame: early.append(number))
    pool = make_pool()
    if early:
        log.info("stopped before the pool started")
        return
    try:
        pool.broker.queues()  # fail now, in one line, rather than in every worker process
    except Exception as exc:
        raise click.ClickException(f"the backend does not answer ({pool.broker.backend!r}): {one_line(exc)}") from exc
    if metrics_port is None:
        pool.run()
        return
    from alsek_ops.pool_metrics import serving  # only now: it imports prometheus_client

    with serving(pool, metrics_host, metrics_port):
        pool.run()


def _load(target: str, backend: str | None, queues: list[str] | None) -> list[Any]:
    if backend:
        os.environ[ENV_BACKEND] = backend  # before TARGET builds its Broker() from config
    multiprocessing_module()  # a bad ALSEK_MULTIPROCESSING_BACKEND fails now, in one line
    tasks = find_tasks(target)
    log.info("found %d task(s) in %s: %s", len(tasks), target, ", ".join(sorted(t.name for t in tasks)))
    used = {t.queue for t in tasks}
    for queue in queues or ():
        if queue not in used:
            log.warning("no task found in %s uses queue %r: its messages will wait here with no task "
                        "to run them (a typo in --queues?)", target, queue)
    return tasks


def _only_one(concurrency: int | None, **explicit: int | None) -> None:
    given = [f"--{name.replace('_', '-')}" for name, value in explicit.items() if value is not None]
    if concurrency is not None and given:
        raise click.UsageError(f"--concurrency sets {' and '.join(given)} itself; give one or the other")


@click.command("thread-pool")
@pool_options
@option("--n_threads", type=click.IntRange(min=1), default=None,
        help=f"Threads per process group (default: {DEFAULT_N_THREADS}).")
@option("--complete_only_on_thread_exit", is_flag=True,
        help="Run each message in a thread of its own; its slot frees when the thread exits.")
def thread_pool(target: str, queues: str | None, n_processes: int | None, concurrency: int | None,
                backend: str | None, n_threads: int | None, complete_only_on_thread_exit: bool,
                metrics_port: int | None, metrics_host: str, **options: int) -> None:
    """Run TARGET's tasks in process groups of threads (n_threads x n_processes).

    TARGET is a module file, a dotted module path, or a directory to scan."""
    from alsek_core.worker import ThreadWorkerPool

    _only_one(concurrency, n_processes=n_processes, n_threads=n_threads)
    if concurrency is not None:
        n_processes, n_threads = split_concurrency(concurrency)
        log.info("--concurrency %d: %d process(es) x %d thread(s)", concurrency, n_processes, n_threads)
    _run(lambda: ThreadWorkerPool(
        _load(target, backend, _queues(queues)), n_threads=n_threads or DEFAULT_N_THREADS,
        n_processes=n_processes, queues=_queues(queues),
        complete_only_on_thread_exit=complete_only_on_thread_exit, **options,
    ), metrics_port, metrics_host)


@click.command("process-pool")
@pool_options
def process_pool(target: str, queues: str | None, n_processes: int | None, concurrency: int | None,
                 backend: str | None, metrics_port: int | None, metrics_host: str, **options: int) -> None:
    """Run TARGET's tasks each in a process of its own (up to n_processes at once).

    TARGET is a module file, a dotted module path, or a directory to scan."""
    from alsek_core.worker import ProcessWorkerPool

    _only_one(concurrency, n_processes=n_processes)
    _run(lambda: ProcessWorkerPool(
        _load(target, backend, _queues(queues)), n_processes=concurrency or n_processes, queues=_queues(queues),
        **options,
    ), metrics_port, metrics_host)
