"""Registers the DiskCache backend for ``sqlite://`` and ``diskcache://`` URLs.

``sqlite:///relative/dir`` and ``sqlite:////absolute/dir`` (SQLAlchemy's
convention: three slashes then the path) name the DiskCache directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from alsek_core.errors import ConfigError
from alsek_core.plugins import BackendSpec, Registry, hookimpl


def directory_from_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.netloc:
        raise ConfigError(
            f"malformed {parts.scheme} URL {url!r}: use {parts.scheme}:///relative/dir or {parts.scheme}:////absolute/dir"
        )
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if not path:
        raise ConfigError(f"malformed {parts.scheme} URL {url!r}: no directory given")
    return path


def make_backend(url: str, **options: Any) -> Any:
    from alsek_backends.diskcache.backend import DiskCacheBackend

    return DiskCacheBackend(directory_from_url(url), **options)


def store_exists(url: str) -> bool:
    """A store is a directory holding the files its first use creates (DiskCache's
    ``cache.db``, the queue tables), not merely a directory."""
    folder = Path(directory_from_url(url))
    return folder.is_dir() and any(folder.iterdir())


@hookimpl
def alsek_register_backends(register: Registry) -> None:
    register.backend(
        BackendSpec(
            "diskcache",
            ("sqlite", "diskcache"),
            make_backend,
            "embedded DiskCache/SQLite, one host",
            test_url=lambda scratch: f"sqlite:///{scratch}/diskcache",
            requires=("diskcache",),
            url_params=tuple,  # none: the path is the whole story
            store_exists=store_exists,
        )
    )
