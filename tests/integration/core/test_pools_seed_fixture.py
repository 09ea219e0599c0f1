"""The seed's pytest fixture (Tips & Tricks, "Testing"), as written: a
WorkerPool run in a daemonic background process, stopped with terminate()."""

from __future__ import annotations

from collections.abc import Iterator
from multiprocessing import Process

import pytest

from alsek.core.worker import WorkerPool
from tests.integration.pool_seed_app import results, task_1, task_2


def _run_pool() -> None:
    WorkerPool([task_1, task_2], backoff=None).run()


@pytest.fixture()
def background_worker_pool() -> Iterator[None]:
    process = Process(target=_run_pool, daemon=True)
    process.start()
    yield
    process.terminate()


def test_processing(background_worker_pool: None) -> None:
    message = task_1.generate()
    assert results.get(message, timeout=30_000) == "processed"
    doubled = [task_2.generate(args=(i,)) for i in range(10)]
    assert [results.get(m, timeout=30_000) for m in doubled] == [2 * i for i in range(10)]
