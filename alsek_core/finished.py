"""What is told of each settled outcome, in one place: one log line (the
traceback with a failure), a job-history entry (for an end: succeeded,
failed or dead; see :mod:`alsek_core.history`), and the middleware's
``after_outcome`` (metrics, tracing)."""

from __future__ import annotations

import logging
import time

from alsek_core import middleware
from alsek_core.broker import Broker
from alsek_core.message import Message
from alsek_core.middleware import Outcome

log = logging.getLogger(__name__)


def told(broker: Broker, message: Message, state: str, started: float | None, attempt: int,
         exc: BaseException | None = None) -> None:
    """Tell of ``message``'s outcome ``state`` (see ``middleware.OUTCOMES``),
    settled through ``broker`` (or handed off to its batch, to be applied by
    its flush: see :mod:`alsek_core.execution`); ``started`` (seconds since
    the epoch) is when it started running, None if it never ran."""
    dead_lettered = state in ("failed", "dead") and broker.dead_letter
    outcome = Outcome(state, started, time.time(), attempt, exc, dead_lettered)
    _log(message, outcome)
    if state != "retried":
        broker.record_finished(message, outcome)
    middleware.after_outcome(message, outcome)


def _log(message: Message, outcome: Outcome) -> None:
    level = logging.INFO if outcome.state in ("succeeded", "retried", "revoked") else logging.ERROR
    if not log.isEnabledFor(level):  # a busy pool logging warnings only: format nothing
        return
    took = "" if outcome.duration is None else f" in {outcome.duration:.3f} s"
    where = f"task {message.task_name!r}, queue {message.queue!r}, uuid {message.uuid}, attempt {outcome.attempt}"
    exc = outcome.exception
    if outcome.state == "succeeded":
        log.info("succeeded%s: %s", took, where)
    elif outcome.state == "revoked":
        log.info("revoked while running%s: %s", took, where)
    elif outcome.state == "retried":
        assert exc is not None
        log.info("retrying after %s%s: %s: %s", type(exc).__name__, took, where, exc)
    else:
        text = "" if exc is None else f" {type(exc).__name__}: {exc}"
        log.error("%s%s: %s;%s", outcome.state, took, where, text,
                  exc_info=None if exc is None else (type(exc), exc, exc.__traceback__))
