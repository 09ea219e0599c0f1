from __future__ import annotations

from alsek_core.errors import (
    AlsekError,
    MessageAlreadyExistsError,
    MessageDoesNotExistError,
    MessageExpiredError,
    MessageInFlightError,
    RevokedError,
    SchedulingError,
    ValidationError,
)

#: Alsek's spelling.
MessageDoesNotExistsError = MessageDoesNotExistError

__all__ = [
    "AlsekError",
    "MessageAlreadyExistsError",
    "MessageDoesNotExistError",
    "MessageDoesNotExistsError",
    "MessageExpiredError",
    "MessageInFlightError",
    "RevokedError",
    "SchedulingError",
    "ValidationError",
]
