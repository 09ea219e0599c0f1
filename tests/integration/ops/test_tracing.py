"""OpenTelemetry across a real pool: the submit's PRODUCER span here (the
SDK's in-memory exporter), the runs' CONSUMER spans in the pool's worker
process (exported to a file by ``ops_tasks.py``), joined through the
context the message carries; a callback and a retry stay in the trace, and
an ``async def`` task's run has its span as a plain task's does."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from alsek_core.broker import Broker
from alsek_core.config import backend_from_url
from alsek_core.message import Message
from alsek_core.result import ResultStore
from tests.integration.ops_harness import (
    ASYNC_TASKS,
    NO_WAIT,
    QUEUE,
    history_size,
    start_pool,
    wait_for,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    """This process's spans. A tracer provider is set once per process: the
    first test module to want one sets it, the others add to it."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    found = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(found))
    return found


def runs_in(spans_file: Path) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """Every span the pool exported, and its CONSUMER spans by message uuid."""
    spans = [json.loads(line) for line in spans_file.read_text().splitlines()]
    runs: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        if span["kind"] == "CONSUMER":
            runs.setdefault(span["attributes"]["messaging.message.id"], []).append(span)
    return spans, runs


def test_a_trace_runs_from_the_submit_through_the_pool(redis_url: str, tmp_path: Path,
                                                       exporter: InMemorySpanExporter) -> None:
    broker = Broker(backend_from_url(redis_url))
    exporter.clear()
    follow_up = Message("ok", queue=QUEUE, args=[2])
    first = broker.submit(Message("ok", queue=QUEUE, args=[1], callback_message_data=follow_up.data))
    bad = broker.submit(Message("boom", queue=QUEUE, args=["kaput"], backoff_settings=NO_WAIT))
    assert first.trace_context and "traceparent" in first.trace_context
    produced = {span.attributes["messaging.message.id"]: span for span in exporter.get_finished_spans()
                if span.attributes is not None}
    assert {produced[first.uuid].name, produced[bad.uuid].name} == {"alsek submit ok", "alsek submit boom"}

    spans_file = tmp_path / "spans.jsonl"
    log = tmp_path / "pool.log"
    pool = start_pool(redis_url, log, env={**os.environ, "ALSEK_TEST_SPANS": str(spans_file)})
    try:
        wait_for(lambda: (history_size(broker.backend, "succeeded"), history_size(broker.backend, "failed")) == (2, 1),
                 "the three runs", log)
    finally:
        pool.terminate()
        assert pool.wait(60) == 0, log.read_text()
    spans, runs = runs_in(spans_file)

    [run] = runs[first.uuid]
    producer = produced[first.uuid].get_span_context()
    assert run["name"] == "alsek run ok" and run["attributes"]["alsek.outcome"] == "succeeded"
    assert (run["trace_id"], run["parent_id"]) == (producer.trace_id, producer.span_id)
    [callback_submit] = [s for s in spans
                         if s["kind"] == "PRODUCER" and s["attributes"]["messaging.message.id"] == follow_up.uuid]
    assert (callback_submit["trace_id"], callback_submit["parent_id"]) == (run["trace_id"], run["span_id"])
    [callback_run] = runs[follow_up.uuid]
    assert (callback_run["trace_id"], callback_run["parent_id"]) == (run["trace_id"], callback_submit["span_id"])

    attempts = sorted(runs[bad.uuid], key=lambda s: s["attributes"]["alsek.attempt"])
    producer = produced[bad.uuid].get_span_context()
    assert [s["attributes"]["alsek.outcome"] for s in attempts] == ["retried", "failed"]
    assert all((s["trace_id"], s["parent_id"]) == (producer.trace_id, producer.span_id) for s in attempts)
    assert [s["status"] for s in attempts] == ["UNSET", "ERROR"]
    assert all("exception" in s["events"] for s in attempts)


def test_an_async_run_has_its_consumer_span(redis_url: str, tmp_path: Path, exporter: InMemorySpanExporter) -> None:
    """The coroutine runs inside its span, and so does its settle (on an I/O
    thread): the outcome is on the span and the callback's submit is its child."""
    backend = backend_from_url(redis_url)
    broker = Broker(backend)
    exporter.clear()
    follow_up = Message("async_span", queue=QUEUE, args=[2])
    first = broker.submit(Message("async_span", queue=QUEUE, args=[1], callback_message_data=follow_up.data))
    bad = broker.submit(Message("async_boom", queue=QUEUE, args=["kaput"]))
    produced = {span.attributes["messaging.message.id"]: span for span in exporter.get_finished_spans()
                if span.attributes is not None}

    spans_file = tmp_path / "spans.jsonl"
    log = tmp_path / "pool.log"
    pool = start_pool(redis_url, log, env={**os.environ, "ALSEK_TEST_SPANS": str(spans_file)}, tasks=ASYNC_TASKS)
    try:
        wait_for(lambda: (history_size(backend, "succeeded"), history_size(backend, "failed")) == (2, 1),
                 "the three runs", log)
    finally:
        pool.terminate()
        assert pool.wait(60) == 0, log.read_text()
    spans, runs = runs_in(spans_file)

    [run] = runs[first.uuid]
    producer = produced[first.uuid].get_span_context()
    assert run["name"] == "alsek run async_span" and run["attributes"]["alsek.outcome"] == "succeeded"
    assert (run["trace_id"], run["parent_id"]) == (producer.trace_id, producer.span_id)
    assert ResultStore(backend).get(first) == run["span_id"], "the coroutine ran inside its span"
    [callback_submit] = [s for s in spans
                         if s["kind"] == "PRODUCER" and s["attributes"]["messaging.message.id"] == follow_up.uuid]
    assert (callback_submit["trace_id"], callback_submit["parent_id"]) == (run["trace_id"], run["span_id"])
    [callback_run] = runs[follow_up.uuid]
    assert (callback_run["trace_id"], callback_run["parent_id"]) == (run["trace_id"], callback_submit["span_id"])

    [failed] = runs[bad.uuid]
    producer = produced[bad.uuid].get_span_context()
    assert (failed["trace_id"], failed["parent_id"]) == (producer.trace_id, producer.span_id)
    assert failed["attributes"]["alsek.outcome"] == "failed" and failed["status"] == "ERROR"
    assert "exception" in failed["events"]
