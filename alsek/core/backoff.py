from __future__ import annotations

from alsek_core.backoff import (
    Backoff,
    ConstantBackoff,
    ExponentialBackoff,
    LinearBackoff,
    settings2backoff,
)

__all__ = ["Backoff", "ConstantBackoff", "ExponentialBackoff", "LinearBackoff", "settings2backoff"]
