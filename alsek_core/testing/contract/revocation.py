"""Contract: revocation, which every backend supports through its key-value
methods. A revoked queued or delayed message never runs; it is dead-lettered
as revoked, whichever process revoked it. A revoked run that its pool stops
(RevokedError raised in it) ends REVOKED and leaves its queue. Where the
backend pushes, a revoke wakes whoever follows the revocations."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from alsek_core.broker import Broker
from alsek_core.errors import RevokedError
from alsek_core.message import Message
from alsek_core.ports import Backend
from alsek_core.status import StatusTracker, TaskStatus
from alsek_core.task import Task
from alsek_core.testing.runner import run_until_empty
from alsek_core.waiting import PollingListener


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

    def test_a_revoked_run_that_is_stopped_ends_revoked_and_leaves_its_queue(self, backend: Backend) -> None:
        broker, tracker = Broker(backend), StatusTracker(backend)

        def job(revoked: bool, message: Message) -> None:
            if revoked:
                broker.revoke(message)
            raise RevokedError("what a pool raises in the thread of a revoked run")

        stopped = Task(job, broker, queue="revocations", max_retries=0, status_tracker=tracker)
        revoked, impostor = stopped.generate(args=[True]), stopped.generate(args=[False])
        run_until_empty([stopped])
        assert tracker.get(revoked) == TaskStatus.REVOKED and stopped.is_revoked(revoked)
        assert not broker.in_dlq(revoked) and not broker.contains("revocations", revoked.uuid)
        # Raised by a task whose message nobody revoked: a failure like any other.
        assert tracker.get(impostor) == TaskStatus.FAILED
        assert dead_letter_reason(broker, impostor) == RevokedError.__name__

    def test_a_revoke_wakes_its_followers_where_the_backend_pushes(
        self, backend: Backend, backend_factory: Callable[[], Backend]
    ) -> None:
        broker = Broker(backend)
        probe = backend.listen(["probe"])
        pushes = not isinstance(probe, PollingListener)
        probe.close()
        woken, stop = threading.Event(), threading.Event()
        follower = threading.Thread(target=broker.follow_revocations, args=(stop, woken.set), daemon=True)
        follower.start()
        message = recording_task(broker, []).generate(args=[1])
        elsewhere = backend_factory()
        try:
            if not pushes:  # nothing to follow: the view's age bounds the delay
                follower.join(10)
                assert not follower.is_alive()
            for _ in range(50):  # the follower may not be listening yet: revoke until it hears
                Broker(elsewhere).revoke(message.uuid)
                if not pushes or woken.wait(0.1):
                    break
            assert woken.is_set() or not pushes
            assert broker.revoked_among([message.uuid, "another"]) == {message.uuid}
        finally:
            stop.set()
            follower.join(10)
            close = getattr(elsewhere, "close", None)
            if close is not None:
                close()
