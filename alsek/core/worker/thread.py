from __future__ import annotations

from alsek_core.worker.thread import ThreadWorkerPool

__all__ = ["ThreadWorkerPool"]
