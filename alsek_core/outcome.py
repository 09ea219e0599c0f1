"""A finished message's outcome as one ``Settlement`` (see ``ports.Settlement``).

Its status and result ride in the settlement when they live in the broker's
own backend, in the backend's own home for them (``StatusTracker(backend)``,
``ResultStore(backend)``): then the backend applies outcome and removal as
one step. A store living elsewhere (another backend, a user's subclass with a
SQL table of its own) is written here first, so the order stays the one
at-least-once needs: outcome recorded, then the message removed.
"""

from __future__ import annotations

from typing import Any, cast

from alsek_core.broker import Broker, exception_details
from alsek_core.chord import join_of
from alsek_core.errors import RevokedError
from alsek_core.message import Message
from alsek_core.ports import ResultStore as ResultStorePort
from alsek_core.ports import Settlement, StatusWrite
from alsek_core.ports import StatusTracker as StatusTrackerPort
from alsek_core.result import ResultStore
from alsek_core.status import StatusTracker, TaskStatus


def _home_tracker(broker: Broker, tracker: StatusTrackerPort) -> StatusTracker | None:
    home = getattr(broker.backend, "status_tracker_class", None) or StatusTracker
    if type(tracker) is home and getattr(tracker, "backend", None) is broker.backend:
        return cast(StatusTracker, tracker)
    return None


def _home_store(broker: Broker, store: ResultStorePort) -> ResultStore | None:
    home = getattr(broker.backend, "result_store_class", None) or ResultStore
    if type(store) is home and getattr(store, "backend", None) is broker.backend:
        return cast(ResultStore, store)
    return None


def _status(broker: Broker, tracker: StatusTrackerPort | None, message: Message,
            status: TaskStatus) -> StatusWrite | None:
    if tracker is None:
        return None
    home = _home_tracker(broker, tracker)
    if home is None:
        tracker.set(message, status)
        return None
    return home.write(message, status)


def running(broker: Broker, message: Message, tracker: StatusTrackerPort | None) -> None:
    """RUNNING, best effort. A batching broker may write it later, or never
    if the outcome comes first, when the outcome's status rides in the
    settlement (its flush orders the two); a tracker writing elsewhere gets
    it at once, so that it never lands after the outcome's status there."""
    if tracker is not None:
        broker.running(tracker, message, deferrable=_home_tracker(broker, tracker) is not None)


def succeeded(broker: Broker, message: Message, tracker: StatusTrackerPort | None,
              store: ResultStorePort | None, result: Any, callback: Message | None) -> Settlement:
    """Result (raising SerializationError if it cannot be stored: nothing is
    written then), callback, SUCCEEDED, a chord member's join, removal."""
    assert message.delivery is not None
    join = join_of(broker, message, True, result)  # first: it may refuse the result
    result_write = None
    if store is not None:
        home = _home_store(broker, store)
        if home is None:
            store.set(message, result)
        else:
            result_write = home.write(message, result)
    envelope = broker.envelope(callback) if callback is not None else None
    return Settlement(message.delivery, status=_status(broker, tracker, message, TaskStatus.SUCCEEDED),
                      result=result_write, callback=envelope, join=join)


def retrying(broker: Broker, message: Message, tracker: StatusTrackerPort | None,
             exc: BaseException) -> Settlement:
    """RETRYING, then released with its retries counted, after its backoff."""
    assert message.delivery is not None
    message.exception_details = exception_details(exc)
    message.increment_retries()
    return Settlement(message.delivery, status=_status(broker, tracker, message, TaskStatus.RETRYING),
                      payload=broker.encode(message), ready_at=message.ready_at)


def failed(broker: Broker, message: Message, tracker: StatusTrackerPort | None,
           exc: BaseException) -> Settlement:
    """FAILED, then to the dead letters (or dropped, when the broker keeps none)."""
    assert message.delivery is not None
    message.exception_details = exception_details(exc)
    status = _status(broker, tracker, message, TaskStatus.FAILED)
    join = join_of(broker, message, False, message.exception_details)
    if not broker.dead_letter:
        return Settlement(message.delivery, status=status, join=join)
    return Settlement(message.delivery, status=status, payload=broker.encode_lenient(message), dead=True,
                      join=join)


def revoked(broker: Broker, message: Message, tracker: StatusTrackerPort | None) -> Settlement:
    """REVOKED, then removed: a revoked run was stopped on purpose, so it is
    neither retried nor a failure to look into among the dead letters. A
    chord member counts it as its failure (else its chord would wait for good)."""
    assert message.delivery is not None
    revocation = exception_details(RevokedError(f"{message.summary} was revoked while it ran"))
    return Settlement(message.delivery, status=_status(broker, tracker, message, TaskStatus.REVOKED),
                      join=join_of(broker, message, False, revocation))
