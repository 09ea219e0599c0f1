"""Blocking calls made for an event loop on a few threads of their own, their
results handed back to the loop in batches.

``loop.run_in_executor`` costs a future on each side and a wake-up of the
loop per call; a coroutine runner makes two such calls per message (start
and settle), which measured as much CPU as the rest of the loop's work.
Here a thread that finds several calls waiting runs them in a row and hands
all their results back with one wake-up. Each call runs in a copy of its
caller's context (as ``asyncio.to_thread`` does), so what a coroutine set in
its context variables (a tracer's current span) holds in the calls it makes.
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: Calls a thread takes at once when they wait (so one slow call holds up
#: only a few others while the remaining threads go on).
BATCH = 8

_Call = tuple[asyncio.Future[Any], contextvars.Context, Callable[..., Any], tuple[Any, ...]]
_Outcome = tuple[asyncio.Future[Any], bool, Any]


class Offload:
    """``await offload.call(function, *args)`` runs ``function`` on one of
    ``threads`` threads. Daemon threads: a process that exits does not wait
    for a call stuck on an unreachable backend (its message is handed back
    by the pool, or comes back when its lease ends)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, threads: int, name: str) -> None:
        self.loop = loop
        self._inbox: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._serve, name=f"{name}-{i}", daemon=True)
                         for i in range(threads)]
        for thread in self._threads:
            thread.start()

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        future: asyncio.Future[T] = self.loop.create_future()
        self._inbox.put((future, contextvars.copy_context(), function, args))
        return await future

    def stop(self) -> None:
        """Let the threads go once they have run what waits."""
        for _ in self._threads:
            self._inbox.put(None)

    def _serve(self) -> None:
        while (first := self._inbox.get()) is not None:
            calls = [first]
            while len(calls) < BATCH:
                try:
                    more = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._inbox.put(None)  # another thread's, or ours once this batch is done
                    break
                calls.append(more)
            outcomes: list[_Outcome] = []
            for future, context, function, args in calls:
                try:
                    outcomes.append((future, True, context.run(function, *args)))
                except BaseException as exc:  # handed to the awaiting coroutine, which decides
                    outcomes.append((future, False, exc))
            try:
                self.loop.call_soon_threadsafe(_hand_back, outcomes)
            except RuntimeError:
                return  # the loop is closed: nobody awaits these any more


def _hand_back(outcomes: list[_Outcome]) -> None:
    for future, ok, value in outcomes:
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
