"""The tasks the chaos soak's pools run (``alsek thread-pool bench/chaos_tasks.py``).

Every run writes what it did to the soak's own record (a SQLite file named by
``CHAOS_RECORD``), not to the backend under test: the soak restarts that
backend's server and kills its connections, and a record lost with them would
look like a lost task. A run records its start (with its pid and the pool that
ran it, ``CHAOS_POOL``) before doing anything, and a normal run its finish
last, so the soak can tell a run that completed from one whose worker died.

``work`` is the steady stream; every ``poison_*`` task is one of the inputs of
issue 10 that must end in the dead letters without harming its neighbours.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
import time
import uuid
from contextlib import closing

from alsek import Broker, Message, task

QUEUE = "chaos"
#: How long a poison that should time out keeps going: far past any timeout the soak sets.
OVERSTAY_S = 120.0

broker = Broker()


def record(event: str, message: Message, run_id: str, tag: str = "") -> None:
    """One row per event; a connection per row, so nothing is shared across a fork."""
    row = (message.uuid, message.task_name, event, tag, run_id, os.getpid(),
           os.environ.get("CHAOS_POOL", ""), time.time())
    with closing(sqlite3.connect(os.environ["CHAOS_RECORD"], timeout=120)) as db, db:
        db.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)


@task(broker, queue=QUEUE, mechanism="thread")
def work(ms: int, message: Message, tag: str = "") -> None:
    """``tag`` names a raw poison payload that the soak wrote as a ``work`` message."""
    run_id = uuid.uuid4().hex
    record("start", message, run_id, tag)
    time.sleep(ms / 1000)
    record("finish", message, run_id, tag)


def _poison(message: Message) -> None:
    record("start", message, uuid.uuid4().hex)


@task(broker, queue=QUEUE, mechanism="thread", max_retries=0)
def poison_exit(message: Message) -> None:
    _poison(message)
    sys.exit(3)


@task(broker, queue=QUEUE, mechanism="thread", max_retries=0)
def poison_keyboard(message: Message) -> None:
    _poison(message)
    raise KeyboardInterrupt


@task(broker, queue=QUEUE, mechanism="thread", max_retries=0)
def poison_os_exit(message: Message) -> None:
    _poison(message)
    os._exit(1)


@task(broker, queue=QUEUE, mechanism="thread", max_retries=0)
def poison_segv(message: Message) -> None:
    _poison(message)
    os.kill(os.getpid(), signal.SIGSEGV)


def _overstay() -> None:
    """Sleep in short steps, so a TimeoutError raised in the thread is seen at once."""
    deadline = time.monotonic() + OVERSTAY_S
    while time.monotonic() < deadline:
        time.sleep(0.05)


@task(broker, queue=QUEUE, mechanism="thread", max_retries=0)
def poison_timeout_thread(message: Message) -> None:
    _poison(message)
    _overstay()


@task(broker, queue=QUEUE, mechanism="process", max_retries=0)
def poison_timeout_process(message: Message) -> None:
    _poison(message)
    _overstay()
