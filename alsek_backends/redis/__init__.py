"""Redis and Redis Cluster backend: native atomic queue operations in Lua.

``RedisBackend`` is imported on first access: the plugin module lives in this
package, and loading plugins must not import redis-py.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RedisBackend"]


def __getattr__(name: str) -> Any:
    if name == "RedisBackend":
        from alsek_backends.redis.backend import RedisBackend

        return RedisBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
