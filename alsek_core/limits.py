"""What a task declares about how often and how many of its messages may run:
``rate_limit`` ("100/s", "20/m", "5/h", "100/5s"), optionally per key
(``rate_limit_key``), and ``concurrency_limit``, optionally per key
(``concurrency_key``). Checked when the task is declared, so a typo fails at
import time, not in a worker at three in the morning.

The state behind them (token buckets, running slots) lives on the backend,
so every pool on every host shares it; the worker side is
:mod:`alsek_core.worker.gate`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from alsek_core.errors import ValidationError

if TYPE_CHECKING:
    from alsek_core.message import Message

KeyFunction = Callable[["Message"], str]

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smh])\s*$")
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000}


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``count`` starts per ``period_ms``: a token bucket holding up to
    ``count`` tokens (the burst), refilled evenly at ``count / period``."""

    count: int
    period_ms: int

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        if not isinstance(text, str):
            raise ValidationError(f"rate_limit must be a str such as '100/s', got {text!r}")
        match = _RATE.match(text)
        if match is None:
            raise ValidationError(
                f"rate_limit {text!r} is not '<count>/<unit>' with a unit of s, m or h "
                "(optionally with a number before it: '100/5s')"
            )
        count, multiple, unit = int(match[1]), int(match[2] or 1), match[3]
        if count <= 0 or multiple <= 0:
            raise ValidationError(f"rate_limit {text!r} must allow a positive number per a positive period")
        return cls(count, multiple * _UNIT_MS[unit])

    @property
    def per_second(self) -> float:
        return self.count * 1000 / self.period_ms


@dataclass(frozen=True, slots=True)
class Limits:
    """A task's limits; ``key`` functions map a message to the bucket or the
    slots it shares (its tenant, say), within the task."""

    rate: RateLimit | None = None
    rate_key: KeyFunction | None = None
    concurrency: int | None = None
    concurrency_key: KeyFunction | None = None

    @classmethod
    def declare(
        cls,
        rate_limit: str | None,
        rate_limit_key: KeyFunction | None,
        concurrency_limit: int | None,
        concurrency_key: KeyFunction | None,
    ) -> Limits | None:
        """The checked limits, or None when the task declares none."""
        rate = None if rate_limit is None else RateLimit.parse(rate_limit)
        _check_key("rate_limit_key", rate_limit_key, "rate_limit", rate)
        if concurrency_limit is not None and (
            not isinstance(concurrency_limit, int) or isinstance(concurrency_limit, bool) or concurrency_limit < 1
        ):
            raise ValidationError(f"concurrency_limit must be an int >= 1, got {concurrency_limit!r}")
        _check_key("concurrency_key", concurrency_key, "concurrency_limit", concurrency_limit)
        if rate is None and concurrency_limit is None:
            return None
        return cls(rate, rate_limit_key, concurrency_limit, concurrency_key)

    def rate_bucket(self, task_name: str, message: Message) -> str:
        return _name(task_name, self.rate_key, message)

    def slot_group(self, task_name: str, message: Message) -> str:
        return _name(task_name, self.concurrency_key, message)


def _check_key(name: str, key: KeyFunction | None, needs: str, limit: object) -> None:
    if key is None:
        return
    if not callable(key):
        raise ValidationError(f"{name} must be a callable taking the message and returning a str, got {key!r}")
    if limit is None:
        raise ValidationError(f"{name} needs {needs}: it says what the key limits")


class LimitKeyError(ValidationError):
    """A task's limit key function raised, or returned something not a str:
    the message cannot be placed under its limit, so it fails."""


def _name(task_name: str, key: KeyFunction | None, message: Message) -> str:
    """``task`` or ``task:key``: limits of two tasks never share state."""
    if key is None:
        return task_name
    try:
        value = key(message)
    except Exception as exc:
        raise LimitKeyError(f"the limit key of task {task_name!r} raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(value, str):
        raise LimitKeyError(f"the limit key of task {task_name!r} returned {value!r}, not a str")
    return f"{task_name}:{value}"
