"""Iterate over the results of many messages: as they complete (``istream``)
or in the order given (``stream``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from alsek_core.message import Message
from alsek_core.result import ResultStore, result_name
from alsek_core.waiting import WAKE_CHECK_MS, Deadline


class ResultPool:
    def __init__(self, result_store: ResultStore) -> None:
        self.result_store = result_store

    def istream(
        self,
        *messages: Message,
        timeout: int | None = None,
        keep: bool = False,
        with_metadata: bool = False,
        descendants: bool = False,
    ) -> Iterator[tuple[Message, Any]]:
        """(message, result) pairs as results arrive; TimeoutError if ``timeout``
        ms pass with some still missing (None: wait as long as it takes)."""
        pending = list(messages)
        deadline = Deadline(None if timeout is None else timeout / 1000)
        store = self.result_store
        listener = store.backend.listen([result_name(m.uuid) for m in pending])
        try:
            while pending:
                ready = [m for m in pending if store.exists(m, descendants=descendants)]
                for message in ready:
                    pending.remove(message)
                    yield (
                        message,
                        store.get(
                            message, keep=keep, with_metadata=with_metadata, descendants=descendants
                        ),
                    )
                if not pending:
                    return
                if deadline.expired:
                    raise TimeoutError(f"{len(pending)} result(s) still missing after {timeout} ms")
                if not ready:
                    listener.wait(deadline.remaining_ms(cap=WAKE_CHECK_MS))
        finally:
            listener.close()

    def stream(self, *messages: Message, **options: Any) -> Iterator[tuple[Message, Any]]:
        """Like ``istream``, but yields in the order the messages were given."""
        results: dict[str, Any] = {}
        order = iter(messages)
        following = next(order, None)
        for message, result in self.istream(*messages, **options):
            results[message.uuid] = result
            while following is not None and following.uuid in results:
                yield following, results.pop(following.uuid)
                following = next(order, None)
