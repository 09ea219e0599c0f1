"""``@task``: the decorator that makes a function a Task, or a TriggerTask when
given a trigger (so it lives apart from both classes, importing each)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Unpack

from alsek_core.broker import Broker
from alsek_core.errors import ValidationError
from alsek_core.task.base import Task, TaskOptions
from alsek_core.task.trigger import TriggerTask


def task(
    broker: Broker,
    name: str | None = None,
    queue: str | None = None,
    *,
    trigger: Any = None,
    base_task: type[Task] | None = None,
    **options: Unpack[TaskOptions],
) -> Callable[[Callable[..., Any]], Task]:
    """Decorate a function to make it a Task (a TriggerTask with ``trigger``);
    ``options`` are the Task's own (:class:`TaskOptions`), defaults included."""
    unknown = sorted(set(options) - TaskOptions.__optional_keys__)
    if unknown:
        raise TypeError(f"task() got unexpected keyword argument(s): {', '.join(unknown)}")
    if base_task is not None and not (isinstance(base_task, type) and issubclass(base_task, Task)):
        raise ValidationError(f"base_task must be a subclass of Task, got {base_task!r}")

    def wrapper(function: Callable[..., Any]) -> Task:
        if trigger is None:
            return (base_task or Task)(function, broker, name=name, queue=queue, **options)
        cls = (
            base_task
            if base_task is not None and issubclass(base_task, TriggerTask)
            else TriggerTask
        )
        if base_task is not None and not issubclass(base_task, TriggerTask):
            cls = type(f"Trigger{base_task.__name__}", (TriggerTask, base_task), {})
        return cls(function, broker, name=name, queue=queue, trigger=trigger, **options)

    return wrapper
