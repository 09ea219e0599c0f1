from __future__ import annotations

from alsek_core.worker.process import ProcessWorkerPool

__all__ = ["ProcessWorkerPool"]
