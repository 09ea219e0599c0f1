"""Revoking a message while it runs, in real pools started by the CLI on
every backend processes can share: the run is stopped, ends REVOKED and
leaves its queue, and the pool goes on with the rest."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest

from alsek_core.message import Message
from tests.integration.pool_harness import POOLS, QUEUE, ROOT, Pool, Store, registered_backends

pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize("store", registered_backends(), indirect=True),
]
Start = Callable[..., Pool]


def alsek_revoke(store: Store, *uuids: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "alsek_cli", "revoke", *uuids, "--backend", store.url],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


def status(store: Store, message: Message) -> str | None:
    record = store.status.record(message.uuid)
    return None if record is None else str(record["status"])


@pytest.mark.parametrize("kind", sorted(POOLS))
def test_a_revoked_running_message_is_stopped_and_the_pool_goes_on(store: Store, pools: Start, kind: str) -> None:
    # One that an exception in its thread stops, one blocked in C that only
    # stopping its process does; each would run 30 s.
    finished = store.submit("echo_thread", 1)
    dozing, blocked = store.submit("doze", 30), store.submit("nap", 30)
    # Runs beside them (a thread pool: in the same process, which it must
    # finish in before that process may be stopped), or waits claimed ahead.
    neighbour = store.submit("nap", 3)
    pool = pools(kind, store.url)
    running = [dozing, blocked]
    store.wait(lambda: all(status(store, m) == "RUNNING" for m in running) and store.done([finished]) == 1,
               30, "both long tasks to run", pool)

    done = alsek_revoke(store, dozing.uuid, blocked.uuid)
    assert done.returncode == 0 and "revoked 2 message(s)" in done.stdout, done.stderr
    assert store.broker.is_revoked(dozing) and store.broker.is_revoked(blocked)
    store.wait(lambda: all(status(store, m) == "REVOKED" for m in running), 20, "both to end REVOKED", pool)
    store.wait(lambda: store.done([neighbour]) == 1, 30, "the neighbour to finish", pool)
    assert status(store, neighbour) == "SUCCEEDED"

    # Gone from the queue, not retried, not dead-lettered, no result.
    assert store.live() == 0 and store.dead_uuids() == set()
    assert not any(store.results.exists(m) for m in running)

    # Hostile: twice, an unknown uuid, a message that just finished.
    again = alsek_revoke(store, dozing.uuid, "no-such-message", finished.uuid)
    assert again.returncode == 0, again.stderr
    assert "already ended (REVOKED)" in again.stderr and "already ended (SUCCEEDED)" in again.stderr
    assert "revoked 1 message(s)" in again.stdout  # the unknown uuid: marked, nothing to stop
    assert status(store, finished) == "SUCCEEDED" and store.results.get(finished) == 1
    assert not store.broker.is_revoked(finished)

    after = [store.submit("echo_thread", i) for i in range(5)]
    store.wait(lambda: store.done(after) == 5, 30, "the pool to go on after the revocations", pool)
    assert [store.results.get(m) for m in after] == list(range(5))
    assert pool.terminate() == 0
    assert store.broker.counts(QUEUE).in_flight == 0
