"""Offload: blocking calls made for an event loop come back to their callers,
results and exceptions alike, however many wait at once, and run in their
caller's context."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from alsek_core.worker.offload import Offload

CURRENT: contextvars.ContextVar[str] = contextvars.ContextVar("current", default="none")


def test_results_and_exceptions_reach_their_callers() -> None:
    def square(x: int) -> int:
        if x == 13:
            raise ValueError("unlucky")
        return x * x

    async def main() -> list[object]:
        offload = Offload(asyncio.get_running_loop(), 3, "test-offload")
        try:
            outcomes = await asyncio.gather(*(offload.call(square, x) for x in range(200)), return_exceptions=True)
        finally:
            offload.stop()
        return outcomes

    outcomes = asyncio.run(main())
    assert [o for i, o in enumerate(outcomes) if i != 13] == [x * x for x in range(200) if x != 13]
    assert isinstance(outcomes[13], ValueError)


def test_calls_run_off_the_loop_and_stop_lets_the_threads_go() -> None:
    async def main() -> tuple[str, Offload]:
        offload = Offload(asyncio.get_running_loop(), 2, "test-offload")
        name = await offload.call(lambda: threading.current_thread().name)
        offload.stop()
        return name, offload

    name, offload = asyncio.run(main())
    assert name.startswith("test-offload-")
    for thread in offload._threads:
        thread.join(5)
        assert not thread.is_alive()


def test_a_cancelled_caller_is_skipped() -> None:
    release = threading.Event()

    async def main() -> int:
        offload = Offload(asyncio.get_running_loop(), 1, "test-offload")
        slow = asyncio.ensure_future(offload.call(release.wait, 5))
        await asyncio.sleep(0.01)
        slow.cancel()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await slow
        result = await offload.call(lambda: 7)
        offload.stop()
        return result

    assert asyncio.run(main()) == 7


def test_each_call_sees_its_callers_context_and_changes_none() -> None:
    """What a coroutine set (a tracer's current span) holds in the calls it
    makes; a call's own changes stay in its copy."""
    def read_then_set() -> str:
        seen = CURRENT.get()
        CURRENT.set("changed in the thread")
        return seen

    async def caller(name: str, offload: Offload) -> tuple[str, str]:
        CURRENT.set(name)  # each asyncio task has a context of its own
        seen = await offload.call(read_then_set)
        return seen, CURRENT.get()

    async def main() -> list[tuple[str, str]]:
        offload = Offload(asyncio.get_running_loop(), 1, "test-offload")
        try:
            return await asyncio.gather(*(caller(f"run {i}", offload) for i in range(20)))
        finally:
            offload.stop()

    assert asyncio.run(main()) == [(f"run {i}", f"run {i}") for i in range(20)]
