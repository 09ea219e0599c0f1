"""The PostgreSQL adapter (psycopg 3): SKIP LOCKED claims, LISTEN/NOTIFY
wake-ups, versioned migrations (``alsek db init``), transactional submit, and
statuses and results in tables of their own.

Importing this package loads no driver; each class does, on access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers see; at run time, __getattr__ imports on access
    from alsek_backends.postgres.backend import PostgresBackend
    from alsek_backends.postgres.result import PostgresResultStore
    from alsek_backends.postgres.status import PostgresStatusTracker

_EXPORTS = {
    "PostgresBackend": "alsek_backends.postgres.backend",
    "PostgresStatusTracker": "alsek_backends.postgres.status",
    "PostgresResultStore": "alsek_backends.postgres.result",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(name)


__all__ = ["PostgresBackend", "PostgresResultStore", "PostgresStatusTracker"]
