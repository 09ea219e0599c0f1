"""``alsek scheduler TARGET``: the process that fires TARGET's trigger tasks.

Worker pools import the same modules but fire nothing, so a schedule runs
exactly where this command runs. Run it on as many hosts as you like for
availability: each fire takes a lock on the backend, so it is submitted once.
"""

from __future__ import annotations

import logging
import os
import threading

import click

from alsek_cli.options import backend_option, log_level_option, one_line
from alsek_cli.targets import TargetError, find_tasks
from alsek_core.settings import ENV_BACKEND
from alsek_core.task import TriggerTask
from alsek_core.worker.base import install_signal_handlers

log = logging.getLogger(__name__)


def trigger_tasks(target: str) -> list[TriggerTask]:
    """TARGET's trigger tasks; two of one name would share (and split) their fires."""
    tasks = find_tasks(target)
    triggers = [t for t in tasks if isinstance(t, TriggerTask)]
    if not triggers:
        names = ", ".join(sorted(t.name for t in tasks))
        raise TargetError(f"no trigger tasks in {target!r} (its tasks, {names}, have no trigger)")
    by_name: dict[str, TriggerTask] = {}
    for trigger in triggers:
        if by_name.setdefault(trigger.name, trigger) is not trigger:
            raise TargetError(f"two different trigger tasks are named {trigger.name!r}; names must be unique")
    return triggers


@click.command("scheduler")
@click.argument("target")
@backend_option
@log_level_option("info")
def scheduler(target: str, backend: str | None) -> None:
    """Fire TARGET's trigger tasks (cron, interval, date) until SIGTERM/SIGINT.

    TARGET is a module file, a dotted module path, or a directory to scan.
    Several schedulers on one backend submit each fire once."""
    if not log.isEnabledFor(logging.DEBUG):
        logging.getLogger("apscheduler").setLevel(logging.WARNING)  # two lines a fire: for debugging
    stop = threading.Event()
    install_signal_handlers(lambda number, frame: stop.set())  # on a thread: see its docstring
    if backend:
        os.environ[ENV_BACKEND] = backend  # before TARGET builds its Broker() from config
    triggers = trigger_tasks(target)
    if stop.is_set():
        log.info("stopped before the scheduler started")
        return
    for trigger in triggers:
        try:
            trigger.broker.queues()  # fail now, in one line, rather than at every fire
        except Exception as exc:
            raise click.ClickException(
                f"the backend does not answer ({trigger.broker.backend!r}): {one_line(exc)}"
            ) from exc
    try:
        for trigger in triggers:
            if trigger.generated:
                log.info("%s: already scheduled by its module", trigger.name)
            else:
                trigger.generate()
        log.info("scheduling %d trigger task(s): %s", len(triggers), ", ".join(t.name for t in triggers))
        stop.wait()
    finally:
        for trigger in triggers:
            trigger.shutdown(wait=True)  # a fire under way is submitted, not cut short
    log.info("scheduler stopped")
