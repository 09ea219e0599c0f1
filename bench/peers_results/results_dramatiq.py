"""Dramatiq with the Results middleware (Redis result backend), store_results on."""
import dramatiq
from common import REDIS_URL, mark_done, timed
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

broker = RedisBroker(url=REDIS_URL)
broker.add_middleware(Results(backend=RedisBackend(url=REDIS_URL)))
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="bench-results", max_retries=0, store_results=True)
def stored():
    mark_done()
    return True


def enqueue_single(n):
    broker.client.ping()
    return timed(lambda: [stored.send() for _ in range(n)])


enqueue_bulk = None
