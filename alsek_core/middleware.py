"""Middleware: no-op hooks around a message's life that plugins fill in
(per-task metrics, tracing), so the core never imports what they use.

A plugin offers one through the ``alsek_register_middleware`` hook (see
:mod:`alsek_core.plugins`); code that decides for itself (a pool serving
metrics) calls :func:`install`. Hooks run in the process where the event
happens: ``before_submit`` where a message is submitted (a producer, or a
worker submitting a callback), ``running`` and ``after_outcome`` in the
worker process that runs it. A hook that raises is logged and skipped: it
never costs a message.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

from alsek_core.plugins import plugin_host

if TYPE_CHECKING:
    from alsek_core.message import Message

log = logging.getLogger(__name__)

#: What ``Outcome.state`` says: the four ends of a run, "revoked" for a run
#: stopped because its message was revoked, and "dead" for a message
#: dead-lettered without running (poison, revoked, expired, unknown).
OUTCOMES = ("succeeded", "retried", "failed", "revoked", "dead")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one claimed message. Times are seconds since the
    epoch; ``started`` is None for one that never ran; ``dead_lettered``:
    it went to the dead letters (a failure or a dead one, while the broker
    keeps dead letters)."""

    state: str
    started: float | None
    finished: float
    attempt: int
    exception: BaseException | None = None
    dead_lettered: bool = False

    @property
    def duration(self) -> float | None:
        return None if self.started is None else max(0.0, self.finished - self.started)


class Middleware:
    """Subclass and override what you need; every hook does nothing here."""

    def before_submit(self, message: Message) -> None:
        """Just before ``message`` is encoded to be queued (a fresh submit, a
        callback, a replay); a change to its fields is what gets stored."""

    def running(self, message: Message) -> AbstractContextManager[None]:
        """Entered around one run of ``message``, its outcome's settle included."""
        return nullcontext()

    def after_outcome(self, message: Message, outcome: Outcome) -> None:
        """After ``message``'s outcome is settled (inside ``running``); keep it
        cheap: it runs once per message on a pool's hot path (batch the
        writes, and write them in ``flush``)."""

    def flush(self) -> None:
        """Called by a pool's housekeeping about every 100 ms and as it stops:
        write what ``after_outcome`` batched."""


_lock = threading.Lock()
_installed: list[Middleware] = []
_active: tuple[Middleware, ...] | None = None
_runners: tuple[Middleware, ...] = ()
_NOTHING = nullcontext()


def install(middleware: Middleware) -> None:
    """Add ``middleware`` in this process (and the worker processes forked after)."""
    global _active
    with _lock:
        _installed.append(middleware)
        _active = None


def uninstall(middleware: Middleware) -> None:
    global _active
    with _lock:
        _installed.remove(middleware)
        _active = None


def active() -> tuple[Middleware, ...]:
    """The plugins' middleware, then the installed ones (read once, then cached)."""
    global _active, _runners
    found = _active
    if found is None:
        with _lock:
            found = _active = tuple(m for m, _ in plugin_host().registry.middlewares) + tuple(_installed)
            _runners = tuple(m for m in found if type(m).running is not Middleware.running)
    return found


def before_submit(message: Message) -> None:
    for middleware in active():
        try:
            middleware.before_submit(message)
        except Exception:
            log.exception("middleware %r failed before submitting %s", middleware, message.summary)


def running(message: Message) -> AbstractContextManager[None]:
    """Every middleware's ``running``, entered in order (nothing to enter, in
    the common case, costs nothing)."""
    active()
    if not _runners:
        return _NOTHING
    if len(_runners) == 1:  # a plugin's own context as it is, without a stack around it
        try:
            return _runners[0].running(message)
        except Exception:
            log.exception("middleware %r failed to start the run of %s", _runners[0], message.summary)
            return _NOTHING
    return _stacked(message, _runners)


@contextmanager
def _stacked(message: Message, runners: tuple[Middleware, ...]) -> Iterator[None]:
    with ExitStack() as stack:
        for middleware in runners:
            try:
                stack.enter_context(middleware.running(message))
            except Exception:
                log.exception("middleware %r failed to start the run of %s", middleware, message.summary)
        yield


def after_outcome(message: Message, outcome: Outcome) -> None:
    for middleware in active():
        try:
            middleware.after_outcome(message, outcome)
        except Exception:
            log.exception("middleware %r failed after the outcome of %s", middleware, message.summary)


def flush() -> None:
    for middleware in active():
        try:
            middleware.flush()
        except Exception:
            log.exception("middleware %r failed to flush", middleware)
