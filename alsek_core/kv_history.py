"""The job history (``ports.History``) built only on the key-value methods,
for every backend without a native one (five-method plugins, DiskCache,
PostgreSQL's key-value table, memory).

Layout, under the backend's namespace::

    history:<queue>:<kind>:<finished_at, 15 digits>:<uuid>   an entry's dict

Each entry is written with the TTL of its kind, so time bounds itself; the
count is bounded after each batch by deleting the oldest names beyond the
cap (names sort by finish time, so no entry needs reading for that).
"""

from __future__ import annotations

from collections.abc import Sequence

from alsek_core.history import KINDS, HistoryEntry, Retention
from alsek_core.ports import History, KeyValue

PREFIX = "history:"


def _kind_prefix(queue: str, kind: str) -> str:
    return f"{PREFIX}{queue}:{kind}:"


def _name(entry: HistoryEntry) -> str:
    return f"{_kind_prefix(entry.queue, entry.kind)}{entry.finished_at:015d}:{entry.uuid}"


class KVHistory(History):
    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    def record_history(self, entries: Sequence[HistoryEntry], retention: Retention) -> None:
        touched: set[tuple[str, str]] = set()
        for entry in entries:
            ms, count = retention.bounds(entry.kind)
            if ms > 0 and count > 0:
                self.kv.set(_name(entry), entry.to_dict(), ttl=ms)
                touched.add((entry.queue, entry.kind))
        for queue, kind in touched:
            self._cap(_kind_prefix(queue, kind), retention.bounds(kind)[1])

    def _cap(self, prefix: str, count: int) -> None:
        names = sorted(self.kv.scan(prefix))
        for name in names[: max(0, len(names) - count)]:
            self.kv.delete(name, missing_ok=True)

    def history_of(self, queue: str, kind: str, limit: int) -> list[HistoryEntry]:
        found = []
        for name in sorted(self.kv.scan(_kind_prefix(queue, kind)), reverse=True):
            entry = HistoryEntry.from_dict(self.kv.get(name))
            if entry is not None:
                found.append(entry)
                if len(found) >= limit:
                    break
        return found

    def history_entry(self, queue: str, uuid: str) -> HistoryEntry | None:
        for kind in KINDS:
            for name in self.kv.scan(f"{_kind_prefix(queue, kind)}*:{uuid}"):
                entry = HistoryEntry.from_dict(self.kv.get(name))
                if entry is not None and entry.uuid == uuid:
                    return entry
        return None

    def history_queues(self) -> list[str]:
        return sorted({name[len(PREFIX):].split(":", 1)[0] for name in self.kv.scan(PREFIX)})
