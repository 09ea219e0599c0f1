"""The key-value part of the PostgreSQL backend: rows of a ``kv`` table with
TTLs on the database clock (kv.sql), and ``notify``/``listen`` over
LISTEN/NOTIFY. On its own it is a complete five-method backend (the generic
queue); :mod:`alsek_backends.postgres.backend` assembles it with the native
queue."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from alsek_backends.postgres.connection import Database, PruneThrottle, Statements
from alsek_backends.postgres.listen import Subscription, channel_name
from alsek_core.backend import DEFAULT_NAMESPACE, Backend
from alsek_core.errors import KeyExistsError
from alsek_core.ports import Queue, Serializer


def like_pattern(pattern: str | None) -> tuple[str, str, str | None]:
    """The glob ``pattern + "*"`` as (LIKE pattern, lowest and past-the-end
    name sharing its literal prefix, or None when nothing bounds it)."""
    like, prefix, literal = [], [], True
    for char in f"{pattern or ''}*":
        if char in "*?":
            like.append("%" if char == "*" else "_")
            literal = False
        else:
            like.append("\\" + char if char in "\\%_" else char)
            if literal:
                prefix.append(char)
    lo = "".join(prefix)
    return "".join(like), lo, _successor(lo)


def _successor(prefix: str) -> str | None:
    """The first string after every string starting with ``prefix``, in code
    point order (which is the "C" collation's UTF-8 byte order)."""
    while prefix:
        code = ord(prefix[-1]) + 1
        if code == 0xD800:
            code = 0xE000  # surrogates cannot be stored
        if code <= 0x10FFFF:
            return prefix[:-1] + chr(code)
        prefix = prefix[:-1]
    return None


class PostgresKeyValue(PruneThrottle, Backend):
    """Key-value rows of ``namespace`` in ``db``'s schema; key-value writes
    commit durably."""

    def __init__(
        self,
        db: Database,
        namespace: str = DEFAULT_NAMESPACE,
        serializer: Serializer | None = None,
        queue: Queue | None = None,
    ) -> None:
        super().__init__(namespace=namespace, serializer=serializer, queue=queue)
        self.db = db
        self._kv = Statements(db, "kv.sql")

    @property
    def schema(self) -> str:
        return self.db.schema

    def exists(self, name: str) -> bool:
        return self._kv.row("exists", namespace=self.namespace, name=name) is not None

    def set(self, name: str, value: Any, nx: bool = False, ttl: int | None = None) -> None:
        data = self.serializer.dumps(value)
        params = {"namespace": self.namespace, "name": name, "value": data, "ttl": ttl}
        if nx:
            if self._kv.row("set_nx", **params) is None:
                raise KeyExistsError(f"name {name!r} already exists")
        else:
            self._kv.rowcount("set", **params)
        if ttl is not None and self.prune_due():
            self._kv.rowcount("prune")

    def get(self, name: str, default: Any = None) -> Any:
        row = self._kv.row("get", namespace=self.namespace, name=name)
        return default if row is None else self.serializer.loads(row.value)

    def delete(self, name: str, missing_ok: bool = False) -> None:
        row = self._kv.row("delete", namespace=self.namespace, name=name)
        if (row is None or not row.live) and not missing_ok:
            raise KeyError(f"no such name: {name!r}")

    def delete_if(self, name: str, value: Any) -> bool:
        data = self.serializer.dumps(value)
        return self._kv.row("delete_if", namespace=self.namespace, name=name, value=data) is not None

    def scan(self, pattern: str | None = None) -> Iterator[str]:
        like, lo, hi = like_pattern(pattern)
        rows = self._kv.rows("scan", namespace=self.namespace, like=like, lo=lo, hi=hi)
        return iter([row.name for row in rows])

    def count(self, pattern: str | None = None) -> int:
        like, lo, hi = like_pattern(pattern)
        row = self._kv.row("count", namespace=self.namespace, like=like, lo=lo, hi=hi)
        return int(row.names) if row else 0

    def notify(self, channel: str) -> None:
        name = channel_name(self.schema, self.namespace, channel)
        self.db.run(lambda conn: conn.execute("SELECT pg_notify(%s, '')", [name]))

    def listen(self, channels: Sequence[str]) -> Subscription:
        return self.db.hub().subscribe([channel_name(self.schema, self.namespace, c) for c in channels])

    def close(self) -> None:
        self.db.close()
