"""Not a backend: a status tracker whose records live in a table on any
SQLAlchemy engine (PostgreSQL, SQLite, MySQL, ...), beside any backend.
SQLAlchemy is imported on first access of ``SqlStatusTracker``."""

from __future__ import annotations

from typing import Any

__all__ = ["SqlStatusTracker"]


def __getattr__(name: str) -> Any:
    if name == "SqlStatusTracker":
        from alsek_backends.sqlalchemy_status.tracker import SqlStatusTracker

        return SqlStatusTracker
    raise AttributeError(name)
