"""Revoking a message, statuses included. ``Broker.revoke`` keeps a mark on
the backend through the key-value methods (so every backend has it, the
five-method one included; see :mod:`alsek_core.revocation_marks`), which a
worker checks just before running a message it claimed.

A revoked message that is queued or delayed never runs: when it comes due, a
worker dead-letters it with a ``RevokedError`` and its status (if tracked)
is FAILED, as in Alsek. A run already under way is stopped by its pool
(:mod:`alsek_core.worker.supervisor`) and ends REVOKED: removed, neither
retried nor dead-lettered, since it was stopped on purpose and nothing
failed (a dead letter is a message someone has to look into).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from alsek_core.errors import RevokedError, ValidationError
from alsek_core.message import Message
from alsek_core.ports import StatusTracker
from alsek_core.status import TERMINAL_STATUSES, TaskStatus

if TYPE_CHECKING:
    from alsek_core.broker import Broker

def revoked_details(message: Message) -> dict[str, Any]:
    """The exception details of a revoked message (what Alsek records)."""
    return {"name": RevokedError.__name__, "text": f"{message.summary} was revoked", "traceback": None}


def revoke(
    broker: Broker,
    message: Message,
    status_tracker: StatusTracker | None = None,
    skip_if_running: bool = False,
) -> bool:
    """Mark ``message`` revoked; with a status tracker, its status becomes
    FAILED at once unless a run is under way (its pool stops it and records
    REVOKED). A message whose status is already terminal is left alone, and
    with ``skip_if_running`` one that is running. True if it was marked."""
    if status_tracker is None:
        if skip_if_running:
            raise ValidationError("skip_if_running needs a status tracker to know what runs")
        broker.revoke(message)
        return True
    status = status_tracker.get(message)
    if status in TERMINAL_STATUSES or (skip_if_running and status == TaskStatus.RUNNING):
        return False
    broker.revoke(message)
    message.exception_details = revoked_details(message)
    # Read again: a worker may have started it before the mark reached it
    # (its pool then stops it and records REVOKED, which FAILED must not hide).
    if status != TaskStatus.RUNNING and status_tracker.get(message) not in {*TERMINAL_STATUSES, TaskStatus.RUNNING}:
        status_tracker.set(message, TaskStatus.FAILED)
    return True
