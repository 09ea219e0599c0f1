from __future__ import annotations

from alsek_core.lock import Lock

__all__ = ["Lock"]
