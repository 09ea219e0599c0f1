"""``@task``: the decorator that makes a function a Task, or a TriggerTask when
given a trigger (so it lives apart from both classes, importing each)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alsek_core.backoff import Backoff
from alsek_core.broker import Broker
from alsek_core.errors import ValidationError
from alsek_core.message import DEFAULT_TIMEOUT
from alsek_core.ports import ResultStore, StatusTracker
from alsek_core.task.base import UNSET, Task
from alsek_core.task.trigger import TriggerTask


def task(
    broker: Broker,
    name: str | None = None,
    queue: str | None = None,
    timeout: int = DEFAULT_TIMEOUT,
    max_retries: int | None = 3,
    backoff: Backoff | None = UNSET,
    trigger: Any = None,
    mechanism: str = "process",
    priority: int = 0,
    result_store: ResultStore | None = None,
    status_tracker: StatusTracker | None = None,
    base_task: type[Task] | None = None,
) -> Callable[[Callable[..., Any]], Task]:
    """Decorate a function to make it a Task (a TriggerTask with ``trigger``)."""
    if base_task is not None and not (isinstance(base_task, type) and issubclass(base_task, Task)):
        raise ValidationError(f"base_task must be a subclass of Task, got {base_task!r}")

    def wrapper(function: Callable[..., Any]) -> Task:
        options: dict[str, Any] = dict(
            broker=broker,
            name=name,
            queue=queue,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            mechanism=mechanism,
            priority=priority,
            result_store=result_store,
            status_tracker=status_tracker,
        )
        if trigger is None:
            return (base_task or Task)(function, **options)
        cls = (
            base_task
            if base_task is not None and issubclass(base_task, TriggerTask)
            else TriggerTask
        )
        if base_task is not None and not issubclass(base_task, TriggerTask):
            cls = type(f"Trigger{base_task.__name__}", (TriggerTask, base_task), {})
        return cls(function, trigger=trigger, **options)

    return wrapper
