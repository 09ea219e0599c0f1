"""A reader polling status and result while a real pool runs 2,000 tasks
never sees them disagree (issue 12), on every backend processes can share.
The contract suite checks the same with tasks run in the test's process; here
the writes come from a pool's worker processes, batched as they are in use."""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest

from alsek_core.config import backend_from_url
from alsek_core.testing.contract.outcomes import result_agrees_with_status, watching
from tests.integration.pool_harness import (
    POOLS,
    Pool,
    Store,
    pools,
    registered_backends,
    scratch,
    store,
)

__all__ = ["pools", "scratch", "store"]  # fixtures

pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize("store", registered_backends(), indirect=True),
]
RUN = 2_000


@pytest.mark.parametrize("kind", sorted(POOLS))
def test_status_and_result_agree_throughout_a_run(store: Store, pools: Callable[..., Pool], kind: str) -> None:
    messages = [store.submit("echo_thread", i) for i in range(RUN)]
    factory = functools.partial(backend_from_url, store.url)
    try:
        with watching(False, factory, messages, result_agrees_with_status):
            pool = pools(kind, store.url)
            store.wait(lambda: store.live() == 0, 300, "the queue to drain", pool)
        assert pool.terminate() == 0
        assert store.done(messages) == RUN
    finally:  # a native store's rows are no key-value names: the harness's wipe misses them
        for message in messages:
            store.status.remove(message.uuid)
            store.results.delete(message, descendants=False, missing_ok=True)
