"""OpenTelemetry tracing, a plugin (entry point ``tracing`` of the ``alsek``
group) that registers itself only where ``opentelemetry-api`` is installed;
the core never imports it. Spans go wherever the application's tracer
provider sends them (none configured: nothing is done at all).

* submit: a PRODUCER span ``alsek submit <task>``, whose context is carried
  in the message (``Message.trace_context``, W3C trace headers);
* each run: a CONSUMER span ``alsek run <task>``, a child of its submit's
  span, settling included. Every attempt of a retried message is a child of
  the same submit, with its attempt number; a callback is submitted inside
  its parent's run, so its submit (and so its run) is a child of that run.
  A message without a trace context (an untraced producer, an older
  version's payload) starts a trace of its own.

The outcome is set on the run's span (``alsek.outcome``), and a failure's
exception recorded with an error status (a retried attempt's too, without
the error status: the message is not lost).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from alsek_core.message import Message
from alsek_core.middleware import Middleware, Outcome
from alsek_core.plugins import Registry, hookimpl

try:
    from opentelemetry import propagate, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError:  # opt-in: without opentelemetry-api nothing is traced
    trace = None  # type: ignore[assignment]

TRACER = "alsek"


def _attributes(message: Message) -> dict[str, Any]:
    return {
        "messaging.system": "alsek",
        "messaging.destination.name": message.queue,
        "messaging.message.id": message.uuid,
        "alsek.task": message.task_name,
    }


def _configured() -> bool:
    """Whether the application set a tracer provider: until then every span
    would be a no-op, and the hooks skip even making them (a pool's hot path).
    The API's own answer (``get_tracer_provider``) reads the environment each
    time, some microseconds per message; the global it sets is read instead
    where this version of the API has it."""
    if hasattr(trace, "_TRACER_PROVIDER"):
        return trace._TRACER_PROVIDER is not None
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


class Tracing(Middleware):
    def __init__(self) -> None:
        self.tracer = trace.get_tracer(TRACER)

    def before_submit(self, message: Message) -> None:
        if not _configured():
            return
        carrier: dict[str, str] = {}
        with self.tracer.start_as_current_span(f"alsek submit {message.task_name}", kind=SpanKind.PRODUCER,
                                               attributes=_attributes(message)):
            propagate.inject(carrier)
        message.trace_context = carrier or None

    def running(self, message: Message) -> AbstractContextManager[None]:
        return self._run(message) if _configured() else nullcontext()

    @contextmanager
    def _run(self, message: Message) -> Iterator[None]:
        parent = propagate.extract(message.trace_context or {})
        attributes = {**_attributes(message), "alsek.attempt": message.retries + 1}
        with self.tracer.start_as_current_span(f"alsek run {message.task_name}", context=parent,
                                               kind=SpanKind.CONSUMER, attributes=attributes,
                                               record_exception=False, set_status_on_exception=False):
            yield

    def after_outcome(self, message: Message, outcome: Outcome) -> None:
        if not _configured():
            return
        span = trace.get_current_span()
        if not span.is_recording():
            return
        span.set_attribute("alsek.outcome", outcome.state)
        if outcome.exception is not None:
            span.record_exception(outcome.exception)
        if outcome.state in ("failed", "dead"):
            text = "" if outcome.exception is None else f"{type(outcome.exception).__name__}: {outcome.exception}"
            span.set_status(Status(StatusCode.ERROR, text))


@hookimpl
def alsek_register_middleware(register: Registry) -> None:
    if trace is not None:
        register.middleware(Tracing())
