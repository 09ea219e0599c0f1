"""Real worker pools, started by the CLI, on a real three-master Redis Cluster
through ``redis+cluster://``: queues on every master, results, statuses, a
callback chain that hops between masters, a retry, and a SIGKILL mid-run."""

from __future__ import annotations

import uuid as uuid_lib
from collections.abc import Callable, Iterator

import pytest
from redis.cluster import RedisCluster

from alsek_core.backoff import ConstantBackoff
from alsek_core.message import Message
from alsek_core.status import TaskStatus
from alsek_core.task import nest_callbacks
from tests.integration.pool_harness import POOLS
from tests.integration.redis_cluster import running_cluster
from tests.integration.redis_pools import Run, TaskPool, started_pools

pytestmark = pytest.mark.slow
Start = Callable[..., TaskPool]
#: A retry waits this long, so it passes through the delayed set.
RETRY_BACKOFF = ConstantBackoff(constant=200, floor=0, ceiling=200).settings


@pytest.fixture(scope="module")
def cluster_url() -> Iterator[str]:
    with running_cluster() as url:
        yield url


@pytest.fixture
def run(cluster_url: str) -> Iterator[Run]:
    url = f"{cluster_url}?namespace=cluster-pool-{uuid_lib.uuid4().hex[:10]}"
    found = Run(url, queues=[])
    found.queues = queues_on_every_master(found)
    yield found
    found.close()


@pytest.fixture
def pools() -> Iterator[Start]:
    yield from started_pools()


def queues_on_every_master(run: Run) -> list[str]:
    """Four queue names of this namespace: one on each master, then a fourth."""
    client = run.backend.conn
    assert isinstance(client, RedisCluster)
    masters = {node.name for node in client.get_primaries()}  # type: ignore[no-untyped-call]
    assert len(masters) == 3
    chosen: dict[str, str] = {}
    for i in range(1000):
        name = f"q{i}"
        node = client.get_node_from_key(run.backend.keys(name).prefix)  # type: ignore[no-untyped-call]
        chosen.setdefault(node.name, name)
        if len(chosen) == len(masters):
            break
    assert set(chosen) == masters
    return [*sorted(chosen.values()), "q-extra"]


def chain(run: Run, i: int) -> tuple[Message, list[Message]]:
    """square(i) on the first queue, then add_one on each other queue in turn."""
    links = [run.message("add_one", queue=q) for q in run.queues[1:]]
    head = run.message("square", i, queue=run.queues[0], callback_message_data=nest_callbacks(tuple(links)).data)
    return head, links


def nothing_left(run: Run) -> None:
    assert run.live() == 0 and run.dead() == 0
    assert run.backend.queue_names() == []
    client = run.backend.conn
    assert isinstance(client, RedisCluster)
    pattern = "{" + run.backend.namespace + ":*"
    primaries = client.get_primaries()  # type: ignore[no-untyped-call]
    leftovers = [key for node in primaries for key in node.redis_connection.scan_iter(match=pattern)]
    assert leftovers == [], "every queue key is gone once its queue is empty"


@pytest.mark.parametrize("kind", sorted(POOLS))
def test_a_pool_on_the_cluster_completes_everything(run: Run, pools: Start, kind: str) -> None:
    queues = run.queues
    touched = [run.message("touch", i, queue=queues[i % 4]) for i in range(150)]
    squares = [
        run.message("square", i, queue=queues[i % 4], mechanism="process" if i % 2 else "thread")
        for i in range(100)
    ]
    chains = [chain(run, i) for i in range(20)]
    retried = [run.message("flaky", 2, queue=queues[i % 4], backoff_settings=RETRY_BACKOFF) for i in range(5)]
    run.submit([*touched, *squares, *(head for head, _ in chains), *retried])
    links = [link for _, chain_links in chains for link in chain_links]
    with_results = [*squares, *(head for head, _ in chains), *links, *retried]
    assert len(touched) + len(with_results) == 335

    pool = pools(kind, run.url, queues)
    run.wait(lambda: run.with_results(with_results) == len(with_results), 120, "every result", pool)
    run.wait(lambda: run.live() == 0, 30, "every queue to empty", pool)
    assert pool.terminate() == 0

    assert run.succeeded(touched) == len(touched)
    assert run.succeeded(with_results) == len(with_results)
    assert [run.results.get(m) for m in squares] == [i * i for i in range(100)]
    for i, (head, chain_links) in enumerate(chains):
        assert run.results.get(head, descendants=True) == [i * i, i * i + 1, i * i + 2, i * i + 3]
        assert all(run.status.get(link) == TaskStatus.SUCCEEDED for link in chain_links)
    assert [run.results.get(m) for m in retried] == [2] * 5, "each succeeded on its third attempt"
    nothing_left(run)


@pytest.mark.parametrize("kind", sorted(POOLS))
def test_sigkill_mid_run_then_restart_completes_every_task(run: Run, pools: Start, kind: str) -> None:
    messages = run.submit(run.message("square", i, 0.01, queue=run.queues[i % 4]) for i in range(300))
    first = pools(kind, run.url, run.queues)
    run.wait(lambda: run.with_results(messages) >= 30, 60, "some tasks to finish", first)
    first.kill()
    assert run.with_results(messages) < 300, "the pool finished before it could be killed; make the tasks slower"
    second = pools(kind, run.url, run.queues)
    run.wait(lambda: run.with_results(messages) == 300, 120, "every task after the restart", second)
    run.wait(lambda: run.live() == 0, 30, "every queue to empty", second)
    assert second.terminate() == 0
    assert [run.results.get(m) for m in messages] == [i * i for i in range(300)]
    nothing_left(run)
