"""Every exception the library raises on purpose, so users can catch ours apart
from everything else (``except AlsekError``)."""

from __future__ import annotations


class AlsekError(Exception):
    """Base of every error raised by alsek on purpose."""


class ConfigError(AlsekError, ValueError):
    """A backend URL, serializer name or option that cannot be used."""


class PluginError(AlsekError):
    """A plugin that failed to load or registered something already taken."""


class KeyExistsError(AlsekError, KeyError):
    """``set(..., nx=True)`` on a name that already exists."""


class SerializationError(AlsekError, TypeError):
    """A value the serializer cannot encode, or bytes it cannot decode."""


class ValidationError(AlsekError, ValueError):
    """A message or task built with arguments that cannot work."""


class MessageAlreadyExistsError(AlsekError):
    """A message with this uuid is already queued."""


class DuplicateMessageError(MessageAlreadyExistsError):
    """A unique task's key is held by another queued message: nothing was
    queued. ``existing_uuid`` names the message that holds the key."""

    def __init__(self, text: str, existing_uuid: str) -> None:
        super().__init__(text)
        self.existing_uuid = existing_uuid

    def __reduce__(self) -> tuple[type[DuplicateMessageError], tuple[str, str]]:
        return type(self), (str(self), self.existing_uuid)


class MessageDoesNotExistError(AlsekError):
    """The message is not (or no longer) queued."""


class UnknownFieldError(AlsekError, KeyError):
    """``Message.update`` with a name that is not a message field (a KeyError,
    as Alsek raises)."""


class SchedulingError(ValidationError):
    """A trigger that cannot work: its function takes parameters, or the task
    is already scheduled."""


class RevokedError(AlsekError):
    """What a revoked message's dead-letter entry names as its failure."""


class MessageExpiredError(AlsekError):
    """What an expired message's dead-letter entry names as its failure: it
    was not claimed within the ``ttl`` it was submitted with."""


class MessageInFlightError(AlsekError):
    """A message a worker holds, which only that worker may release."""


class GroupMemberFailedError(AlsekError):
    """A group member settled without a result to give: it failed, or its
    result was fetched already or has expired."""


class TaskTimeoutError(AlsekError, TimeoutError):
    """A task that ran past its timeout: raised inside its thread, or the
    cancellation of its coroutine, or recorded when its process was stopped."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(args or ("the task ran past its timeout",)))


class ChordFailedError(AlsekError):
    """A chord whose callback will not run: a member failed (``on_failure="fail"``)."""
