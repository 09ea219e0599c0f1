"""Contract: revocation, which every backend supports through its key-value
methods. A revoked queued or delayed message never runs; it is dead-lettered
as revoked, whichever process revoked it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alsek_core.broker import Broker
from alsek_core.errors import RevokedError
from alsek_core.message import Message
from alsek_core.ports import Backend
from alsek_core.status import StatusTracker, TaskStatus
from alsek_core.task import Task
from alsek_core.testing.runner import run_until_empty


def recording_task(broker: Broker, ran: list[Any], **options: Any) -> Task:
    def job(i: int) -> int:
        ran.append(i)
        return i

    return Task(job, broker, queue="revocations", **options)


def dead_letter_reason(broker: Broker, message: Message) -> str | None:
    details = broker.sync(message).exception_details if broker.in_dlq(message) else None
    return None if details is None else str(details["name"])


class RevocationContract:
    def test_a_revoked_queued_message_never_runs(
        self, backend: Backend, backend_factory: Callable[[], Backend]
    ) -> None:
        ran: list[Any] = []
        broker = Broker(backend)
        job = recording_task(broker, ran)
        kept, revoked = job.generate(args=[1]), job.generate(args=[2])
        assert not broker.refuses(revoked)  # this process has read the revocations now
        elsewhere = backend_factory()  # as another process would: by uuid only
        try:
            Broker(elsewhere).revoke(revoked.uuid)
        finally:
            close = getattr(elsewhere, "close", None)
            if close is not None:
                close()
        assert broker.is_revoked(revoked) and not broker.is_revoked(kept)
        run_until_empty([job])
        assert ran == [1]
        assert dead_letter_reason(broker, revoked) == RevokedError.__name__

    def test_a_revoked_delayed_message_never_runs(self, backend: Backend) -> None:
        ran: list[Any] = []
        broker = Broker(backend)
        job = recording_task(broker, ran)
        later = job.generate(args=[1], delay=300)
        job.revoke(later)
        assert job.is_revoked(later)
        run_until_empty([job])
        assert ran == [] and dead_letter_reason(broker, later) == RevokedError.__name__

    def test_replaying_a_revoked_message_runs_it(self, backend: Backend) -> None:
        ran: list[Any] = []
        broker = Broker(backend)
        job = recording_task(broker, ran)
        message = job.generate(args=[1])
        broker.revoke(message)
        run_until_empty([job])
        broker.replay(broker.sync(message))
        assert not broker.is_revoked(message)
        run_until_empty([job])
        assert ran == [1] and not broker.in_dlq(message)

    def test_revoking_ends_the_tracked_status_and_spares_finished_work(self, backend: Backend) -> None:
        ran: list[Any] = []
        broker, tracker = Broker(backend), StatusTracker(backend)
        job = recording_task(broker, ran, status_tracker=tracker)
        done = job.generate(args=[1])
        run_until_empty([job])
        waiting = job.generate(args=[2])
        job.revoke(waiting)
        job.revoke(done)  # already SUCCEEDED: left alone
        assert tracker.get(waiting) == TaskStatus.FAILED
        assert waiting.exception_details is not None
        assert waiting.exception_details["name"] == RevokedError.__name__
        assert tracker.get(done) == TaskStatus.SUCCEEDED and not job.is_revoked(done)
        run_until_empty([job])
        assert ran == [1] and tracker.get(waiting) == TaskStatus.FAILED
