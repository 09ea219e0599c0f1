"""Push wake-ups over Redis pub/sub: for ``listen``/``notify`` and for claims
that block until a queue's submit or reschedule publishes on it."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from redis import exceptions

#: How long to wait for Redis to confirm a subscription before giving up.
SUBSCRIBE_TIMEOUT_S = 10.0


class PubSubListener:
    """A subscription that is live when the constructor returns (Redis has
    confirmed it), so a notification sent after that is never missed."""

    def __init__(self, client: Any, channels: Iterable[str]) -> None:
        self._pubsub = client.pubsub()
        self._channels: set[str] = set()
        self._notified = False
        self.subscribe(channels)

    def subscribe(self, channels: Iterable[str]) -> None:
        """Add channels, returning once Redis has confirmed each of them."""
        new = sorted(set(channels) - self._channels)
        if not new:
            return
        self._pubsub.subscribe(*new)
        pending = len(new)
        deadline = time.monotonic() + SUBSCRIBE_TIMEOUT_S
        while pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"Redis did not confirm the subscription to {new}")
            message = self._pubsub.get_message(timeout=remaining)
            if message is None:
                continue
            if message["type"] == "subscribe":
                pending -= 1
            elif message["type"] == "message":
                self._notified = True
        self._channels.update(new)

    def drain(self) -> None:
        """Forget notifications received so far: the caller is about to look."""
        self._notified = False
        while self._pubsub.get_message(timeout=0) is not None:
            pass

    def wait(self, timeout_ms: float) -> bool:
        if self._notified:
            self._notified = False
            return True
        deadline = time.monotonic() + max(0.0, timeout_ms) / 1000
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                message = self._pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=remaining
                )
            except (exceptions.ConnectionError, exceptions.TimeoutError):
                # A notification may have been lost with the connection: have
                # the caller look again (redis-py resubscribes on the next read).
                return True
            if message is not None and message["type"] == "message":
                return True
        return False

    def close(self) -> None:
        self._pubsub.close()
