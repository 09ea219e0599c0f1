"""The embedded default: DiskCache (SQLite) on the local disk, no server.

The backend is imported on first attribute access, so that loading this
package's plugin (to learn the URL schemes) does not import diskcache.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DiskCacheBackend"]


def __getattr__(name: str) -> Any:
    if name == "DiskCacheBackend":
        from alsek_backends.diskcache.backend import DiskCacheBackend

        return DiskCacheBackend
    raise AttributeError(name)
