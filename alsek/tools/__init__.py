from __future__ import annotations

from alsek_core.result_pool import ResultPool

__all__ = ["ResultPool"]
