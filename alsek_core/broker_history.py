"""The Broker's door to the job history (``ports.History``), apart from its
queue operations: entries recorded as outcomes are told
(:mod:`alsek_core.finished`), written at once or, on a pool's batching
broker, by the flush of its batches, after the settlements and acks it
applies (an entry whose message could not be settled is dropped)."""

from __future__ import annotations

import logging
from collections.abc import Collection

from alsek_core.errors import ValidationError
from alsek_core.history import KINDS, STATES, HistoryBatch, HistoryEntry, Retention
from alsek_core.message import Message, validate_queue_name
from alsek_core.middleware import Outcome
from alsek_core.ports import Backend

log = logging.getLogger(__name__)


class HistoryDoor:
    """Mixed into the Broker: ``backend``, ``retention`` (what is kept),
    ``worker`` (who settles, recorded in each entry) and a batch when batching."""

    backend: Backend
    retention: Retention
    worker: str | None
    _history: HistoryBatch | None

    def record_finished(self, message: Message, outcome: Outcome) -> None:
        """Keep ``message``'s end in the history, if the retention keeps its kind."""
        if outcome.state not in STATES or not self.retention.keeps(outcome.state):
            return
        entry = HistoryEntry(
            uuid=message.uuid, queue=message.queue, task=message.task_name, state=outcome.state,
            submitted_at=message.created_at,
            started_at=None if outcome.started is None else int(outcome.started * 1000),
            finished_at=int(outcome.finished * 1000), attempts=outcome.attempt, worker=self.worker,
            exception=message.exception_details,  # the settle recorded the failure's
        )
        if self._history is not None:
            self._history.add(entry)
        else:
            self._write_history([entry])

    def flush_history(self) -> None:
        """Write the batched entries in one go. A failure loses them (logged):
        history is a record for people, never what a guarantee rests on."""
        if self._history is not None and len(self._history):
            self._write_history(self._history.take())

    def unrecord(self, uuids: Collection[str]) -> None:
        """Drop the batched entries of messages whose settlement failed: they
        run again, and are told again."""
        if self._history is not None and uuids:
            self._history.discard(uuids)

    def _write_history(self, entries: list[HistoryEntry]) -> None:
        try:
            self.backend.record_history(entries, self.retention)
        except Exception:
            log.exception("could not keep %d finished message(s) in the job history", len(entries))

    def history(self, queue: str | None = None, kind: str | None = None, limit: int = 50) -> list[HistoryEntry]:
        """Finished messages (of ``queue``; of ``kind``, succeeded or failed
        (dead included)), newest first."""
        if kind is not None and kind not in KINDS:
            raise ValidationError(f"kind must be one of {KINDS}, got {kind!r}")
        queues = [validate_queue_name(queue)] if queue else self.backend.history_queues()
        found = [entry for q in queues for k in ([kind] if kind else KINDS)
                 for entry in self.backend.history_of(q, k, limit)]
        return sorted(found, key=lambda e: e.finished_at, reverse=True)[:limit]

    def history_entry(self, uuid: str, queue: str | None = None) -> HistoryEntry | None:
        """The history of message ``uuid`` (looked for in ``queue``, else in every queue with history)."""
        queues = [validate_queue_name(queue)] if queue else self.backend.history_queues()
        for q in queues:
            entry = self.backend.history_entry(q, uuid)
            if entry is not None:
                return entry
        return None

    def history_queues(self) -> list[str]:
        """Every queue with history kept."""
        return self.backend.history_queues()
