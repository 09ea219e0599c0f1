"""Fixtures of the contract suite (a pytest plugin: list it in ``pytest_plugins``).

The one fixture it leaves to you is ``backend_factory``: a picklable callable
returning your backend in the namespace ``contract_namespace``.
"""

from __future__ import annotations

import multiprocessing
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from alsek_core.ports import Backend

BackendFactory = Callable[[], Backend]


def unavailable(reason: str) -> None:
    """Skip locally, but fail under CI: a missing server there is a broken run."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: a missing server is a failure)")
    pytest.skip(reason)


@pytest.fixture
def contract_namespace() -> str:
    """A namespace no other test uses, so tests never see each other's data."""
    return f"contract-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def backend(backend_factory: BackendFactory) -> Iterator[Backend]:
    instance = backend_factory()
    try:
        instance.exists("contract-probe")
    except Exception as exc:
        unavailable(f"{type(instance).__name__} is unreachable: {exc}")
    yield instance
    wipe(instance)


def wipe(backend: Backend) -> None:
    """Best effort: leave nothing behind in the test's namespace."""
    try:
        for queue in backend.queue_names():
            backend.purge(queue)
            for dead in list(backend.messages(queue, dead=True)):
                backend.remove_dead(queue, dead.uuid)
        for name in list(backend.scan()):
            backend.delete(name, missing_ok=True)
        backend.queue_names()  # now empty: an adapter's registry of names forgets them too
    finally:
        close = getattr(backend, "close", None)
        if close is not None:
            close()


def shared_across_processes(backend: Backend, backend_factory: BackendFactory) -> bool:
    """Whether another process, building its own backend with
    ``backend_factory``, sees what ``backend`` stores. Not for storage that
    lives in one process (a dict, ``memory://``), nor for a factory another
    process cannot run: then the concurrency checks race threads instead."""
    probe = f"contract-probe-{uuid.uuid4().hex}"
    backend.set(probe, 1)
    try:
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        child = ctx.Process(target=_sees, args=(backend_factory, probe, out))
        child.start()
        seen = bool(out.get(timeout=120))
        child.join(timeout=30)
        out.close()
        return seen
    finally:
        backend.delete(probe, missing_ok=True)


def _sees(backend_factory: BackendFactory, name: str, out: Any) -> None:
    try:
        backend = backend_factory()
        out.put(backend.exists(name))
        close = getattr(backend, "close", None)
        if close is not None:
            close()
    except Exception:
        out.put(False)
        raise


@pytest.fixture
def process_local(backend: Backend, backend_factory: BackendFactory) -> bool:
    """True when ``backend``'s storage lives in this process only."""
    return not shared_across_processes(backend, backend_factory)
