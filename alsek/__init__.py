"""The public API, as the Alsek guided tour spells it. Re-exports only: the
code lives in alsek_core and the adapters."""

from __future__ import annotations

from alsek_core.broker import Broker
from alsek_core.chord import Chord, chord
from alsek_core.group import Group, group
from alsek_core.lock import Lock
from alsek_core.message import Message
from alsek_core.status import StatusTracker, TaskStatus
from alsek_core.task import Task, task

__version__ = "0.1.0"

__all__ = [
    "Broker",
    "Chord",
    "Group",
    "Lock",
    "Message",
    "StatusTracker",
    "Task",
    "TaskStatus",
    "__version__",
    "chord",
    "group",
    "task",
]
