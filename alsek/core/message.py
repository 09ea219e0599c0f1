from __future__ import annotations

from alsek_core.message import Message

__all__ = ["Message"]
