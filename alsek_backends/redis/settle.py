"""A settlement (``ports.Settlement``) as Redis commands, in the order the
generic queue takes its steps: result, callback, status, notifications, a
chord member's join, then the message's removal, release or dead letter
(``queue.lua``).

On a single Redis the queue runs them as one MULTI/EXEC: one round trip, and
no reader sees some of them without the others. The queue's own steps reuse
``queue.lua`` (EVALSHA inside the transaction) instead of a second copy of
its logic in another script. A batch's plain writes (SET, PUBLISH) go in
one call of ``writes.lua`` and its successes' removals in one ``ack`` per
queue: a command per write cost the client more than the server.

On a Redis Cluster they cannot share a transaction: a message's status and
result keys are named by its uuid alone (``alsek status UUID`` finds them
without knowing the queue), so they hash to other slots than its queue, and a
callback's queue is another slot again. There the commands run one by one,
in this order, each idempotent: a result is SET NX (a rerun's is dropped), a
callback is submitted under its fixed uuid (a rerun's is skipped), a status
is the same record again, a chord's join is one script call in its
callback's slot (an index already recorded changes nothing, so the release
stays with the call that recorded the last one), and the message leaves its
queue last, so a crash at any point only makes it run again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alsek_core.ports import PARKED, Settlement
from alsek_core.result import record_names, result_channels
from alsek_core.status import status_name

Command = tuple[Any, ...]


def commands(
    settlement: Settlement, namespace: str, prefix: Callable[[str], str], sha: str
) -> list[Command]:
    """The settlement's commands; the last one is its queue step, whose reply
    says whether the lease still held."""
    return [*writes(settlement, namespace, prefix, sha), queue_step(settlement, prefix, sha)]


def writes(settlement: Settlement, namespace: str, prefix: Callable[[str], str], sha: str) -> list[Command]:
    """What the settlement writes before its queue step (result, callback,
    status, notifications, a chord member's join)."""
    out: list[Command] = []
    channels: list[str] = []

    def key(name: str) -> str:
        return f"{namespace}:{name}"

    def expiring(ttl: int | None) -> tuple[Any, ...]:
        return ("PX", ttl) if ttl is not None else ()

    result, status, callback = settlement.result, settlement.status, settlement.callback
    if result is not None:
        for name in record_names(result.uuid, result.progenitor_uuid):
            out.append(("SET", key(name), result.data, "NX", *expiring(result.ttl)))
        channels += result_channels(result.uuid, result.progenitor_uuid)
    if callback is not None:
        out.append(("EVALSHA", sha, 1, prefix(callback.queue), "submit",
                    callback.uuid, callback.priority, callback.ready_at, callback.payload))
    if status is not None:
        out.append(("SET", key(status_name(status.uuid)), status.data, *expiring(status.ttl)))
        channels.append(status_name(status.uuid))
    out += [("PUBLISH", key(channel), b"") for channel in channels]
    if (join := settlement.join) is not None:
        out.append(("EVALSHA", sha, 1, prefix(join.queue), "join", join.callback, join.index, join.size,
                    join.data, int(join.drop), PARKED))
    return out


def queue_step(settlement: Settlement, prefix: Callable[[str], str], sha: str) -> Command:
    """The message's removal, release or dead letter."""
    delivery = settlement.delivery
    message_prefix = prefix(delivery.queue)
    if settlement.ready_at is not None:
        return ("EVALSHA", sha, 1, message_prefix, "reschedule", delivery.uuid, delivery.token,
                settlement.payload or b"", settlement.ready_at)
    if settlement.dead:
        return ("EVALSHA", sha, 1, message_prefix, "dead_letter", delivery.uuid, delivery.token,
                settlement.payload or b"")
    return ("EVALSHA", sha, 1, message_prefix, "ack", delivery.uuid)


class Plain:
    """The plain writes of a batch (SET, SET NX, PUBLISH) gathered into one
    call of writes.lua, for a single Redis, where the batch is one
    transaction anyway."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.args: list[Any] = []

    def take(self, step: Command) -> bool:
        """Gather ``step`` if it is a plain write (False if not)."""
        if step[0] == "PUBLISH":
            self.keys.append(step[1])
            self.args += ["PUBLISH", step[2], ""]
        elif step[0] == "SET":
            options = step[3:]
            px = options[options.index("PX") + 1] if "PX" in options else ""
            self.keys.append(step[1])
            self.args += ["SETNX" if "NX" in options else "SET", step[2], px]
        else:
            return False
        return True

    def commands(self, sha: str) -> list[Command]:
        return [("EVALSHA", sha, len(self.keys), *self.keys, *self.args)] if self.keys else []
