from __future__ import annotations

from alsek_core.broker import Broker
from alsek_core.message import Message
from alsek_core.task import Task, task

__all__ = ["Broker", "Message", "Task", "task"]
