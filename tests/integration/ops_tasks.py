"""The tasks the ops tests run in real pools started by the CLI: outcomes of
every kind for the logs, the job history, the per-task metrics and the
traces. The job history's cap per queue comes from ``ALSEK_TEST_HISTORY_MAX``
(a test sets it small to watch the cap hold at full drain speed); with
``ALSEK_TEST_SPANS`` set, the pool's processes export their spans to that
file, one JSON object a line (an in-memory exporter cannot cross processes)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from alsek_core.broker import Broker
from alsek_core.history import Retention
from alsek_core.message import Message
from alsek_core.result import ResultStore
from alsek_core.status import StatusTracker
from alsek_core.task import task

QUEUE = "ops"
CAP = int(os.environ.get("ALSEK_TEST_HISTORY_MAX", "10000"))
SPANS = os.environ.get("ALSEK_TEST_SPANS")


class FileExporter(SpanExporter):
    """Appends each span as a line (short appends do not interleave)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with open(self.path, "a") as out:
            for span in spans:
                context, parent = span.get_span_context(), span.parent
                assert context is not None
                out.write(json.dumps({
                    "name": span.name, "kind": span.kind.name, "trace_id": context.trace_id,
                    "span_id": context.span_id, "parent_id": parent.span_id if parent else None,
                    "attributes": dict(span.attributes or {}), "status": span.status.status_code.name,
                    "events": [event.name for event in span.events],
                }) + "\n")
        return SpanExportResult.SUCCESS


if SPANS:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(FileExporter(SPANS)))
    trace.set_tracer_provider(provider)

broker = Broker(history=Retention(succeeded_max=CAP, failed_max=CAP))
results = ResultStore(broker.backend)
status = StatusTracker(broker.backend)


@task(broker, queue=QUEUE, mechanism="thread", result_store=results, status_tracker=status)
def ok(i: int) -> int:
    return i


@task(broker, queue=QUEUE, mechanism="thread", max_retries=1, status_tracker=status,
      backoff=None)
def boom(text: str) -> None:
    """Fails twice: one retry, then failed for good."""
    raise ValueError(text)


@task(broker, queue=QUEUE, mechanism="thread", result_store=results, status_tracker=status)
def die_once(marker: str) -> str:
    """Takes its process down the first time (the marker file says it did),
    so its message is delivered again once the lease ends."""
    if not Path(marker).exists():
        Path(marker).write_text("died")
        os._exit(3)
    return "second time"



@task(broker, queue=QUEUE, mechanism="thread", status_tracker=status)
def fan_out(n: int) -> None:
    """Submits ``n`` messages of ``ok`` from inside the pool."""
    broker.submit_many(Message("ok", queue=QUEUE, args=[i]) for i in range(n))
