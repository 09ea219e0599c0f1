"""``alsek thread-pool TARGET`` and ``alsek process-pool TARGET``."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from typing import Any, TypeVar

import click

from alsek_cli.options import backend_option, log_level_option, one_line
from alsek_cli.targets import find_tasks
from alsek_core.consumer import DEFAULT_LEASE_MS
from alsek_core.settings import ENV_BACKEND
from alsek_core.worker.base import DEFAULT_GRACE_MS, DEFAULT_SLOT_WAIT_MS
from alsek_core.worker.mp import multiprocessing_module

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger(__name__)


def _queues(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [q.strip() for q in value.split(",") if q.strip()] or None


def pool_options(function: F) -> F:
    """Options both pools take, in the order ``--help`` shows them."""
    for option in reversed([
        click.argument("target"),
        click.option("-qu", "--queues", default=None, metavar="Q1,Q2",
                     help="Queues to consume, comma separated, in this order "
                          "(default: the tasks' queues, alphabetically)."),
        click.option("--n_processes", type=click.IntRange(min=1), default=None,
                     help="Most processes at once (default: number of CPUs)."),
        click.option("--slot_wait_interval", type=click.IntRange(min=1), default=DEFAULT_SLOT_WAIT_MS,
                     show_default=True, help="ms to wait for a free slot when the pool is full."),
        click.option("--prune_interval", type=click.IntRange(min=1), default=100, show_default=True,
                     help="ms between the supervisor's rounds (timeouts, scaling, restarts)."),
        click.option("--lease_ms", type=click.IntRange(min=100), default=DEFAULT_LEASE_MS, show_default=True,
                     help="Lease of a claimed message, renewed while it runs; after a crash "
                          "its messages run again once this has passed."),
        click.option("--grace_period", type=click.IntRange(min=0), default=DEFAULT_GRACE_MS, show_default=True,
                     help="ms that running tasks get to finish after SIGTERM/SIGINT before "
                          "they are released to the queue."),
        backend_option,
        log_level_option("info"),
    ]):
        function = option(function)
    return function


def _run(make_pool: Callable[[], Any]) -> None:
    """Build the pool (importing TARGET may take a while) and run it; a SIGTERM
    or SIGINT meanwhile means a clean exit, not a death by signal."""
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
    pool.run()


def _load(target: str, backend: str | None) -> list[Any]:
    if backend:
        os.environ[ENV_BACKEND] = backend  # before TARGET builds its Broker() from config
    multiprocessing_module()  # a bad ALSEK_MULTIPROCESSING_BACKEND fails now, in one line
    tasks = find_tasks(target)
    log.info("found %d task(s) in %s: %s", len(tasks), target, ", ".join(sorted(t.name for t in tasks)))
    return tasks


@click.command("thread-pool")
@pool_options
@click.option("--n_threads", type=click.IntRange(min=1), default=8, show_default=True,
              help="Threads per process group.")
@click.option("--complete_only_on_thread_exit", is_flag=True,
              help="Run each message in a thread of its own; its slot frees when the thread exits.")
def thread_pool(target: str, queues: str | None, n_processes: int | None, slot_wait_interval: int,
                prune_interval: int, lease_ms: int, grace_period: int, backend: str | None,
                n_threads: int, complete_only_on_thread_exit: bool) -> None:
    """Run TARGET's tasks in process groups of threads (n_threads x n_processes).

    TARGET is a module file, a dotted module path, or a directory to scan."""
    from alsek_core.worker import ThreadWorkerPool

    _run(lambda: ThreadWorkerPool(
        _load(target, backend), n_threads=n_threads, n_processes=n_processes, queues=_queues(queues),
        slot_wait_interval=slot_wait_interval, complete_only_on_thread_exit=complete_only_on_thread_exit,
        prune_interval=prune_interval, lease_ms=lease_ms, grace_period=grace_period,
    ))


@click.command("process-pool")
@pool_options
def process_pool(target: str, queues: str | None, n_processes: int | None, slot_wait_interval: int,
                 prune_interval: int, lease_ms: int, grace_period: int, backend: str | None) -> None:
    """Run TARGET's tasks each in a process of its own (up to n_processes at once).

    TARGET is a module file, a dotted module path, or a directory to scan."""
    from alsek_core.worker import ProcessWorkerPool

    _run(lambda: ProcessWorkerPool(
        _load(target, backend), n_processes=n_processes, queues=_queues(queues),
        prune_interval=prune_interval, slot_wait_interval=slot_wait_interval,
        lease_ms=lease_ms, grace_period=grace_period,
    ))
