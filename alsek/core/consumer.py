from __future__ import annotations

from alsek_core.consumer import Consumer

__all__ = ["Consumer"]
