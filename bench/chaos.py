#!/usr/bin/env python3
"""The chaos soak of issue 10: a thread pool and a process pool, run as a user
runs them (``alsek thread-pool`` / ``alsek process-pool`` subprocesses), work
one queue under a steady stream of tasks while, at random intervals, the soak

* SIGKILLs a worker process of a pool (kill_worker),
* SIGKILLs a whole pool (its process group) and starts it again (kill_pool),
* restarts the server: a private redis-server; the shared PostgreSQL cluster
  only with --restart-server (restart_server),
* kills the backend's client connections (kill_connections),
* submits a poison input (poison): tasks that sys.exit(), raise
  KeyboardInterrupt, os._exit(1), segfault or overstay their timeout, and raw
  payloads written straight to the queue that are not ours, undecodable,
  without a uuid, or whose uuid differs from the queue's; every kind chosen
  with --poison is submitted at least once, in the first half of the run.

Every run records itself outside the backend (chaos_tasks.py). At the end the
disruptions stop, the pools drain what is left, and the soak prints: submitted,
completed, lost, completed twice (each with whether the process of the earlier
completion died while it ran), the longest wait from a disruption to the next
completion, each poison's fate (dead-lettered, still live, gone) and the
pools' RSS at start and end. It exits 1 if a message was lost or a double run
had no worker death, else 0. It removes everything it made (its namespace,
private server, database, temp dir).

Usage: python bench/chaos.py {sqlite,redis,postgres} --minutes M [--poison a,b]
       [--actions a,b] [--restart-server] [--json PATH] [--seed N]
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import random
import shutil
import signal
import sqlite3
import sys
import tempfile
import threading
import time
import traceback
import uuid as uuid_lib
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any

import chaos_record as rec
from chaos_pools import Pool, Watcher
from chaos_targets import Target, make_target

from alsek import Broker, Message
from alsek_core.config import backend_from_url
from alsek_core.ports import Envelope

QUEUE = "chaos"
ACTIONS = ("kill_worker", "kill_pool", "restart_server", "kill_connections", "poison")
TASK_POISONS = {"exit": "poison_exit", "keyboard": "poison_keyboard", "os_exit": "poison_os_exit",
                "segv": "poison_segv", "timeout_thread": "poison_timeout_thread",
                "timeout_process": "poison_timeout_process"}
RAW_POISONS = ("raw_garbage", "raw_foreign", "raw_no_uuid", "raw_wrong_uuid")
POISONS = (*TASK_POISONS, *RAW_POISONS)
POISON_TIMEOUT_MS = 1_500


class Soak:
    def __init__(self, args: argparse.Namespace, target: Target, scratch: Path) -> None:
        self.args = args
        self.target = target
        self.scratch = scratch
        self.rng = random.Random(args.seed)
        self.record = scratch / "record.sqlite3"
        rec.create(self.record)
        self.broker = Broker(backend_from_url(target.url))
        self.log: list[rec.Disruption] = []
        self.normal: dict[str, float] = {}  # uuid -> when its submit returned
        self.submit_errors: list[str] = []
        self.poisons: dict[str, str] = {}  # uuid the queue knows -> poison kind
        self.poison_cycle = itertools.cycle(self.rng.sample(args.poison, len(args.poison)))
        self.pools = [Pool(kind, target.url, scratch, self.record, args.lease_ms, args.grace_ms) for kind in args.pools]
        self.watcher = Watcher(lambda: self.pools)
        self.producing = threading.Event()
        self.chaos_ended = 0.0

    # --- the steady stream ------------------------------------------------------------

    def produce(self) -> None:
        broker = Broker(backend_from_url(self.target.url))  # a connection of this thread's own
        rng = random.Random(self.args.seed + 1)
        period = 1 / self.args.rate
        while self.producing.is_set():
            message = Message("work", queue=QUEUE, kwargs={"ms": rng.randint(20, 400)},
                              mechanism="thread")
            try:
                broker.submit(message)
                self.normal[message.uuid] = time.time()
            except Exception as exc:
                self.submit_errors.append(f"{message.uuid}: {type(exc).__name__}: {exc}")
            time.sleep(period)

    # --- disruptions --------------------------------------------------------------------

    def note(self, action: str, detail: str, pids: set[int] | frozenset[int] = frozenset(),
             at: float | None = None) -> None:
        self.log.append(rec.Disruption(at or time.time(), action, detail, frozenset(pids)))
        if self.args.verbose:
            print(f"{time.strftime('%H:%M:%S')} {action}: {detail}", flush=True)

    def act(self, action: str, poison: str | None = None) -> None:
        try:
            self.disrupt(action, poison)
        except Exception as exc:
            self.note("action_failed", f"{action}: {type(exc).__name__}: {exc}")

    def disrupt(self, action: str, poison: str | None = None) -> None:
        """``poison`` names the kind to submit; else the next one in the cycle."""
        if action == "kill_worker":
            pool = self.rng.choice(self.pools)
            workers = pool.workers()
            if not workers:
                return
            pid = self.rng.choice(workers)
            self.note(action, f"SIGKILL worker {pid} of {pool.name}", {pid})
            Pool.signal(pid, signal.SIGKILL)
        elif action == "kill_pool":
            pool = self.rng.choice(self.pools)
            tree = set(pool.tree())
            self.note(action, f"SIGKILL {pool.name} ({len(tree)} processes), restarted", tree)
            pool.kill()
            time.sleep(self.rng.uniform(0, 1))
            pool.start()
        elif action == "restart_server":
            began = time.time()
            detail = self.target.restart_server()
            self.note(action, detail, at=began)
        elif action == "kill_connections":
            self.note(action, self.target.kill_connections())
        else:
            kind = poison or next(self.poison_cycle)
            self.note(action, f"{kind} {self.submit_poison(kind)}")

    def submit_poison(self, kind: str) -> str:
        if kind in TASK_POISONS:
            message = Message(TASK_POISONS[kind], queue=QUEUE, timeout=POISON_TIMEOUT_MS,
                              mechanism="process" if kind == "timeout_process" else "thread")
            self.broker.submit(message)
            self.poisons[message.uuid] = kind
            return message.uuid
        queued = str(uuid_lib.uuid4())
        serializer = self.broker.backend.serializer
        data = Message("work", queue=QUEUE, kwargs={"ms": 0, "tag": f"{kind}:{queued}"}).data
        if kind == "raw_garbage":
            payload = b"\x00\xffnot a payload of ours" + os.urandom(16)
        elif kind == "raw_foreign":
            payload = serializer.dumps({"job": "someone else's", "id": 7})
        elif kind == "raw_no_uuid":
            payload = serializer.dumps({k: v for k, v in data.items() if k != "uuid"})
        else:
            payload = serializer.dumps({**data, "uuid": str(uuid_lib.uuid4())})
        self.broker.backend.submit([Envelope(QUEUE, queued, 0, int(time.time() * 1000), payload)])
        self.poisons[queued] = kind
        return queued

    def actions(self) -> list[str]:
        enabled = [a for a in self.args.actions
                   if (a != "restart_server" or self.target.can_restart())
                   and (a != "kill_connections" or self.target.can_kill_connections())
                   and (a != "poison" or self.args.poison)]
        return enabled

    def keep_pools_up(self) -> None:
        for pool in self.pools:
            code = pool.exited()
            if code is not None:
                self.note("pool_exited", f"{pool.name} exited by itself with {code}; restarted")
                pool.start()

    # --- the run --------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        for pool in self.pools:
            pool.start()
        self.watcher.start()
        self.producing.set()
        producer = threading.Thread(target=self.produce, name="producer", daemon=True)
        producer.start()
        time.sleep(3)
        rss_start = {pool.kind: pool.rss_mb() for pool in self.pools}
        began = time.time()
        deadline = began + self.args.minutes * 60
        actions = self.actions()
        # Besides the random ones, each poison kind once, in the first half, so a
        # short run still tries them all.
        due = sorted((began + self.rng.uniform(0, (deadline - began) / 2), kind)
                     for kind in self.args.poison if "poison" in actions)
        self.chaos_ended = deadline
        while (left := deadline - time.time()) > 0:
            time.sleep(min(left, self.rng.expovariate(1 / self.args.interval),
                           max(0.0, due[0][0] - time.time()) if due else left))
            self.keep_pools_up()
            while due and due[0][0] <= time.time():
                self.act("poison", due.pop(0)[1])
            if time.time() >= deadline or not actions:
                continue
            self.act(self.rng.choice(actions))
        self.producing.clear()
        producer.join(30)
        drained = self.drain()
        rss_end = {pool.kind: pool.rss_mb() for pool in self.pools}
        exit_codes = {pool.name: pool.stop(self.args.grace_ms / 1000 + 30) for pool in self.pools}
        self.watcher.stop()
        return self.report(began, drained, rss_start, rss_end, exit_codes)

    def finished(self) -> set[str]:
        with closing(sqlite3.connect(self.record, timeout=60)) as db:
            return {u for (u,) in db.execute("SELECT DISTINCT uuid FROM events WHERE event = 'finish'")}

    def live(self) -> dict[str, str]:
        return {m.uuid: m.state for m in self.broker.backend.messages(QUEUE)}

    def drain(self) -> float:
        """Wait, disruptions over, until every normal message completed and no
        poison is live, or ``--drain`` seconds; the seconds it took."""
        began = time.time()
        while time.time() - began < self.args.drain:
            self.keep_pools_up()
            try:
                if set(self.normal) <= self.finished() and not set(self.poisons) & set(self.live()):
                    break
            except Exception as exc:
                self.note("drain_check_failed", f"{type(exc).__name__}: {exc}")
            time.sleep(0.5)
        return time.time() - began

    def report(self, began: float, drained: float, rss_start: dict[str, float], rss_end: dict[str, float],
               exit_codes: dict[str, int | None]) -> dict[str, Any]:
        runs = rec.load(self.record)
        finished = {r.uuid for r in runs if r.finish is not None}
        live = self.live()
        dead = {m.uuid for m in self.broker.backend.messages(QUEUE, dead=True)}
        lost = sorted(set(self.normal) - finished)
        doubles = rec.double_runs(runs, self.normal, rec.Deaths(dict(self.watcher.gone)), self.log)
        poisons: dict[str, dict[str, int]] = {}
        for queued, kind in self.poisons.items():
            fate = "dead-lettered" if queued in dead else f"still {live[queued]}" if queued in live else "gone"
            counts = poisons.setdefault(kind, {"submitted": 0, "runs": 0})
            counts["submitted"] += 1
            counts[fate] = counts.get(fate, 0) + 1
            counts["runs"] += sum(1 for r in runs if r.uuid == queued or r.tag.endswith(queued))
        actions = Counter(d.action for d in self.log)
        verdicts = Counter(double["verdict"] for double in doubles)
        return {
            "backend": self.target.name, "minutes": self.args.minutes, "seed": self.args.seed,
            "pools": [p.name for p in self.pools], "submitted": len(self.normal),
            "submit_errors": len(self.submit_errors), "completed": len(set(self.normal) & finished),
            "lost": len(lost), "lost_uuids": [{"uuid": u, "state": live.get(u, "dead" if u in dead else "absent")}
                                              for u in lost[:50]],
            "completed_twice": len({d["uuid"] for d in doubles}), "double_verdicts": dict(verdicts),
            "doubles": doubles[:100], "recovery": rec.recovery(runs, set(self.normal), self.log),
            "longest_wait_s": rec.latency(runs, self.normal),
            "longest_pool_gap_s": rec.pool_gaps(runs, self.chaos_ended),
            "drain_s": round(drained, 1), "actions": dict(actions),
            "failed_actions": [f"{d.action}: {d.detail}" for d in self.log
                               if d.action in ("action_failed", "pool_exited", "drain_check_failed")][:20],
            "poisons": poisons, "rss_mb_start": rss_start, "rss_mb_end": rss_end,
            "pool_exit_codes": exit_codes, "pool_logs": {p.kind: p.log_summary() for p in self.pools},
            "elapsed_s": round(time.time() - began, 1),
        }


def print_report(r: dict[str, Any]) -> None:
    print(f"\nchaos soak: {r['backend']}, {r['minutes']} min, seed {r['seed']}, pools {', '.join(r['pools'])}")
    print(f"  disruptions: {', '.join(f'{k} {v}' for k, v in sorted(r['actions'].items())) or 'none'}")
    print(f"  submitted {r['submitted']}  completed {r['completed']}  lost {r['lost']}  "
          f"completed twice {r['completed_twice']}  (submit errors {r['submit_errors']}, drain {r['drain_s']}s)")
    if r["lost"]:
        states = Counter(item["state"] for item in r["lost_uuids"])
        print(f"    lost, by state now (first {len(r['lost_uuids'])}): {dict(states)}; "
              f"e.g. {', '.join(item['uuid'] for item in r['lost_uuids'][:3])}")
    for verdict, n in sorted(r["double_verdicts"].items()):
        print(f"  double runs, {verdict}: {n}")
    for d in r["doubles"]:
        if d["verdict"] != rec.POOL_KILLED:
            print(f"    {d['uuid']}: {d['verdict']}; first run pid {d['first']['pid']} ({d['first']['pool']}), "
                  f"second pid {d['second']['pid']} ({d['second']['pool']}), cause: {d['cause']}; "
                  f"issue 10 item {d['issue_10_item']}")
    rc = r["recovery"]
    print(f"  longest time to recover: {rc['longest_s']}s (after {rc['after']}); per action: {rc['per_action_s']}")
    print(f"  longest wait from submit to completion: {r['longest_wait_s']}s; longest time without a "
          f"completion per pool kind: {r['longest_pool_gap_s']}")
    for kind, counts in sorted(r["poisons"].items()):
        print(f"  poison {kind}: {', '.join(f'{k} {v}' for k, v in counts.items())}")
    for line in r["failed_actions"]:
        print(f"  ! {line}")
    print(f"  pool RSS MB start {r['rss_mb_start']}  end {r['rss_mb_end']}")
    print(f"  pool exit codes on SIGTERM: {r['pool_exit_codes']}")
    for kind, counts in r["pool_logs"].items():
        print(f"  {kind} pool log: {', '.join(f'{k} {v}' for k, v in counts.items())}")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    def names(allowed: tuple[str, ...]) -> Any:
        def check(value: str) -> list[str]:
            chosen = [v for v in value.split(",") if v] if value != "all" else list(allowed)
            unknown = sorted(set(chosen) - set(allowed))
            if unknown:
                raise argparse.ArgumentTypeError(f"unknown {unknown}; choose from {', '.join(allowed)}")
            return chosen
        return check

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("backend", choices=("sqlite", "redis", "postgres"))
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--interval", type=float, default=4, help="mean seconds between disruptions")
    parser.add_argument("--rate", type=float, default=10, help="normal tasks submitted per second")
    parser.add_argument("--poison", type=names(POISONS), default=list(POISONS),
                        help=f"comma list, 'all' or '' for none: {','.join(POISONS)}")
    parser.add_argument("--actions", type=names(ACTIONS), default=list(ACTIONS),
                        help=f"comma list or 'all': {','.join(ACTIONS)}")
    parser.add_argument("--pools", type=names(("thread", "process")), default=["thread", "process"])
    parser.add_argument("--restart-server", action="store_true",
                        help="PostgreSQL: restart the shared local cluster too (only when nobody else uses it)")
    parser.add_argument("--lease-ms", type=int, default=3000)
    parser.add_argument("--grace-ms", type=int, default=5000)
    parser.add_argument("--drain", type=float, default=90, help="most seconds to wait for the rest at the end")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (pool logs, record)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each disruption")
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    scratch = Path(tempfile.mkdtemp(prefix="alsek-chaos-"))
    namespace = f"chaos-{uuid_lib.uuid4().hex[:10]}"
    target: Target | None = None
    soak: Soak | None = None
    logging.basicConfig(filename=scratch / "soak.log", level=logging.INFO)  # the soak's reconnects
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))  # clean up on the way out
    try:
        target = make_target(args.backend, scratch, namespace, args.restart_server)
        soak = Soak(args, target, scratch)
        report = soak.run()
    except BaseException:
        traceback.print_exc()
        return 2
    finally:
        if soak is not None:
            soak.producing.clear()
            for pool in soak.pools:
                pool.kill()
            soak.watcher.stop()
        if target is not None:
            target.close()
        if args.keep:
            print(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    unexplained = report["double_verdicts"].get(rec.NO_DEATH, 0)
    return 1 if report["lost"] or unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
