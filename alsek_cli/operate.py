"""Commands for operating a deployment: ``alsek workers`` (the live pools),
``alsek metrics`` (Prometheus), ``alsek top`` (a live terminal view) and
``alsek dashboard`` (a web app). The servers and views live in ``alsek_ops``;
they are imported when their command runs, so other commands need none of
their dependencies."""

from __future__ import annotations

import json

import click

from alsek_cli.admin import _backend, _emit, _when, json_option
from alsek_cli.options import backend_option, log_level_option
from alsek_core.clock import now_ms
from alsek_core.workers import live_workers


@click.command()
@backend_option
@json_option
@log_level_option("warning")
def workers(backend: str | None, as_json: bool) -> None:
    """Live worker pools: where they run, what they consume, and how busy they are."""
    found = live_workers(_backend(backend))
    if as_json:
        click.echo(json.dumps([record.to_dict() for record in found], indent=1))
        return
    now = now_ms()
    rows = [{"id": r.id, "host": r.host, "pid": r.pid, "kind": r.kind, "queues": ", ".join(r.queues),
             "slots": r.slots, "busy": r.busy, "started": _when(r.started_at),
             "last beat": f"{(now - r.last_beat) / 1000:.0f}s ago"} for r in found]
    _emit(rows, False, "workers", "no live workers")


COMMANDS = (workers,)
