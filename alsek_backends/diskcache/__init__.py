"""The embedded default: DiskCache (SQLite) on the local disk, no server."""

from __future__ import annotations

from alsek_backends.diskcache.backend import DiskCacheBackend

__all__ = ["DiskCacheBackend"]
