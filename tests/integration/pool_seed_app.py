"""The seed's ``my_application.tasks`` (Tips & Tricks, "Testing"): two tasks on
an embedded store of their own, so the fixture's test isolates itself."""

from __future__ import annotations

import tempfile

from alsek import Broker, task
from alsek_core.config import backend_from_url
from alsek_core.result import ResultStore

backend = backend_from_url(f"sqlite:///{tempfile.mkdtemp(prefix='alsek-seed-app-')}")
broker = Broker(backend)
results = ResultStore(backend)


@task(broker, result_store=results)
def task_1() -> str:
    return "processed"


@task(broker, result_store=results, mechanism="thread")
def task_2(x: int) -> int:
    return 2 * x
