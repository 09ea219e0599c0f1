"""What the chaos soak knows after a run, and what it makes of it.

Three sources, all on the soak's side of the disruptions: the runs the tasks
recorded (chaos_tasks.record: start and finish with pid and pool), the soak's
own log of what it did when (kills with the pids they hit), and the pids the
watcher saw end. From them: which normal messages completed, which never did
(lost), which completed more than once and whether the process that ran the
earlier completion died between that run's start and the next run's start.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Slack for the watcher's polling when placing a death before a rerun's start.
WATCH_SLACK_S = 0.5
POOL_KILLED = "pool SIGKILLed before its ack"
WORKER_DIED = "worker died before its ack, pool alive"
NO_DEATH = "no worker death"
#: How long before a death a poison may have begun and still be its cause (a
#: timeout, or a thread that ignored TimeoutError, ends its process later).
POISON_REACH_S = 10.0
#: Poison tasks that end (or may end) the process that runs them.
PROCESS_ENDING = ("poison_exit", "poison_keyboard", "poison_os_exit", "poison_segv",
                  "poison_timeout_thread", "poison_timeout_process")


def create(path: Path) -> None:
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE events (uuid TEXT, task TEXT, event TEXT, tag TEXT, run_id TEXT,"
                   " pid INTEGER, pool TEXT, at REAL)")


@dataclass
class Run:
    uuid: str
    task: str
    tag: str
    pid: int
    pool: str
    start: float
    finish: float | None = None


@dataclass
class Disruption:
    at: float
    action: str
    detail: str
    pids: frozenset[int] = frozenset()


@dataclass
class Deaths:
    """When each pid was last known to end, and why where the soak knows."""

    gone: dict[int, float] = field(default_factory=dict)  # pid -> first poll it was missing

    def explain(self, run: Run, before: float, log: list[Disruption], runs: list[Run]) -> tuple[float, str] | None:
        """(time, cause) of the death of ``run``'s process between its start and
        ``before``: a kill by the soak (its exact time), else the watcher's
        sighting of the end (blamed on the last poison that began there before
        it, if one did), else the start of such a poison within the window."""
        kills = [(d.at, f"soak: {d.action}") for d in log if run.pid in d.pids and run.start <= d.at <= before]
        if kills:
            return min(kills)
        poisons = [(r.start, f"{r.task} ran in the same process") for r in runs
                   if r.pid == run.pid and r.task in PROCESS_ENDING]
        gone = self.gone.get(run.pid)
        if gone is not None and run.start < gone <= before + WATCH_SLACK_S:
            # The last poison that began there before the end, even before this run (a timeout).
            earlier = [p for p in poisons if run.start - POISON_REACH_S <= p[0] <= gone]
            return gone, max(earlier)[1] if earlier else "process ended (cause unknown to the soak)"
        within = [p for p in poisons if run.start <= p[0] <= before]
        return min(within) if within else None


def load(path: Path) -> list[Run]:
    with closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT uuid, task, event, tag, run_id, pid, pool, at FROM events ORDER BY at").fetchall()
    runs: dict[str, Run] = {}
    for uuid, task, event, tag, run_id, pid, pool, at in rows:
        if event == "start":
            runs[run_id] = Run(uuid, task, tag, pid, pool, at)
        elif run_id in runs:
            runs[run_id].finish = at
    return sorted(runs.values(), key=lambda r: r.start)


def issue_item(verdict: str, cause: str) -> str | None:
    """Which finding of issue 10 a double completion is evidence of, if any."""
    if verdict == POOL_KILLED:
        return None
    if verdict == NO_DEATH:
        return "a lease lost under a live worker (not in issue 10)"
    if "poison_exit" in cause or "poison_keyboard" in cause:
        return "1 (SystemExit/KeyboardInterrupt ends the worker) and 2"
    if "poison_timeout_process" in cause:
        return "3 (a timed-out process task takes its sibling threads along) and 2"
    return "2 (finished, not yet acked, handed out again)"


def double_runs(runs: list[Run], normal: Iterable[str], deaths: Deaths,
                log: list[Disruption]) -> list[dict[str, Any]]:
    """One entry per completion after a message's first: did the process of the
    completion before it die between that run's start and this run's start?

    That process recorded the finish itself, so it died after the function
    returned and before the message's ack. When the whole pool died that is the
    price of at-least-once (POOL_KILLED); when only the worker died, its
    supervisor could have known the message had finished (WORKER_DIED, issue
    10 item 2); with no death at all a lease was lost under a live worker."""
    by_uuid: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        by_uuid[run.uuid].append(run)
    found = []
    for uuid in normal:
        finished = sorted((r for r in by_uuid.get(uuid, []) if r.finish is not None), key=lambda r: r.start)
        for earlier, later in itertools.pairwise(finished):
            death = deaths.explain(earlier, later.start, log, runs)
            if death is None:
                verdict = NO_DEATH
            elif death[1] == "soak: kill_pool":
                verdict = POOL_KILLED
            else:
                verdict = WORKER_DIED
            found.append({
                "uuid": uuid, "verdict": verdict, "cause": death[1] if death else None,
                "issue_10_item": issue_item(verdict, death[1] if death else ""),
                "first": {"pid": earlier.pid, "pool": earlier.pool, "start": earlier.start,
                          "finish": earlier.finish},
                "second": {"pid": later.pid, "pool": later.pool, "start": later.start},
                "death_after_start_s": round(death[0] - earlier.start, 3) if death else None,
            })
    return found


def recovery(runs: list[Run], normal: set[str], log: list[Disruption]) -> dict[str, Any]:
    """Per kind of disruption, the longest wait from it to the next normal completion."""
    finishes = sorted(r.finish for r in runs if r.finish is not None and r.uuid in normal)
    worst: dict[str, float] = {}
    for disruption in log:
        after = next((f for f in finishes if f > disruption.at), None)
        if after is not None:
            worst[disruption.action] = max(worst.get(disruption.action, 0.0), after - disruption.at)
    longest = max(worst.items(), key=lambda kv: kv[1], default=(None, 0.0))
    return {"longest_s": round(longest[1], 2), "after": longest[0],
            "per_action_s": {k: round(v, 2) for k, v in sorted(worst.items())}}


def latency(runs: list[Run], submitted: dict[str, float]) -> float:
    """The longest wait of a normal message from its submit to its first completion."""
    first: dict[str, float] = {}
    for run in runs:
        if run.finish is not None and run.uuid in submitted:
            first[run.uuid] = min(first.get(run.uuid, run.finish), run.finish)
    return round(max((done - submitted[u] for u, done in first.items()), default=0.0), 2)


def pool_gaps(runs: list[Run], until: float) -> dict[str, float]:
    """Per pool kind, the longest time without a completion by it (up to ``until``):
    a pool that stalls shows here even while the other pool keeps the queue moving."""
    finishes: dict[str, list[float]] = defaultdict(list)
    for run in runs:
        if run.finish is not None and run.finish <= until:
            finishes[run.pool.split("#")[0]].append(run.finish)
    return {kind: round(max((b - a for a, b in itertools.pairwise(sorted([*times, until]))), default=0.0), 2)
            for kind, times in sorted(finishes.items())}
