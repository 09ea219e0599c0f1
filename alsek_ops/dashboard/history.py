"""Queue counts sampled by the dashboard's process every ``INTERVAL_S`` for
the last hour: what the queues page plots. Kept in memory only (a restart
starts a new hour), so the dashboard writes nothing to the backend."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

from alsek_core.broker import Broker

log = logging.getLogger(__name__)

INTERVAL_S = 5.0
KEEP_S = 3600.0


@dataclass(frozen=True, slots=True)
class Sample:
    at: float  # time.time()
    live: dict[str, int]  # ready + delayed + in flight, per queue
    dead: dict[str, int]


class History:
    def __init__(self, broker: Broker, interval_s: float = INTERVAL_S) -> None:
        self.broker = broker
        self.interval_s = interval_s
        self.samples: deque[Sample] = deque(maxlen=int(KEEP_S / interval_s) + 1)
        self._stop = threading.Event()
        self._failing = False
        self._thread = threading.Thread(target=self._run, name="alsek-dashboard-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def sample(self) -> None:
        live, dead = {}, {}
        for queue in self.broker.queues():
            counts = self.broker.counts(queue)
            live[queue] = counts.ready + counts.delayed + counts.in_flight
            dead[queue] = counts.dead
        self.samples.append(Sample(time.time(), live, dead))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample()
                self._failing = False
            except Exception as exc:  # the backend is down: the plot shows a gap
                if not self._failing:
                    log.warning("cannot sample the queues: %s: %s", type(exc).__name__, exc)
                self._failing = True
            self._stop.wait(self.interval_s)

    def seen(self) -> set[str]:
        """Every queue sampled in the last hour."""
        return {queue for sample in list(self.samples) for queue in sample.live}

    def net_rates(self, window_s: float = 60.0) -> dict[str, float]:
        """Messages per second that left each queue over the last ``window_s``,
        net of those that arrived (positive: draining; negative: growing)."""
        samples = list(self.samples)
        if len(samples) < 2:
            return {}
        last = samples[-1]
        first = next((s for s in samples if last.at - s.at <= window_s), samples[0])
        elapsed = last.at - first.at
        if elapsed <= 0:
            return {}
        queues = {q for s in samples if s.at >= first.at for q in s.live}
        # round, then + 0.0: a rate that rounds to zero shows as 0.0, not -0.0
        return {q: round((first.live.get(q, 0) - last.live.get(q, 0)) / elapsed, 1) + 0.0 for q in queues}
