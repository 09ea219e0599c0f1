"""``alsek top``: queues and live pools of a backend in the terminal,
redrawn every second. Rates are net: messages that left a queue per second
since the last frame, less those that arrived (negative: it is growing)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from alsek_core.broker import Broker
from alsek_core.clock import now_ms
from alsek_core.ports import Backend
from alsek_core.workers import live_workers


class Top:
    def __init__(self, backend: Backend, shown_url: str) -> None:
        self.broker = Broker(backend)
        self.shown_url = shown_url
        self._last: tuple[float, dict[str, int]] | None = None

    def frame(self) -> Group:
        queues = Table(title="queues", title_justify="left", expand=False)
        for column in ("queue", "ready", "delayed", "in flight", "dead", "net drain /s"):
            queues.add_column(column, justify="left" if column == "queue" else "right")
        now, live = time.monotonic(), {}
        for queue in self.broker.queues():
            counts = self.broker.counts(queue)
            live[queue] = counts.ready + counts.delayed + counts.in_flight
            rate = "-"
            if self._last is not None and now > self._last[0]:
                drained = (self._last[1].get(queue, live[queue]) - live[queue]) / (now - self._last[0])
                rate = f"{round(drained, 1) + 0.0:.1f}"  # + 0.0: never "-0.0"
            queues.add_row(queue, str(counts.ready), str(counts.delayed), str(counts.in_flight),
                           str(counts.dead), rate)
        self._last = (now, live)
        workers = Table(title="workers", title_justify="left")
        for column in ("host", "pid", "kind", "queues", "busy/slots", "last beat"):
            workers.add_column(column, justify="right" if column in ("pid", "busy/slots", "last beat") else "left")
        beat_now = now_ms()
        pools = live_workers(self.broker.backend)
        for w in pools:
            workers.add_row(w.host, str(w.pid), w.kind, ", ".join(w.queues), f"{w.busy}/{w.slots}",
                            f"{(beat_now - w.last_beat) / 1000:.0f}s ago")
        stamp = datetime.now(UTC).strftime("%H:%M:%S UTC")
        header = Text(f"alsek top · {self.shown_url} · {stamp}", style="bold")
        return Group(header, queues if live else Text("no queues yet", style="dim"), Text(""),
                     workers if pools else Text("no live workers", style="dim"))


def run(top: Top, once: bool, interval_s: float, stop: threading.Event, console: Console | None = None) -> None:
    console = console or Console()
    if once:
        console.print(top.frame())
        return
    with Live(top.frame(), console=console, auto_refresh=False, screen=False) as live:
        while not stop.wait(interval_s):
            live.update(top.frame(), refresh=True)
