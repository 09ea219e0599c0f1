"""Offload: blocking calls made for an event loop come back to their callers,
results and exceptions alike, however many wait at once."""

from __future__ import annotations

import asyncio
import threading

import pytest

from alsek_core.worker.offload import Offload


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
