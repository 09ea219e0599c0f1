"""Forking worker processes out of a program that does other things: a pool
may be started next to threads of the host's own (producers, a web server)
that use the very same backend objects, their connections and their locks.

A forked child must touch none of what it inherited in use: a socket it
shares with its parent (a reply read by the wrong process), or a lock some
other thread held at the moment of the fork (held for good in the child).
Closing the host's connections before each fork, as pools once did, breaks
the host's threads instead. So the supervisor makes unconnected copies of
every backend its tasks use, once, before it forks anything and without
using them; each worker process swaps them in before it does anything else.
The host's objects are never touched, in the host or in a child.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from alsek_core.task import Task

log = logging.getLogger(__name__)


def owners(tasks: Iterable[Task], *more: object) -> list[Any]:
    """Everything of the tasks' (and ``more``) that holds a backend."""
    found = [*more]
    for task in tasks:
        found += [task.broker, task.result_store, task.status_tracker]
    return [owner for owner in found if getattr(owner, "backend", None) is not None]


def unconnected_copies(holders: Iterable[Any]) -> dict[int, Any]:
    """A copy of each distinct backend, built from its settings (a backend
    copies as it pickles: its settings, never its connections), by the id of
    the original. A backend that cannot be copied is left out: its children
    then use it as inherited, relying on its own fork checks."""
    copies: dict[int, Any] = {}
    for holder in holders:
        backend = holder.backend
        if id(backend) in copies:
            continue
        try:
            copies[id(backend)] = copy.deepcopy(backend)
        except Exception as exc:
            log.debug("%r cannot be copied for worker processes (%s); they inherit it", backend, exc)
    return copies


def detach(holders: Iterable[Any], copies: Mapping[int, Any]) -> None:
    """In a worker process: point every holder at its backend's copy."""
    for holder in holders:
        fresh = copies.get(id(holder.backend))
        if fresh is not None:
            holder.backend = fresh
