"""A StatusTracker whose records live in a SQL table, through SQLAlchemy Core,
so statuses can be joined with an application's own tables and queried with
SQL. Waits poll the table (SQL has no portable push)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from alsek_core.message import Message
from alsek_core.redact import redact_url
from alsek_core.status import BaseStatusTracker, TaskStatus


class SqlStatusTracker(BaseStatusTracker):
    """``engine`` is a SQLAlchemy Engine or URL; the table is created if missing."""

    def __init__(self, engine: sa.Engine | str, table_name: str = "alsek_status", schema: str | None = None) -> None:
        self.engine = sa.create_engine(engine) if isinstance(engine, str) else engine
        metadata = sa.MetaData(schema=schema)
        self.table = sa.Table(
            table_name,
            metadata,
            sa.Column("uuid", sa.String(64), primary_key=True),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("queue", sa.String(200), nullable=False),
            sa.Column("task_name", sa.String(255), nullable=False),
            sa.Column("updated_at", sa.BigInteger, nullable=False),
        )
        metadata.create_all(self.engine, checkfirst=True)

    def __repr__(self) -> str:
        return f"SqlStatusTracker(engine={redact_url(self.engine.url)!r}, table={self.table.fullname!r})"

    def set(self, message: Message, status: TaskStatus) -> None:
        record = self.make_record(message, status)
        with self.engine.begin() as conn:
            updated = conn.execute(
                sa.update(self.table).where(self.table.c.uuid == message.uuid).values(**record)
            )
            if updated.rowcount:
                return
            try:
                with conn.begin_nested():
                    conn.execute(sa.insert(self.table).values(uuid=message.uuid, **record))
            except sa.exc.IntegrityError:  # a concurrent first write won; ours is newer
                conn.execute(sa.update(self.table).where(self.table.c.uuid == message.uuid).values(**record))

    def record(self, uuid: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(self.table).where(self.table.c.uuid == uuid)).mappings().first()
        if row is None:
            return None
        return {k: row[k] for k in ("status", "queue", "task_name", "updated_at")}

    def uuids(self) -> Iterator[str]:
        with self.engine.connect() as conn:
            found = list(conn.execute(sa.select(self.table.c.uuid)).scalars())
        yield from found

    def remove(self, uuid: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(self.table).where(self.table.c.uuid == uuid))
