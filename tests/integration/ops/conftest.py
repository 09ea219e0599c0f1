"""The ops tests' Redis: a namespace of their own, wiped after each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from alsek_core.config import backend_from_url
from alsek_core.testing.contract.fixtures import unavailable, wipe
from tests.integration.pool_harness import backend_url


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    url = backend_url("redis", str(tmp_path))
    backend = backend_from_url(url)
    try:
        backend.exists("probe")
    except Exception as exc:
        unavailable(f"Redis is unreachable: {exc}")
    yield url
    wipe(backend)
