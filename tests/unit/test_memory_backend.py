"""The in-memory backend as a user's own tests would use it: no server, one
process; and what it refuses (another process, a malformed URL)."""

from __future__ import annotations

import multiprocessing
import pickle
import uuid
from typing import Any

import pytest

from alsek_backends.memory.backend import MemoryBackend
from alsek_core.broker import Broker
from alsek_core.config import backend_from_url
from alsek_core.errors import AlsekError, ConfigError
from alsek_core.result import ResultStore
from alsek_core.task import task
from alsek_core.testing.runner import run_until_empty


def fresh_url() -> str:
    return f"memory://{uuid.uuid4().hex}"


def test_a_users_test_runs_a_task_with_no_server() -> None:
    backend = backend_from_url(fresh_url())
    broker, results = Broker(backend), ResultStore(backend)

    @task(broker, result_store=results)
    def add(a: int, b: int) -> int:
        return a + b

    message = add.generate(args=(2, 3))
    assert run_until_empty([add]) == 1
    assert results.get(message) == 5
    assert backend.queue_names() == []


def test_submitting_inside_a_callers_transaction_is_refused_clearly() -> None:
    broker = Broker(backend_from_url(fresh_url()))

    @task(broker)
    def job() -> None:
        pass

    with pytest.raises(AlsekError, match="MemoryBackend cannot submit inside a caller's transaction"):
        job.generate(connection=object())
    assert broker.backend.queue_names() == []


def test_backends_naming_one_store_share_it_and_others_do_not() -> None:
    url = fresh_url()
    backend_from_url(url).set("a", 1)
    assert backend_from_url(url).get("a") == 1
    assert backend_from_url(fresh_url()).get("a") is None


def test_it_cannot_be_sent_to_another_process() -> None:
    with pytest.raises(ConfigError, match=r"lives in one process.*thread pool"):
        pickle.dumps(backend_from_url(fresh_url()))


def _use(backend: MemoryBackend, out: Any) -> None:
    try:
        backend.exists("a")
    except ConfigError as exc:
        out.put(str(exc))
    else:
        out.put("no error")


def test_a_forked_child_is_told_it_only_has_a_copy() -> None:
    backend = MemoryBackend(uuid.uuid4().hex)
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=_use, args=(backend, out))
    child.start()
    said = out.get(timeout=60)
    child.join(timeout=30)
    out.close()
    assert "forked child" in said


@pytest.mark.parametrize("url", ["memory://a/b", "memory:///path", "memory://a?x=1"])
def test_a_malformed_url_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="memory://NAME"):
        backend_from_url(url)
