from __future__ import annotations

from alsek_backends.diskcache import DiskCacheBackend

__all__ = ["DiskCacheBackend"]
