"""Contract: the state behind rate and concurrency limits (``Queue.take_token``,
``acquire_slot``, ``release_slot``): token-bucket arithmetic, slots that are
never over-granted, even to racing clients, and that end with their lease."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from alsek_core.ports import Backend

RACERS = 8


def _race(backend_factory: Callable[[], Backend], attempt: Callable[[Backend, int], Any]) -> list[Any]:
    """``attempt(backend, i)`` from RACERS threads at once, each with a backend
    of its own (its own connection), as workers on other hosts would."""
    backends = [backend_factory() for _ in range(RACERS)]
    barrier = threading.Barrier(RACERS)
    results: list[Any] = [None] * RACERS

    def run(i: int) -> None:
        barrier.wait()
        results[i] = attempt(backends[i], i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for other in backends:
        close = getattr(other, "close", None)
        if close is not None:
            close()
    return results


class LimitsContract:
    def test_a_new_bucket_is_full_then_reserves_one_interval_apart(self, backend: Backend) -> None:
        # 1 token a second, a burst of 2: two now, then one due in about 1 s, one in about 2 s.
        waits = [backend.take_token("bucket", 1.0, 2) for _ in range(4)]
        assert waits[:2] == [0, 0]
        assert 500 < waits[2] <= 1000
        assert 1500 < waits[3] <= 2000

    def test_buckets_are_apart(self, backend: Backend) -> None:
        assert backend.take_token("one", 1.0, 1) == 0
        assert backend.take_token("one", 1.0, 1) > 0
        assert backend.take_token("two", 1.0, 1) == 0

    def test_a_bucket_refills(self, backend: Backend) -> None:
        assert backend.take_token("refill", 20.0, 1) == 0
        assert backend.take_token("refill", 20.0, 1) > 0  # reserved: due 50 ms on
        time.sleep(0.3)
        assert backend.take_token("refill", 20.0, 1) == 0

    def test_racing_clients_each_reserve_a_different_token(
        self, backend: Backend, backend_factory: Callable[[], Backend]
    ) -> None:
        waits = _race(backend_factory, lambda b, i: b.take_token("race", 1.0, 3))
        assert sorted(waits)[:3] == [0, 0, 0]
        later = sorted(waits)[3:]
        # Each later one is its own token, about a second after the one before it.
        assert all(b - a > 500 for a, b in zip([0, *later], later, strict=False))

    def test_slots_up_to_the_limit(self, backend: Backend) -> None:
        assert backend.acquire_slot("group", "a", 2, 30_000)
        assert backend.acquire_slot("group", "b", 2, 30_000)
        assert not backend.acquire_slot("group", "c", 2, 30_000)
        assert backend.acquire_slot("group", "a", 2, 30_000)  # a holder asking again extends
        assert backend.acquire_slot("other", "c", 2, 30_000)  # groups are apart
        backend.release_slot("group", "a")
        backend.release_slot("group", "a")  # twice: nothing more
        backend.release_slot("group", "nobody")
        assert backend.acquire_slot("group", "c", 2, 30_000)
        assert not backend.acquire_slot("group", "a", 2, 30_000)
        for group, holder in (("group", "b"), ("group", "c"), ("other", "c")):
            backend.release_slot(group, holder)

    def test_a_slot_ends_with_its_lease(self, backend: Backend) -> None:
        assert backend.acquire_slot("lease", "dead-worker", 1, 200)
        assert not backend.acquire_slot("lease", "next", 1, 30_000)
        time.sleep(0.5)
        assert backend.acquire_slot("lease", "next", 1, 30_000)
        backend.release_slot("lease", "next")

    def test_an_extended_slot_outlives_its_first_lease(self, backend: Backend) -> None:
        assert backend.acquire_slot("extend", "alive", 1, 400)
        time.sleep(0.2)
        assert backend.acquire_slot("extend", "alive", 1, 30_000)
        time.sleep(0.4)
        assert not backend.acquire_slot("extend", "next", 1, 30_000)
        backend.release_slot("extend", "alive")

    def test_racing_clients_never_get_more_slots_than_the_limit(
        self, backend: Backend, backend_factory: Callable[[], Backend]
    ) -> None:
        granted = _race(backend_factory, lambda b, i: b.acquire_slot("crowd", f"h{i}", 2, 30_000))
        assert sum(granted) == 2
        for i, won in enumerate(granted):
            if won:
                backend.release_slot("crowd", f"h{i}")
        assert backend.acquire_slot("crowd", "after", 1, 30_000)
        backend.release_slot("crowd", "after")
