"""Stopping a thread whose task ran past its timeout, or whose message was
revoked: CPython can raise an exception in another thread
(``PyThreadState_SetAsyncExc``).

The exception is only ever aimed at user code (``pre_op``, the function,
``post_op``): a thread is interruptible inside a *window* and never while it
records an outcome, so a timeout can not tear an ack or a result write in
half. It lands when the thread next runs Python bytecode; a thread blocked in
C (a long ``time.sleep``, a socket read without timeout) only sees it when the
call returns, which is why the pools also terminate a process whose thread
stays past its deadline, or runs on after its revocation, for too long.
"""

from __future__ import annotations

import ctypes
import logging
import platform
import threading

from alsek_core.errors import TaskTimeoutError

log = logging.getLogger(__name__)

SUPPORTED = platform.python_implementation() == "CPython"


def _set_async_exc(thread_id: int, exc: type[BaseException] | None) -> int:
    target = ctypes.py_object(exc) if exc is not None else None
    return int(ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), target))


class Interruptible:
    """One slot's interrupt state: which thread is inside user code right now.
    Used as a context manager around user code (a class, not a generator:
    this runs three times per message)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread_id: int | None = None
        self.interrupted = False

    def reset(self) -> None:
        with self._lock:
            self.interrupted = False

    def __enter__(self) -> None:
        with self._lock:
            self._thread_id = threading.get_ident()

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            thread_id, self._thread_id = self._thread_id, None
            if self.interrupted and thread_id is not None and SUPPORTED:
                _set_async_exc(thread_id, None)  # not raised yet: it must not land outside

    def interrupt(self, exc: type[BaseException] = TaskTimeoutError) -> bool:
        """Raise ``exc`` in the thread if it is in user code; once per message
        (a timeout and a revocation do not both land)."""
        with self._lock:
            if self._thread_id is None or self.interrupted:
                return False
            self.interrupted = True
            if not SUPPORTED:
                log.warning("cannot interrupt a thread on %s; its process will be stopped instead",
                            platform.python_implementation())
                return False
            return _set_async_exc(self._thread_id, exc) == 1
