from __future__ import annotations

from alsek_core.broker import Broker

__all__ = ["Broker"]
