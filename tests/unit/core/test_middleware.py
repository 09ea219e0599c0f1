"""Middleware: a plugin's hooks see each submit, run and outcome; one that
raises costs no message; and each outcome is told once (history entry)."""

from __future__ import annotations

import types
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest

from alsek_backends.memory.backend import MemoryBackend
from alsek_core import middleware
from alsek_core.broker import Broker
from alsek_core.message import Message
from alsek_core.middleware import Middleware, Outcome
from alsek_core.plugins import PluginHost, Registry, hookimpl
from alsek_core.task import task
from alsek_core.testing.runner import run_until_empty


class Recorder(Middleware):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def before_submit(self, message: Message) -> None:
        self.events.append(("submit", message.task_name))

    def running(self, message: Message) -> AbstractContextManager[None]:
        return self._run(message)

    @contextmanager
    def _run(self, message: Message) -> Iterator[None]:
        self.events.append(("enter", message.task_name))
        yield
        self.events.append(("exit", message.task_name))

    def after_outcome(self, message: Message, outcome: Outcome) -> None:
        self.events.append((outcome.state, outcome.attempt))


class Broken(Middleware):
    def before_submit(self, message: Message) -> None:
        raise RuntimeError("broken before_submit")

    def after_outcome(self, message: Message, outcome: Outcome) -> None:
        raise RuntimeError("broken after_outcome")


@pytest.fixture
def installed() -> Iterator[Recorder]:
    recorder, broken = Recorder(), Broken()
    middleware.install(broken)
    middleware.install(recorder)
    yield recorder
    middleware.uninstall(recorder)
    middleware.uninstall(broken)


def test_hooks_see_each_submit_run_and_outcome(installed: Recorder, caplog: pytest.LogCaptureFixture) -> None:
    broker = Broker(MemoryBackend(f"mw-{uuid.uuid4().hex}"))

    @task(broker, queue="mw", max_retries=1, backoff=None)
    def flaky(fail: bool) -> str:
        if fail:
            raise ValueError("no")
        return "yes"

    flaky.generate(args=(False,))
    flaky.generate(args=(True,))
    assert run_until_empty([flaky]) == 3
    assert installed.events == [
        ("submit", "flaky"), ("submit", "flaky"),
        ("enter", "flaky"), ("succeeded", 1), ("exit", "flaky"),
        ("enter", "flaky"), ("retried", 1), ("exit", "flaky"),
        ("enter", "flaky"), ("failed", 2), ("exit", "flaky"),
    ]
    assert "broken after_outcome" in caplog.text  # logged, and the messages settled all the same
    [failed] = broker.history("mw", "failed")
    assert failed.attempts == 2 and failed.exception is not None and failed.exception["text"] == "no"
    assert [e.state for e in broker.history("mw", "succeeded")] == ["succeeded"]


def test_a_plugin_registers_middleware() -> None:
    recorder = Recorder()

    def alsek_register_middleware(register: Registry) -> None:
        register.middleware(recorder)

    plugin = types.ModuleType("mw_plugin")
    plugin.alsek_register_middleware = hookimpl(alsek_register_middleware)  # type: ignore[attr-defined]
    host = PluginHost()
    host.register(plugin, "mw_plugin")
    assert [m for m, _ in host.registry.middlewares] == [recorder]
    host.unregister("mw_plugin")
    assert host.registry.middlewares == []
