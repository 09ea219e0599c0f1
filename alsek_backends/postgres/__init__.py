"""The PostgreSQL adapter (psycopg 3): SKIP LOCKED claims, LISTEN/NOTIFY
wake-ups, versioned migrations (``alsek db init``), transactional submit.

Importing this package loads no driver; ``PostgresBackend`` does, on access.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "PostgresBackend":
        from alsek_backends.postgres.backend import PostgresBackend

        return PostgresBackend
    raise AttributeError(name)


__all__ = ["PostgresBackend"]
