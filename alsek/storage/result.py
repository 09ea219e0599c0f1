from __future__ import annotations

from alsek_core.result import ResultStore

__all__ = ["ResultStore"]
