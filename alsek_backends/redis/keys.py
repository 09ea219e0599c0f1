"""Where a Redis queue lives: one hash tag per queue, so that every key of a
queue is in one Cluster slot and ``queue.lua`` can touch them all at once."""

from __future__ import annotations


def queue_prefix(namespace: str, queue: str) -> str:
    """The hash tag every key of the queue starts with (one Cluster slot per queue)."""
    return f"{{{namespace}:{queue}}}"


class QueueKeys:
    """The names of one queue's keys (``queue.lua`` documents them)."""

    __slots__ = ("prefix",)

    def __init__(self, namespace: str, queue: str) -> None:
        self.prefix = queue_prefix(namespace, queue)

    def key(self, part: str) -> str:
        return f"{self.prefix}:{part}"

    @property
    def zsets(self) -> list[str]:
        """Where a queue's live and dead messages are; all empty means no queue."""
        return [self.key(part) for part in ("ready", "delayed", "leased", "dead")]

    def message(self, uuid: str) -> str:
        return f"{self.prefix}:m:{uuid}"

    def dead_letter(self, uuid: str) -> str:
        return f"{self.prefix}:x:{uuid}"

    @property
    def wake_channel(self) -> str:
        return f"{self.prefix}:wake"
