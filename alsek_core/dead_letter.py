"""A dead letter as a queue holds it, and the rule that sends a payload there
when it names another message than the row it was stored under."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from alsek_core.message import Message

#: The task name shown for a payload that is no message.
UNDECODABLE_TASK = "(undecodable)"


def misaddressed(data: dict[str, Any], queue: str, uuid: str) -> str | None:
    """Why a decoded payload cannot run under its row, if it cannot: a worker
    acks, retries and records statuses by the message's own queue and uuid, so
    a payload naming another (or no) uuid, or another queue, would run and
    never be acked. The row is the message's identity; the payload must agree."""
    named = data.get("uuid")
    if named is None:
        return f"its payload has no uuid; its row is {uuid!r}"
    if named != uuid:
        return f"its payload's uuid {named!r:.80} differs from its row's {uuid!r}"
    if (data.get("queue") or queue) != queue:
        return f"its payload's queue {data['queue']!r:.80} differs from its row's {queue!r}"
    return None


@dataclass(frozen=True)
class DeadLetter:
    """A dead letter as its queue holds it. ``queue`` and ``uuid`` are its
    row's: the ids it is listed, retried and purged by, whatever the payload
    says. ``message`` is None when the payload is no message; ``problem``
    says why the payload cannot run as it is (undecodable, or naming
    another message than its row), if so."""

    queue: str
    uuid: str
    payload: bytes
    message: Message | None
    #: Follows from the payload and the row, so it takes no part in equality.
    problem: Exception | None = field(default=None, compare=False)

    @property
    def task_name(self) -> str:
        return self.message.task_name if self.message is not None else UNDECODABLE_TASK

    @property
    def retries(self) -> int | None:
        return self.message.retries if self.message is not None else None

    @property
    def exception_details(self) -> dict[str, Any] | None:
        """Why it is here: the problem of its payload, else the message's last error."""
        if self.problem is not None:
            return {"name": type(self.problem).__name__, "text": str(self.problem)}
        return self.message.exception_details if self.message is not None else None
