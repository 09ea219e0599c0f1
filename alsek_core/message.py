"""The message: everything a worker on any host needs to run one task once.

``data`` is what is stored; everything else (ready_at, ttr, ...) is derived
from it. A message that was claimed also carries its lease (``delivery``),
which is never stored.
"""

from __future__ import annotations

import copy
import os
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from alsek_core.backoff import ExponentialBackoff, settings2backoff
from alsek_core.clock import now_ms
from alsek_core.errors import UnknownFieldError, ValidationError
from alsek_core.ports import Delivery

if TYPE_CHECKING:
    from alsek_core.lock import Lock

DEFAULT_QUEUE = "alsek_queue"
DEFAULT_TIMEOUT = 3_600_000
MECHANISMS = ("process", "thread")
QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,200}$")

FIELDS = (
    "task_name",
    "queue",
    "args",
    "kwargs",
    "priority",
    "metadata",
    "exception_details",
    "result_ttl",
    "uuid",
    "progenitor_uuid",
    "retries",
    "timeout",
    "created_at",
    "updated_at",
    "delay",
    "previous_result",
    "previous_message_uuid",
    "callback_message_data",
    "backoff_settings",
    "mechanism",
    "expires_at",
    "unique_key",
    "rate_token_at",
    "chord",
    "trace_context",
)


