"""ThreadWorkerPool: process groups of threads.

Each process group is a child process with ``n_threads`` threads that claims
work only when one of its threads is free; groups are added while every
thread of every group is busy (up to ``n_processes``) and let go when idle.
Capacity: ``n_threads * n_processes``.

A revoked message that runs gets RevokedError raised in its thread and ends
REVOKED; if its thread is blocked in C and does not stop within
``REVOKED_THREAD_GRACE_S``, its group is stopped as for a 'process' timeout.

Timeouts follow the task's mechanism. A 'thread' task gets TimeoutError
raised in its thread (CPython), and if it is still running a few seconds
later its group is stopped. A 'process' task in a thread pool has no process
of its own: at its deadline its group stops taking work, its other threads
finish what they run, and then the group is stopped (so the task runs on
until they do). Give such tasks a ProcessWorkerPool (or a queue of their
own) if that matters.

``async def`` tasks do not take a thread: each process group runs up to
``n_async`` of them at once on an event loop (:mod:`alsek_core.worker.aio`),
and a timeout cancels the coroutine.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Iterable
from typing import Unpack

from alsek_core.errors import RevokedError
from alsek_core.message import Message
from alsek_core.task import Task
from alsek_core.worker.interrupt import Interruptible
from alsek_core.worker.options import PoolOptions
from alsek_core.worker.runtime import SupervisedPool

log = logging.getLogger(__name__)

DEFAULT_N_THREADS = 8


class _Slot:
    def __init__(self, local: int) -> None:
        self.local = local
        self.interruptible = Interruptible()
        self.thread: threading.Thread | None = None
        self.busy = False
        self.deadline = 0.0
        self.interrupt_on_timeout = False
        self.summary = ""


class ThreadWorkerPool(SupervisedPool):
    """``complete_only_on_thread_exit``: run each message in a thread of its
    own and count its slot busy until that thread has exited, so nothing a
    task leaves in its thread (thread-locals, a thread that ignored its
    timeout) carries over to the next message. By default threads are reused.
    ``options``: see :class:`~alsek_core.worker.options.PoolOptions`."""

    def __init__(
        self,
        tasks: Iterable[Task],
        n_threads: int = DEFAULT_N_THREADS,
        n_processes: int | None = None,
        *,
        complete_only_on_thread_exit: bool = False,
        **options: Unpack[PoolOptions],
    ) -> None:
        super().__init__(
            tasks,
            n_processes=n_processes or os.cpu_count() or 1,
            slots_per_process=n_threads,
            **options,
        )
        self.n_threads = n_threads
        self.complete_only_on_thread_exit = complete_only_on_thread_exit
        self._slots: list[_Slot] = []

    def start_engine(self) -> None:
        self._slots = [_Slot(i) for i in range(self.sync_slots)]
        self._inbox: queue.SimpleQueue[tuple[Task, Message]] = queue.SimpleQueue()
        if not self.complete_only_on_thread_exit:
            for slot in self._slots:
                slot.thread = threading.Thread(target=self._serve, args=(slot,),
                                               name=f"alsek-slot-{slot.local}", daemon=True)
                slot.thread.start()

    def _available(self, slot: _Slot) -> bool:
        if slot.busy:
            return False
        return not (self.complete_only_on_thread_exit and slot.thread is not None and slot.thread.is_alive())

    def free_slots(self) -> int:
        return self._free_threads() + self.coroutine_slots()

    def _free_threads(self) -> int:
        if not self._slots:
            return 0  # no plain task: the threads are not started
        idle = sum(1 for slot in self._slots if self._available(slot))
        if self.complete_only_on_thread_exit:
            return idle
        waiting = self._inbox.qsize()
        if waiting and waiting > self._low_water():
            return 0  # enough is queued here: claim again in a batch, not one by one
        return max(0, idle + self.holdings.claim_ahead(self.n_threads) - waiting)

    def submit_to_executor(self, task: Task, message: Message) -> None:
        if self.submit_coroutine(task, message):
            return
        if not self.complete_only_on_thread_exit:
            self._inbox.put((task, message))  # the next free thread takes it
            return
        slot = next(s for s in self._slots if self._available(s))
        slot.busy = True  # taken now, so the next free_slots() does not count it
        slot.thread = threading.Thread(target=self._run_one, args=(slot, task, message),
                                       name=f"alsek-slot-{slot.local}", daemon=True)
        slot.thread.start()

    def _serve(self, slot: _Slot) -> None:
        while True:
            task, message = self._inbox.get()
            slot.busy = True
            self._run_one(slot, task, message)

    def _run_one(self, slot: _Slot, task: Task, message: Message) -> None:
        assert message.delivery is not None
        slot.interruptible.reset()
        slot.deadline = time.monotonic() + message.timeout / 1000
        slot.interrupt_on_timeout = message.mechanism == "thread"
        slot.summary = message.summary
        self.begin_slot(slot.local, message.delivery, message.timeout, terminate=message.mechanism == "process")
        try:
            self.execute(task, message, slot.interruptible)
        finally:
            self.end_slot(slot.local)
            slot.busy = False
            if self.complete_only_on_thread_exit or self._inbox.qsize() <= self._low_water():
                self.slot_freed()

    def _low_water(self) -> int:
        return self.holdings.claim_ahead(self.n_threads) // 2

    def stop_slot(self, local: int) -> None:
        slot = self._slots[local]
        if slot.busy and slot.interruptible.interrupt(RevokedError):
            log.info("%s was revoked: RevokedError raised in its thread", slot.summary)

    def watch(self) -> None:
        super().watch()
        now = time.monotonic()
        for slot in self._slots:
            if slot.busy and slot.interrupt_on_timeout and now > slot.deadline and slot.interruptible.interrupt():
                log.warning("%s ran past its timeout: TimeoutError raised in its thread", slot.summary)
