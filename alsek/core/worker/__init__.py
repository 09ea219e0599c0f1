from __future__ import annotations

from alsek_core.worker import BaseWorkerPool, ProcessWorkerPool, ThreadWorkerPool, WorkerPool

__all__ = ["BaseWorkerPool", "ProcessWorkerPool", "ThreadWorkerPool", "WorkerPool"]
