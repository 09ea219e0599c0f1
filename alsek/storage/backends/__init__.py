from __future__ import annotations

from alsek_core.backend import Backend
from alsek_core.lazy import LazyClient

__all__ = ["Backend", "LazyClient"]
