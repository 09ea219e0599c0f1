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


#: Keywords redis-py passes through from a URL's query that make sense there.
PLAIN_PARAMS = frozenset({"client_name", "username", "password", "max_connections",
                          "read_from_replicas", "require_full_coverage"})


def url_params() -> set[str]:
    """What redis-py takes from a URL's query: the arguments it parses, the TLS
    options and a few plain keywords (anything else fails deep inside redis-py
    as a TypeError)."""
    import inspect

    import redis
    from redis.connection import URL_QUERY_ARGUMENT_PARSERS

    tls = {p for p in inspect.signature(redis.SSLConnection.__init__).parameters if p.startswith("ssl_")}
    return set(URL_QUERY_ARGUMENT_PARSERS) | tls | PLAIN_PARAMS


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
            requires=("redis",),
            extra="redis",
            url_params=url_params,
        )
    )
