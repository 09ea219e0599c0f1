"""RQ with its default results (kept result_ttl=500 s); the task returns True."""
from common import REDIS_URL, mark_done, timed
from redis import Redis
from rq import Queue


def stored():
    mark_done()
    return True


def enqueue_single(n):
    q = Queue("bench-results", connection=Redis.from_url(REDIS_URL))
    q.connection.ping()
    return timed(lambda: [q.enqueue(stored) for _ in range(n)])


enqueue_bulk = None
