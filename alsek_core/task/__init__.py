"""Tasks: a function plus where and how to run it.

``@task(broker)`` turns a function into a :class:`Task` that is still callable
as before; ``generate()`` makes (and by default submits) a Message for it.
The Task itself (``base``), the scheduled kind (``trigger``) and the decorator
that picks between them (``decorator``) each have a module; this package
gathers the names users import.
"""

from __future__ import annotations

from alsek_core.task.base import Task, maker_of, nest_callbacks
from alsek_core.task.decorator import task
from alsek_core.task.trigger import FIRE_LATENESS, TriggerTask

__all__ = ["FIRE_LATENESS", "Task", "TriggerTask", "maker_of", "nest_callbacks", "task"]
