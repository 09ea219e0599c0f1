"""Tasks the dashboard test runs in a real pool (``alsek thread-pool``)."""

from __future__ import annotations

import time
from pathlib import Path

from alsek_core.broker import Broker
from alsek_core.result import store_for
from alsek_core.status import tracker_for
from alsek_core.task import task

QUEUE = "dash"

broker = Broker()
# Each backend's own stores: the ones `alsek result` / `alsek status` and the dashboard read.
results = store_for(broker.backend)
status = tracker_for(broker.backend)


@task(broker, queue=QUEUE, max_retries=0, result_store=results, status_tracker=status)
def flaky(flag: str) -> str:
    """Fails until the file ``flag`` exists: a dead letter that a retry fixes."""
    if not Path(flag).exists():
        raise RuntimeError(f"the flag {flag} is not set yet")
    return "fixed"


@task(broker, queue=QUEUE, result_store=results, status_tracker=status)
def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds
