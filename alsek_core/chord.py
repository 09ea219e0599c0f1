"""Chords: a group whose callback runs once, after every member settled, with
the members' results, in member order, as its ``previous_result``.

``chord(messages, callback)`` parks the callback in its queue (delayed for
good, see ``ports.PARKED``), then submits the members as one batch. Each
member carries its share of the chord (``Message.chord``): the callback's
queue and uuid, its index and the chord's size. When a member settles for
good (succeeds, or fails without a retry left), its settlement carries a
``ports.ChordJoin``: its outcome, recorded under its index in the same
atomic step that removes it. The step that records the last index makes the
callback ready. So:

* a member is counted once, however often it runs (a worker that died after
  recording it only makes it record the same index again, which changes
  nothing), and never lost (it is recorded in the step that removes it);
* the callback is released by one step only, and a release touches only a
  callback still parked, so it runs once (as any message does: again only if
  its own worker dies before it settles);
* the results travel in the join, not in a result store: the members' tasks
  need none, and fetching a member's result does not take it from the chord.

``on_failure``: ``"fail"`` (the default) drops the parked callback in the
step that records a member's failure, so it never runs, and the chord reads
failed; ``"pass"`` records the failure's details (``{"name", "text",
"traceback"}``, as a dead letter has them) in place of the result.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from alsek_core.broker import Broker
from alsek_core.errors import ChordFailedError, ValidationError
from alsek_core.group import Group, mark_submitted, members_of, same_broker, unsubmitted
from alsek_core.message import Message
from alsek_core.ports import ChordJoin, Listener
from alsek_core.result import result_name
from alsek_core.status import status_name
from alsek_core.task import Task
from alsek_core.waiting import WAKE_CHECK_MS, Deadline

ON_FAILURE = ("fail", "pass")


def is_callback(message: Message) -> bool:
    """Whether ``message`` is a chord's callback (its members carry an index)."""
    return message.chord is not None and "index" not in message.chord


def join_of(broker: Broker, message: Message, ok: bool, value: Any) -> ChordJoin | None:
    """A member's share of its chord's join, for the settlement of its final
    outcome; None for a message in no chord. Raises SerializationError when
    ``value`` cannot be encoded."""
    share = message.chord
    if share is None or "index" not in share:
        return None
    return ChordJoin(
        queue=share["queue"], callback=share["callback"], index=share["index"], size=share["size"],
        data=broker.serializer.dumps({"ok": ok, "value": value}),
        drop=not ok and share["on_failure"] == "fail",
    )


def gather(broker: Broker, callback: Message) -> list[Any]:
    """The members' results (or failure details), in member order."""
    assert callback.chord is not None
    size = callback.chord["size"]
    joined = broker.joined(callback)
    missing = [index for index in range(size) if index not in joined]
    if missing:  # only if someone removed the join: never run on a part of it
        raise ChordFailedError(f"{callback.summary}: {len(missing)} of {size} chord members have "
                               "no recorded outcome (its join was removed?)")
    return [broker.serializer.loads(joined[index])["value"] for index in range(size)]


class Chord:
    """A submitted chord. Made by :func:`chord`."""

    def __init__(self, members: list[tuple[Message, Task]], callback: Message, task: Task) -> None:
        self.group = Group(members)
        self.callback = callback
        self._task = task
        self.broker = task.broker

    def __len__(self) -> int:
        return len(self.group)

    def __repr__(self) -> str:
        return f"Chord({len(self)} members, callback={self.callback.summary})"

    @property
    def failed(self) -> bool:
        """Whether a member failed and the callback will not run (``on_failure="fail"``)."""
        assert self.callback.chord is not None
        if self.callback.chord["on_failure"] != "fail":
            return False
        return any(not self.broker.serializer.loads(data)["ok"]
                   for data in self.broker.joined(self.callback).values())

    @property
    def done(self) -> bool:
        """Whether the callback has settled, or was dropped with the chord failed."""
        return not self.broker.exists(self.callback)

    def wait(self, timeout: int | None = None) -> None:
        """Block until :attr:`done`; TimeoutError after ``timeout`` ms (None: no limit)."""
        deadline = Deadline(None if timeout is None else timeout / 1000)
        uuid = self.callback.uuid
        listener: Listener = self.broker.backend.listen([result_name(uuid), status_name(uuid)])
        try:
            while not self.done:
                if deadline.expired:
                    raise TimeoutError(f"{self!r} not done after {timeout} ms")
                listener.wait(deadline.remaining_ms(cap=WAKE_CHECK_MS))
        finally:
            listener.close()

    def get(self, timeout: int | None = None, keep: bool = False) -> Any:
        """The callback's result, once it has one; ChordFailedError if a member
        failed the chord. Needs a result store on the callback's task."""
        store = self._task.result_store
        if store is None:
            raise ValidationError(f"task {self._task.name!r} keeps no results (no result_store)")
        self.wait(timeout)
        if self.failed:
            raise ChordFailedError(f"{self!r}: a member failed, so the callback did not run "
                                   "(its dead letter says why: alsek dlq)")
        return store.get(self.callback, keep=keep)


def chord(messages: Iterable[Message], callback: Message, on_failure: str = "fail") -> Chord:
    """Submit ``messages`` as one batch, and ``callback`` to run once after
    every one of them settled, with their results in order as its
    ``previous_result``. All made with ``generate(submit=False)``."""
    if on_failure not in ON_FAILURE:
        raise ValidationError(f"on_failure must be one of {ON_FAILURE}, got {on_failure!r}")
    members = members_of(messages)
    task = unsubmitted(callback, "a chord's callback")
    broker = members[0][1].broker
    same_broker(task, callback, broker)
    for message in [callback] + [message for message, _ in members]:
        if message.chord is not None:
            raise ValidationError(f"{message.summary} is in a chord already")
    if any(message.uuid == callback.uuid for message, _ in members):
        raise ValidationError(f"{callback.summary} cannot be both a member and the callback")
    size = len(members)
    callback.chord = {"size": size, "on_failure": on_failure}
    for index, (message, _) in enumerate(members):
        message.chord = {"queue": callback.queue, "callback": callback.uuid, "index": index,
                         "size": size, "on_failure": on_failure}
    mark_submitted([*members, (callback, task)])
    broker.park(callback)  # first: the last member to settle releases it
    broker.submit_many(message for message, _ in members)
    return Chord(members, callback, task)
