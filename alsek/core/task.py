from __future__ import annotations

from alsek_core.task import Task, TriggerTask, task

__all__ = ["Task", "TriggerTask", "task"]
