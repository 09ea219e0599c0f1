"""Groups: fan out many messages in one batch, then watch them as one.

``group(messages)`` takes messages made with ``generate(submit=False)`` (of
any tasks sharing one broker), submits them in one ``submit_many`` round trip
and returns a :class:`Group`, which says when every member has settled and
gives their results in member order.

A member has settled once its result is stored, its status is terminal, or it
has left its queue (succeeded without a result store, or dead-lettered). A
worker writes the result and the status before it removes the message, so
"gone from the queue" also means "outcome written": the last check holds for
members whose tasks keep neither results nor statuses.

Members settle in any order, but a group is done only when all have, so a
waiter looks at the first member not yet settled and moves on from there: one
read per wake-up, not one per member. It listens to the result and status
channels of the next ``WATCHED`` members on the broker's backend (pushed where
the backend can) and looks again at least every ``WAKE_CHECK_MS``, which also
covers stores on another backend and failures that notify nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from alsek_core.broker import Broker
from alsek_core.errors import GroupMemberFailedError, ValidationError
from alsek_core.message import Message
from alsek_core.ports import Listener
from alsek_core.result import result_name
from alsek_core.status import TERMINAL_STATUSES, TaskStatus, status_name
from alsek_core.task import Task, maker_of
from alsek_core.waiting import WAKE_CHECK_MS, Deadline

#: How many pending members a waiter listens to at once.
WATCHED = 256


class Group:
    """A submitted batch of messages. Made by :func:`group`."""

    def __init__(self, members: list[tuple[Message, Task]]) -> None:
        self._members = members
        self.messages = tuple(message for message, _ in members)
        self.broker = members[0][1].broker
        self._settled = 0  # members[:_settled] have all settled

    def __len__(self) -> int:
        return len(self._members)

    def __repr__(self) -> str:
        return f"Group({len(self)} messages, {self._settled} settled in order, broker={self.broker!r})"

    @property
    def done(self) -> bool:
        """Whether every member has settled (succeeded or failed for good)."""
        self._advance()
        return self._settled == len(self._members)

    def wait(self, timeout: int | None = None) -> None:
        """Block until every member has settled; TimeoutError if ``timeout`` ms
        pass first (None: wait as long as it takes)."""
        self._settle_through(len(self._members), Deadline(None if timeout is None else timeout / 1000), timeout)

    def stream(
        self, timeout: int | None = None, keep: bool = False, with_metadata: bool = False
    ) -> Iterator[tuple[Message, Any]]:
        """(message, result) pairs in member order, each as soon as it and the
        members before it have settled. Results are deleted once fetched unless
        ``keep``. A member that settled without a result raises
        GroupMemberFailedError when its turn comes; TimeoutError if ``timeout``
        ms pass with members still running."""
        unkept = sorted({task.name for _, task in self._members if task.result_store is None})
        if unkept:
            raise ValidationError(f"task(s) {', '.join(map(repr, unkept))} keep no results (no result_store)")
        deadline = Deadline(None if timeout is None else timeout / 1000)
        for index, (message, task) in enumerate(self._members):
            self._settle_through(index + 1, deadline, timeout)
            assert task.result_store is not None
            try:
                result = task.result_store.get(message, keep=keep, with_metadata=with_metadata)
            except KeyError:
                raise GroupMemberFailedError(self._no_result(message, task)) from None
            yield message, result

    @staticmethod
    def _no_result(message: Message, task: Task) -> str:
        status = task.status_tracker.get(message) if task.status_tracker is not None else None
        if status is TaskStatus.FAILED:
            return f"{message.summary} failed (its dead letter says why: alsek dlq)"
        if status is TaskStatus.REVOKED:
            return f"{message.summary} was revoked while it ran; it has no result"
        return (f"{message.summary} settled without a result: it failed, or its result "
                "was fetched already or has expired")

    @staticmethod
    def _has_settled(message: Message, task: Task) -> bool:
        if task.result_store is not None and task.result_store.exists(message):
            return True
        if task.status_tracker is not None and task.status_tracker.get(message) in TERMINAL_STATUSES:
            return True
        return not task.broker.exists(message)

    def _advance(self) -> None:
        while self._settled < len(self._members) and self._has_settled(*self._members[self._settled]):
            self._settled += 1

    def _listen(self) -> tuple[Listener, int]:
        """A listener for the next WATCHED pending members, and the index it watches up to."""
        end = min(len(self._members), self._settled + WATCHED)
        uuids = [message.uuid for message, _ in self._members[self._settled:end]]
        channels = [name(uuid) for uuid in uuids for name in (result_name, status_name)]
        return self.broker.backend.listen(channels), end

    def _settle_through(self, count: int, deadline: Deadline, timeout: int | None) -> None:
        """Until the first ``count`` members have settled."""
        listener: Listener | None = None
        watched_to = 0
        try:
            while True:
                self._advance()
                if self._settled >= count:
                    return
                if deadline.expired:
                    running = len(self._members) - self._settled
                    raise TimeoutError(f"{running} of {len(self)} group members not settled after {timeout} ms")
                if listener is None or self._settled >= watched_to:
                    if listener is not None:
                        listener.close()
                    listener, watched_to = self._listen()
                    continue  # look again now that it listens: no settle in between is missed
                listener.wait(deadline.remaining_ms(cap=WAKE_CHECK_MS))
        finally:
            if listener is not None:
                listener.close()


def members_of(messages: Iterable[Message]) -> list[tuple[Message, Task]]:
    """``messages`` with their tasks, checked: made by ``generate(submit=False)``,
    each once, all for one broker's storage (a batch goes to one broker)."""
    if isinstance(messages, Message) or not isinstance(messages, Iterable):
        raise ValidationError(f"a group takes an iterable of messages, got {messages!r}")
    members: list[tuple[Message, Task]] = []
    seen: set[str] = set()
    for message in messages:
        members.append((message, unsubmitted(message, "a group member")))
        if message.uuid in seen:
            raise ValidationError(f"{message.summary} is in the group twice")
        if message.unique_key is not None:  # a member whose key is held would never run
            raise ValidationError(f"{message.summary} is of a unique task: it cannot join a group")
        seen.add(message.uuid)
    if not members:
        raise ValidationError("a group needs at least one message")
    broker = members[0][1].broker
    for message, task in members:
        same_broker(task, message, broker)
    return members


def unsubmitted(message: Message, role: str) -> Task:
    """The task that made ``message`` with ``generate(submit=False)``."""
    if not isinstance(message, Message):
        raise ValidationError(f"{role} must be a Message, got {message!r}")
    task = maker_of(message)
    if task is None:
        raise ValidationError(
            f"{message.summary} was not made by a task's generate(submit=False); a group "
            "submits its members itself")
    return task


def same_broker(task: Task, message: Message, broker: Broker) -> None:
    if not task.broker.same_storage(broker):
        raise ValidationError(f"{message.summary} goes to {task.broker!r}, not {broker!r}: "
                              "a group is submitted as one batch, to one broker")


def mark_submitted(members: list[tuple[Message, Task]]) -> None:
    """SUBMITTED, before the submit: a fast worker's RUNNING stays the last word."""
    for message, task in members:
        if task.status_tracker is not None:
            task.status_tracker.set(message, TaskStatus.SUBMITTED)


def group(messages: Iterable[Message]) -> Group:
    """Submit ``messages`` (made with ``generate(submit=False)``) as one batch."""
    members = members_of(messages)
    mark_submitted(members)
    members[0][1].broker.submit_many(message for message, _ in members)
    return Group(members)
