"""Huey with its result store on (RedisHuey keeps results by default; a task
returning None stores nothing, so this one returns True)."""
from common import REDIS_URL, mark_done, timed
from huey import RedisHuey

huey = RedisHuey("bench-results", url=REDIS_URL)


@huey.task()
def stored():
    mark_done()
    return True


def enqueue_single(n):
    huey.storage.conn.ping()
    return timed(lambda: [stored() for _ in range(n)])


enqueue_bulk = None
