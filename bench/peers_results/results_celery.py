"""Celery with the Redis result backend on, results not ignored."""
from celery import Celery
from common import REDIS_URL, mark_done, timed

app = Celery("bench-results", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    task_ignore_result=False, task_default_queue="bench-results",
    broker_connection_retry_on_startup=True, worker_hijack_root_logger=False)


@app.task(name="bench.stored")
def stored():
    mark_done()
    return True


def enqueue_single(n):
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1)
    return timed(lambda: [stored.delay() for _ in range(n)])


enqueue_bulk = None
