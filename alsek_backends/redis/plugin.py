"""Registers the Redis backend for ``redis://``, ``rediss://``, ``unix://``
and ``redis+cluster://`` URLs.

redis-py is imported only when a backend is built, so that loading plugins
(and ``import alsek_core``) never needs the driver.
"""

from __future__ import annotations

import os
from typing import Any

from alsek_core.plugins import BackendSpec, Registry, hookimpl

ENV_TEST_URL = "ALSEK_TEST_REDIS_URL"
DEFAULT_TEST_URL = "redis://127.0.0.1:6379/1"


def make_backend(url: str, **options: Any) -> Any:
    from alsek_backends.redis.backend import RedisBackend

    return RedisBackend(url, **options)


def test_url(scratch_dir: str) -> str:
    """The contract suite's server; tests keep apart by namespace, not by database."""
    return os.environ.get(ENV_TEST_URL) or DEFAULT_TEST_URL


@hookimpl
def alsek_register_backends(register: Registry) -> None:
    register.backend(
        BackendSpec(
            "redis",
            ("redis", "rediss", "unix", "redis+cluster"),
            make_backend,
            "Redis or Redis Cluster: Lua-scripted atomic claims, pub/sub wake-ups",
            test_url=test_url,
        )
    )