def new_uuid() -> str:
    """A random (version 4) UUID as text; ``str(uuid.uuid4())`` costs twice as
    much, and a batch submit makes one per message."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def validate_queue_name(queue: str) -> str:
    if not isinstance(queue, str) or not QUEUE_NAME.match(queue):
        raise ValidationError(
            f"invalid queue name {queue!r}: use 1-200 letters, digits, '_', '.' or '-'"
        )
    return queue


#: What a message built without backoff settings retries with, as in Alsek:
#: a Message made by hand backs off like a task's default.
DEFAULT_BACKOFF_SETTINGS = ExponentialBackoff().settings


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


#: A chord member's share, and a chord callback's (see alsek_core/chord.py).
CHORD_MEMBER = {"queue": str, "callback": str, "index": int, "size": int, "on_failure": str}
CHORD_CALLBACK = {"size": int, "on_failure": str}


def checked_chord(chord: Any) -> dict[str, Any]:
    """A message's ``chord`` field as ``chord()`` writes it, or a clear error:
    a worker settling a member trusts its shape."""
    shape = CHORD_MEMBER if isinstance(chord, dict) and "index" in chord else CHORD_CALLBACK
    if (not isinstance(chord, dict) or chord.keys() != shape.keys()
            or not all(isinstance(chord[k], t) and not isinstance(chord[k], bool) for k, t in shape.items())
            or chord["on_failure"] not in ("fail", "pass") or chord["size"] < 1
            or not 0 <= chord.get("index", 0) < chord["size"]):
        raise ValidationError(f"chord must be what chord() sets on its messages, got {chord!r}")
    return chord


class Message:
    def __init__(
        self,
        task_name: str,
        queue: str | None = None,
        args: list[Any] | tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        priority: int = 0,
        metadata: dict[str, Any] | None = None,
        exception_details: dict[str, Any] | None = None,
        result_ttl: int | None = None,
        uuid: str | None = None,
        progenitor_uuid: str | None = None,
        retries: int = 0,
        timeout: int = DEFAULT_TIMEOUT,
        created_at: int | None = None,
        updated_at: int | None = None,
        delay: int | None = None,
        previous_result: Any = None,
        previous_message_uuid: str | None = None,
        callback_message_data: dict[str, Any] | None = None,
        backoff_settings: dict[str, Any] | None = None,
        mechanism: str = "process",
        expires_at: int | None = None,
        unique_key: str | None = None,
        rate_token_at: int | None = None,
        chord: dict[str, Any] | None = None,
        trace_context: dict[str, str] | None = None,
    ) -> None:
        # Plain ifs, not a helper taking the message: the messages are only
        # formatted on failure, and this runs once per message submitted.
        if not (isinstance(task_name, str) and task_name):
            raise ValidationError(f"task_name must be a non-empty str, got {task_name!r}")
        self.task_name = task_name
        self.queue = validate_queue_name(queue or DEFAULT_QUEUE)
        if not (args is None or isinstance(args, (list, tuple))):
            raise ValidationError(f"args must be a tuple or list, got {type(args).__name__}")
        self.args = tuple(args or ())
        if not (kwargs is None or isinstance(kwargs, dict)):
            raise ValidationError(f"kwargs must be a dict, got {type(kwargs).__name__}")
        self.kwargs = dict(kwargs or {})
        if not _is_int(priority):
            raise ValidationError(
                f"priority must be an int, got {type(priority).__name__} {priority!r}"
            )
        self.priority = priority
        if not (metadata is None or isinstance(metadata, dict)):
            raise ValidationError(f"metadata must be a dict, got {type(metadata).__name__}")
        self.metadata = metadata
        self.exception_details = exception_details
        if not (result_ttl is None or (_is_int(result_ttl) and result_ttl > 0)):
            raise ValidationError(
                f"result_ttl must be a positive int (ms) or None, got {result_ttl!r}"
            )
        self.result_ttl = result_ttl
        self.uuid = str(uuid or new_uuid())
        self.progenitor_uuid = progenitor_uuid
        if not (_is_int(retries) and retries >= 0):
            raise ValidationError(f"retries must be an int >= 0, got {retries!r}")
        self.retries = retries
        if not (_is_int(timeout) and timeout > 0):
            raise ValidationError(f"timeout must be a positive int (ms), got {timeout!r}")
        self.timeout = timeout
        self.created_at = created_at if created_at is not None else now_ms()
        self.updated_at = updated_at if updated_at is not None else self.created_at
        delay = 0 if delay is None else delay
        if not (_is_int(delay) and delay >= 0):
            raise ValidationError(f"delay must be an int >= 0 (ms), got {delay!r}")
        self.delay = delay
        self.previous_result = previous_result
        self.previous_message_uuid = previous_message_uuid
        if not (callback_message_data is None or isinstance(callback_message_data, dict)):
            raise ValidationError("callback_message_data must be a dict (a message's data) or None")
        self.callback_message_data = callback_message_data
        if backoff_settings is None:
            backoff_settings = copy.deepcopy(DEFAULT_BACKOFF_SETTINGS)
        self.backoff_settings = backoff_settings
        self._backoff = (backoff_settings, settings2backoff(backoff_settings))  # fails now
        if mechanism not in MECHANISMS:
            raise ValidationError(f"mechanism must be one of {MECHANISMS}, got {mechanism!r}")
        self.mechanism = mechanism
        if not (expires_at is None or _is_int(expires_at)):
            raise ValidationError(f"expires_at must be an int (ms since the epoch) or None, got {expires_at!r}")
        self.expires_at = expires_at
        if not (unique_key is None or (isinstance(unique_key, str) and unique_key)):
            raise ValidationError(f"unique_key must be a non-empty str or None, got {unique_key!r}")
        #: The key this message holds while queued (see ``Task(unique_key=...)``).
        self.unique_key = unique_key
        if not (rate_token_at is None or _is_int(rate_token_at)):
            raise ValidationError(f"rate_token_at must be an int (ms since the epoch) or None, got {rate_token_at!r}")
        #: When the token its task's rate limit reserved for it is due: set
        #: when the limit delayed it, so that it runs then without another.
        self.rate_token_at = rate_token_at
        #: Set by :func:`alsek_core.chord.chord` on its members and callback.
        self.chord = chord if chord is None else checked_chord(chord)
        if not (trace_context is None or (isinstance(trace_context, dict) and all(
                isinstance(k, str) and isinstance(v, str) for k, v in trace_context.items()))):
            raise ValidationError("trace_context must be a dict of str to str (W3C trace headers) or None")
        #: Where its submit was traced (see alsek_ops.tracing); payloads of
        #: untraced producers, and of older versions, have none.
        self.trace_context = trace_context
        self.delivery: Delivery | None = None
        #: The lock this message's work holds (Alsek's ``link_lock``); kept in
        #: memory only, never stored with the message.
        self.linked_lock: Lock | None = None

    @property
    def data(self) -> dict[str, Any]:
        """Everything that is persisted: rebuild with ``Message(**data)``.
        ``trace_context`` only when there is one, so the payloads of an
        untraced deployment stay readable by versions that lack the field."""
        data = {
            "task_name": self.task_name,
            "queue": self.queue,
            "args": list(self.args),
            "kwargs": self.kwargs,
            "priority": self.priority,
            "metadata": self.metadata,
            "exception_details": self.exception_details,
            "result_ttl": self.result_ttl,
            "uuid": self.uuid,
            "progenitor_uuid": self.progenitor_uuid,
            "retries": self.retries,
            "timeout": self.timeout,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "delay": self.delay,
            "previous_result": self.previous_result,
            "previous_message_uuid": self.previous_message_uuid,
            "callback_message_data": self.callback_message_data,
            "backoff_settings": self.backoff_settings,
            "mechanism": self.mechanism,
            "expires_at": self.expires_at,
            "unique_key": self.unique_key,
            "rate_token_at": self.rate_token_at,
            "chord": self.chord,
        }
        if self.trace_context is not None:
            data["trace_context"] = self.trace_context
        return data

    @property
    def summary(self) -> str:
        return f"Message(uuid={self.uuid!r}, queue={self.queue!r}, task={self.task_name!r})"

    def get_backoff_duration(self) -> int:
        """How long (ms) the next attempt waits after a failure, given the retries so far."""
        return self.backoff_duration

    @property
    def backoff_duration(self) -> int:
        settings, backoff = self._backoff
        if settings is not self.backoff_settings:  # replaced since: look again
            self._backoff = (self.backoff_settings, settings2backoff(self.backoff_settings))
            backoff = self._backoff[1]
        return backoff.get(self.retries)

    @property
    def ready_at(self) -> int:
        """When the message may next run: ms since the epoch."""
        return self.updated_at + self.delay + self.backoff_duration

    @property
    def ttr(self) -> int:
        """Time to ready, in ms."""
        return max(self.ready_at - now_ms(), 0)

    @property
    def ready(self) -> bool:
        return self.ttr == 0

    @property
    def expired(self) -> bool:
        """Past the deadline ``Broker.submit(..., ttl=...)`` gave it: it will not run."""
        return self.expires_at is not None and now_ms() >= self.expires_at

    @property
    def descendant_uuids(self) -> list[str] | None:
        """The uuids of the callback chain that will follow this message."""
        uuids = []
        data = self.callback_message_data
        while data:
            uuids.append(data["uuid"])
            data = data.get("callback_message_data")
        return uuids or None

    def increment_retries(self) -> Message:
        """Count a failed attempt; the next one waits for the backoff only, not the delay again."""
        self.retries += 1
        self.delay = 0
        self.updated_at = now_ms()
        return self

    def increment(self) -> Message:
        """Alsek's name for :meth:`increment_retries`."""
        return self.increment_retries()

    def update(self, **data: Any) -> Message:
        """Change fields in place (stored when the message is next submitted or
        released). The values pass the same checks as a new message's, and an
        unknown name raises KeyError (as in Alsek); then nothing changes."""
        unknown = sorted(set(data) - set(FIELDS))
        if unknown:
            raise UnknownFieldError(f"Message has no field {', '.join(map(repr, unknown))}")
        checked = Message(**{**self.data, **data})
        for name in data:
            setattr(self, name, getattr(checked, name))
        return self

    def clone(self) -> Message:
        return Message(**copy.deepcopy(self.data))

    def duplicate(self, uuid: str | None = None) -> Message:
        """A copy that is a different message: same fields, a new ``uuid``
        (or the one given). Not linked to this message's lock."""
        return self.clone().update(uuid=uuid or new_uuid())

    def link_lock(self, lock: Lock, override: bool = False) -> Message:
        """Remember the lock this message's work holds, so it can be released
        with it (:meth:`unlink_lock`). One lock per message unless ``override``."""
        if self.linked_lock is not None and not override:
            raise AttributeError(f"{self.summary} is already linked to {self.linked_lock!r}")
        self.linked_lock = lock
        return self

    def unlink_lock(self, missing_ok: bool = False, release: bool = True) -> str | None:
        """Forget the linked lock, releasing it (``release``) if this owner
        holds it; returns its name. No linked lock: AttributeError unless
        ``missing_ok``."""
        lock = self.linked_lock
        if lock is None:
            if missing_ok:
                return None
            raise AttributeError(f"{self.summary} has no linked lock")
        if release:
            lock.release()
        self.linked_lock = None
        return lock.name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and self.data == other.data

    def __hash__(self) -> int:
        return hash(self.uuid)

    def __repr__(self) -> str:
        def show(name: str) -> str:
            value = getattr(self, name)
            if name in ("created_at", "updated_at"):
                value = datetime.fromtimestamp(value / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
            return f"    {name}={value!r},"

        return "Message(\n" + "\n".join(show(name) for name in FIELDS) + "\n)"
