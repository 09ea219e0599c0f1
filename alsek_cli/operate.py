"""Commands for operating a deployment: ``alsek workers`` (the live pools),
``alsek metrics`` (Prometheus), ``alsek top`` (a live terminal view) and
``alsek dashboard`` (a web app). The servers and views live in ``alsek_ops``;
they are imported when their command runs, so other commands need none of
their dependencies."""

from __future__ import annotations

import json
import threading

import click

from alsek_cli.admin import _backend, _emit, _when, json_option
from alsek_cli.options import backend_option, log_level_option, option
from alsek_core.clock import now_ms
from alsek_core.redact import redact_url
from alsek_core.settings import resolve_backend_url
from alsek_core.worker.base import install_signal_handlers
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


def _until_signalled() -> threading.Event:
    """An event set by SIGTERM or SIGINT: a server command then exits 0."""
    stop = threading.Event()
    install_signal_handlers(lambda number, frame: stop.set())  # on a thread: see its docstring
    return stop


host_option = option("--host", default="127.0.0.1", show_default=True,
                           help="Address to listen on (0.0.0.0 for every interface).")


@click.command()
@option("--port", type=click.IntRange(0, 65535), default=9464, show_default=True,
              help="Port for /metrics (0: any free port, logged at start).")
@host_option
@backend_option
@log_level_option("info")
def metrics(port: int, host: str, backend: str | None) -> None:
    """Serve Prometheus gauges for every queue and live pool of a backend."""
    from alsek_ops.metrics import serve

    serve(_backend(backend), host, port, _until_signalled())


@click.command()
@option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@host_option
@option("--allow-actions", is_flag=True,
              help="Let the pages retry and purge dead letters and revoke messages (read-only without it).")
@backend_option
@log_level_option("info")
def dashboard(port: int, host: str, allow_actions: bool, backend: str | None) -> None:
    """A web dashboard: queues with live counts and a chart of the last hour,
    jobs, dead letters and workers."""
    from alsek_ops.dashboard.app import serve

    shown_url = redact_url(resolve_backend_url(cli=backend).value)  # never a password
    serve(_backend(backend), shown_url, host, port, allow_actions)


@click.command()
@option("--once", is_flag=True, help="Print one frame and exit (for scripts and tests).")
@option("--interval", type=click.FloatRange(min=0.2), default=1.0, show_default=True,
              help="Seconds between frames.")
@backend_option
@log_level_option("warning")
def top(once: bool, interval: float, backend: str | None) -> None:
    """Queues (counts, net drain rates) and live pools, redrawn every second."""
    from alsek_ops.top import Top, run

    run(Top(_backend(backend), redact_url(resolve_backend_url(cli=backend).value)), once, interval, _until_signalled())


COMMANDS = (workers, metrics, dashboard, top)
