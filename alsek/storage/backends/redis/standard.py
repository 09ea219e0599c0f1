from __future__ import annotations

from alsek_backends.redis import RedisBackend

__all__ = ["RedisBackend"]
