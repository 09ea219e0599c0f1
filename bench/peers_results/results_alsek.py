"""alsek with a status tracker and a result store on the task (the tour's
stores, on the broker's own backend); run by bench/peers_results.py under the
project's interpreter. ALSEK_BENCH_MECHANISM: thread (thread-pool) or process."""
import os

from common import REDIS_URL, mark_done, timed

from alsek_core.broker import Broker
from alsek_core.config import backend_from_url
from alsek_core.result import ResultStore
from alsek_core.status import StatusTracker
from alsek_core.task import task

backend = backend_from_url(REDIS_URL + ("&" if "?" in REDIS_URL else "?") + "namespace=bench-results")
broker = Broker(backend)


@task(broker, queue="bench-results", mechanism=os.environ.get("ALSEK_BENCH_MECHANISM", "thread"),
      status_tracker=StatusTracker(backend), result_store=ResultStore(backend))
def stored() -> bool:
    mark_done()
    return True


def enqueue_single(n):
    broker.counts("bench-results")  # connected before the clock starts
    return timed(lambda: [stored.generate() for _ in range(n)])


enqueue_bulk = None
