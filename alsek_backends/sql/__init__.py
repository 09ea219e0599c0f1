"""Status tracking on any SQLAlchemy engine (PostgreSQL, SQLite, MySQL, ...)."""

from __future__ import annotations

from typing import Any

__all__ = ["SqlStatusTracker"]


def __getattr__(name: str) -> Any:
    if name == "SqlStatusTracker":
        from alsek_backends.sql.status import SqlStatusTracker

        return SqlStatusTracker
    raise AttributeError(name)
