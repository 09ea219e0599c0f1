"""Finding the part of a value a serializer refuses, so its error can say
where ("['kwargs']['limit']"), not only what: a message is a deep structure,
and "cannot encode float" alone leaves the user to search it by hand.

Only runs once encoding has already failed, so it may re-encode parts freely.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

#: Where the search stops: a structure this deep is reported at this depth.
MAX_DEPTH = 64


class Culprit:
    """The innermost refused part: its path from the top, the part itself, what
    the encoder said about it, and whether it is a mapping's key."""

    def __init__(self, path: str, value: Any, error: BaseException | None, is_key: bool) -> None:
        self.path = path
        self.value = value
        self.error = error
        self.is_key = is_key

    def describe(self, serializer: str) -> str:
        """One sentence for a SerializationError."""
        shown = f"{self.value!r:.80} ({type(self.value).__qualname__})"
        what = f"the dict key {shown}" if self.is_key else shown
        where = f" at {self.path}" if self.path else ""
        why = f": {self.error}" if self.error is not None else ""
        if isinstance(self.error, RecursionError):
            why = ": it refers to itself or is nested too deeply"
        return f"{serializer} cannot encode {what}{where}{why}"


def _parts(value: Any) -> Iterator[tuple[str, Any, bool]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield f"[{key!r:.40}]", key, True
            yield f"[{key!r:.40}]", item, False
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield f"[{index}]", item, False


def locate(encode: Callable[[Any], Any], value: Any, error: BaseException) -> Culprit:
    """The innermost part of ``value`` that ``encode`` refuses (``error`` is
    what encoding the whole of it raised). A dict key is tried as ``{key: None}``."""
    path, seen = "", {id(value)}
    for _ in range(MAX_DEPTH):
        for label, part, is_key in _parts(value):
            try:
                encode({part: None} if is_key else part)
                continue
            except Exception as exc:  # RecursionError included
                failure: BaseException = exc
            if is_key:
                return Culprit(path, part, failure, True)
            if id(part) in seen:  # a cycle: report where it closes
                return Culprit(path + label, part, RecursionError(), False)
            path, value, error = path + label, part, failure
            seen.add(id(part))
            break
        else:
            return Culprit(path, value, error, False)
    return Culprit(path, value, error, False)
