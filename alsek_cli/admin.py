"""Looking after queues from a shell: counts, listings, statuses, results,
dead letters, purges, health and plugins."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import click

from alsek_cli.options import backend_option, log_level_option, one_line
from alsek_core.broker import Broker
from alsek_core.config import existing_backend
from alsek_core.dead_letter import DeadLetter
from alsek_core.errors import ConfigError
from alsek_core.history import HistoryEntry
from alsek_core.message import Message
from alsek_core.plugins import plugin_host
from alsek_core.ports import Backend
from alsek_core.redact import redact_url
from alsek_core.result import store_for
from alsek_core.settings import resolve_backend_url
from alsek_core.status import TaskStatus, seen_status, tracker_for
from alsek_core.workers import holders, live_workers

STATES = ("ready", "delayed", "in_flight", "dead")
#: States ``alsek jobs`` reads from the job history (finished messages).
FINISHED = ("succeeded", "failed")
#: How much of a dead letter's payload ``dlq show`` prints.
PAYLOAD_SHOWN = 1_000
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


def _confirm(question: str) -> None:
    try:
        confirmed = click.confirm(question, default=False, err=True)
    except click.exceptions.Abort:  # no answer (stdin closed)
        click.echo(err=True)
        confirmed = False
    if not confirmed:
        raise click.ClickException("not confirmed, nothing deleted (--yes skips the question)")


def _backend(url: str | None) -> Backend:
    """The store the user's settings name; never created by looking at it."""
    return existing_backend(resolve_backend_url(cli=url))


def _where(url: str | None) -> str:
    """Which store a table is about, and who chose it, for its title."""
    setting = resolve_backend_url(cli=url)
    return f"{redact_url(setting.value)} (from {setting.source})"


def _when(ms: int) -> str:
    """ISO 8601 in UTC: readable, and sortable by scripts."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def printable(text: str) -> str:
    """Text from storage, fit for a terminal: control characters (escape
    sequences, bidi overrides) are shown escaped, never acted on."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def _emit(rows: list[dict[str, Any]], as_json: bool, title: str, empty: str) -> None:
    if as_json:
        click.echo(json.dumps(rows, indent=1, default=str))
        return
    if not rows:
        click.echo(empty)
        return
    from rich.console import Console  # here: a worker pool's start-up need not pay for it
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title)
    for column in rows[0]:
        table.add_column(column, justify="right" if isinstance(rows[0][column], int) else "left")
    for row in rows:  # as Text: a "[/bold]" in a task name is shown, not taken as markup
        table.add_row(*(Text("" if v is None else printable(str(v))) for v in row.values()))
    # Piped output is not cut to 80 columns: it is read whole or by scripts.
    Console(width=None if sys.stdout.isatty() else 200).print(table)


@click.command()
@backend_option
@json_option
@log_level_option("warning")
def queues(backend: str | None, as_json: bool) -> None:
    """Ready, delayed, in-flight and dead-letter counts per queue, and which
    queues are paused (``alsek pause``), listed even while empty."""
    broker = Broker(_backend(backend))
    paused = broker.paused()
    names = sorted(set(broker.queues()) | set(paused))
    rows = [{"queue": q, **_counts(broker, q), "paused": q in paused} for q in names]
    if not as_json:
        click.echo(f"backend: {_where(backend)}")
    _emit(rows, as_json, "queues", "no queues")


def _counts(broker: Broker, queue: str) -> dict[str, int]:
    counts = broker.counts(queue)
    return {"ready": counts.ready, "delayed": counts.delayed, "in_flight": counts.in_flight, "dead": counts.dead}


def _jobs(broker: Broker, queue_names: list[str], state: str | None) -> Iterator[dict[str, Any]]:
    for queue in queue_names:
        if state != "dead":
            for item_state, uuid, message in broker.messages(queue):
                if state is None or item_state == state:
                    yield _job(queue, item_state, uuid, message)
        if state in (None, "dead"):
            for item_state, uuid, message in broker.messages(queue, dead=True):
                yield _job(queue, item_state, uuid, message)


def _finished(entry: HistoryEntry) -> dict[str, Any]:
    """A history entry as a row of ``alsek jobs`` (``--json``: all of it, traceback included)."""
    took = None if entry.started_at is None else (entry.finished_at - entry.started_at) / 1000
    error = entry.exception or {}
    return {
        "uuid": entry.uuid, "queue": entry.queue, "state": entry.state, "task": entry.task,
        "attempts": entry.attempts, "submitted": _when(entry.submitted_at),
        "started": None if entry.started_at is None else _when(entry.started_at),
        "finished": _when(entry.finished_at), "seconds": took, "worker": entry.worker,
        "error": f"{error.get('name')}: {error.get('text')}" if error else None,
    }


def _job(queue: str, state: str, uuid: str, message: Message | None) -> dict[str, Any]:
    return {
        "uuid": uuid,
        "queue": queue,
        "state": state,
        "task": message.task_name if message else "(undecodable)",
        "priority": message.priority if message else None,
        "retries": message.retries if message else None,
        "ready_at": _when(message.ready_at) if message else None,
    }


@click.command()
@click.argument("queue", required=False)
@click.option("--state", type=click.Choice(STATES + FINISHED), default=None,
              help="Only messages in this state; succeeded and failed list the job history (finished "
                   "messages, newest first; failed includes those dead-lettered without running).")
@click.option("--task", "task_name", default=None, metavar="NAME", help="Only messages of this task.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@backend_option
@json_option
@log_level_option("warning")
def jobs(queue: str | None, state: str | None, task_name: str | None, limit: int,
         backend: str | None, as_json: bool) -> None:
    """List messages (of QUEUE, or of every queue) best first, with their tracked
    status and, in flight, the worker pool running them; or finished ones."""
    store = _backend(backend)
    broker, tracker = Broker(store), tracker_for(store)
    if state in FINISHED:
        entries = [e for e in broker.history(queue, state, limit=limit if task_name is None else 10_000)
                   if task_name is None or e.task == task_name][:limit]
        rows = [{**_finished(e), "exception": e.exception} if as_json else _finished(e) for e in entries]
        _emit(rows, as_json, f"{state} jobs (newest {limit})", f"no {state} jobs in the history")
        return
    running = holders(live_workers(store)) if state in (None, "in_flight") else {}
    rows = []
    for row in _jobs(broker, [queue] if queue else broker.queues(), state):
        if task_name is not None and row["task"] != task_name:
            continue
        record = tracker.record(row["uuid"])
        row["status"] = _row_status(record, row["state"]) if record else None
        if row["state"] == "in_flight":
            row["worker"] = running.get(row["uuid"])
        rows.append(row)
        if len(rows) >= limit:
            break
    _emit(rows, as_json, f"jobs (first {limit})", "no messages")


@click.command()
@click.argument("uuid")
@backend_option
@json_option
@log_level_option("warning")
def status(uuid: str, backend: str | None, as_json: bool) -> None:
    """The tracked status of message UUID; once it finished, its job history
    too (times, attempts, worker, and the traceback of a failure)."""
    store = _backend(backend)
    broker = Broker(store)
    record = tracker_for(store).record(uuid)
    queue = record.get("queue") if record else None
    entry = broker.history_entry(uuid, queue if isinstance(queue, str) else None)
    if record is None and entry is None:
        raise click.ClickException(f"no status recorded for {uuid} (not tracked, expired, or another backend)")
    shown: dict[str, Any] = {"uuid": uuid}
    if record is not None:
        queued = _queued(broker, queue if isinstance(queue, str) else None, uuid)
        recorded = _status_value(record["status"])
        shown.update(record, status=_status_name(record["status"]))
        seen = seen_status(recorded, queued[0] if queued else None) if isinstance(recorded, TaskStatus) else None
        if seen is not None and seen != recorded:  # its worker died holding it: it waits to run again
            shown.update(status=seen.name, redelivery=True)
        if shown["status"] == TaskStatus.RETRYING.name and queued and queued[1] is not None:
            shown["next_run_at"] = _when(queued[1].ready_at)
        if shown["status"] == TaskStatus.RUNNING.name:
            shown["worker"] = holders(live_workers(store)).get(uuid)
    if entry is not None:
        shown["history"] = entry.to_dict()
    if as_json:
        click.echo(json.dumps(shown))
        return
    if record is not None:
        line = (f"{shown['status']}  task={shown['task_name']} queue={shown['queue']} "
                f"updated={_when(shown['updated_at'])}")
        for extra in ("next_run_at", "worker"):
            if shown.get(extra):
                line += f" {extra}={shown[extra]}"
        if shown.get("redelivery"):
            line += " (its worker was lost while it ran: waiting to run again)"
        click.echo(printable(line))
    if entry is not None:
        row = _finished(entry)
        click.echo(printable("history: " + " ".join(f"{k}={v}" for k, v in row.items()
                                                    if v is not None and k not in ("uuid", "error"))))
        if entry.exception:
            click.echo(printable(f"{entry.exception.get('name')}: {entry.exception.get('text')}"))
            click.echo("\n".join(printable(line) for line in str(entry.exception.get("traceback", "")).splitlines()))


def _row_status(record: dict[str, Any], queue_state: str) -> str:
    """A listed message's status by name, as a reader should see it (``seen_status``)."""
    status = _status_value(record["status"])
    if not isinstance(status, TaskStatus):
        return str(status)
    return seen_status(status, queue_state).name


def _status_value(value: Any) -> TaskStatus | Any:
    """A stored status (a number in the seed's records, or a name) as a TaskStatus."""
    try:
        return TaskStatus(int(value))
    except (TypeError, ValueError):
        return TaskStatus.__members__.get(str(value), value)


def _status_name(value: Any) -> str:
    """A stored status by its name, on every backend."""
    status = _status_value(value)
    return status.name if isinstance(status, TaskStatus) else str(status)


def _queued(broker: Broker, queue: str | None, uuid: str) -> tuple[str, Message | None] | None:
    """(state, message) of a live message of ``queue``; None when it is not queued."""
    for state, found, message in broker.messages(queue) if queue else ():
        if found == uuid:
            return state, message
    return None


@click.command()
@click.argument("uuid")
@backend_option
@json_option
@log_level_option("warning")
def result(uuid: str, backend: str | None, as_json: bool) -> None:
    """The stored result of message UUID with its metadata, as JSON (it is kept,
    not consumed); --json also names the uuid, like ``alsek status --json``."""
    store = store_for(_backend(backend))
    try:
        record = store.get(Message("(lookup)", uuid=uuid), keep=True, with_metadata=True)
    except KeyError:
        raise click.ClickException(f"no result stored for {uuid}") from None
    if as_json:
        click.echo(json.dumps({"uuid": uuid, **record}, default=repr))
        return
    click.echo(json.dumps(record, default=repr))


@click.group()
def dlq() -> None:
    """Dead letters: messages that failed for good, and payloads that could
    not run (undecodable, or naming another message than their row). Each is
    known by its row's uuid, whatever its payload says."""


def _error(dead: DeadLetter) -> str:
    details = dead.exception_details or {}
    return f"{details.get('name', '?')}: {details.get('text', '')}"


def _chosen(broker: Broker, uuids: tuple[str, ...], queue: str | None) -> list[DeadLetter]:
    """The dead letters named (all of them when none is); every name must be one."""
    chosen = [d for d in broker.dead_letters(queue) if not uuids or d.uuid in uuids]
    missing = set(uuids) - {d.uuid for d in chosen}
    if missing:
        raise click.ClickException(f"not among the dead letters: {', '.join(sorted(map(printable, missing)))}")
    return chosen


@dlq.command("list")
@click.argument("queue", required=False)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@backend_option
@json_option
@log_level_option("warning")
def dlq_list(queue: str | None, limit: int, backend: str | None, as_json: bool) -> None:
    """Dead letters of QUEUE (or every queue), with why they failed."""
    rows = [{"uuid": d.uuid, "queue": d.queue, "task": d.task_name, "retries": d.retries,
             "error": _error(d)[:120]}
            for d in Broker(_backend(backend)).dead_letters(queue)[:limit]]
    _emit(rows, as_json, "dead letters", "no dead letters")


def _payload(payload: bytes) -> str:
    """Raw bytes as Python would write them (escaped, so safe on any
    terminal), cut to PAYLOAD_SHOWN: shown, never decoded or run."""
    shown = repr(payload[:PAYLOAD_SHOWN])
    cut = f" (first {PAYLOAD_SHOWN:,} shown)" if len(payload) > PAYLOAD_SHOWN else ""
    return f"{len(payload):,} bytes{cut}: {shown}"


def _details(dead: DeadLetter) -> dict[str, Any]:
    details = dead.exception_details or {}
    message = dead.message
    return {
        "uuid": dead.uuid,
        "queue": dead.queue,
        "task": dead.task_name,
        "retries": dead.retries,
        "error": _error(dead),
        "traceback": details.get("traceback"),
        "args": json.dumps(list(message.args), default=repr)[:PAYLOAD_SHOWN] if message else None,
        "kwargs": json.dumps(message.kwargs, default=repr)[:PAYLOAD_SHOWN] if message else None,
        "payload": _payload(dead.payload),
    }


@dlq.command("show")
@click.argument("uuid")
@click.option("--queue", default=None, help="Only dead letters of this queue.")
@backend_option
@json_option
@log_level_option("warning")
def dlq_show(uuid: str, queue: str | None, backend: str | None, as_json: bool) -> None:
    """Everything about dead letter UUID: why it failed, its arguments, and
    its raw payload (escaped and cut short)."""
    found = [_details(d) for d in _chosen(Broker(_backend(backend)), (uuid,), queue)]
    if as_json:
        click.echo(json.dumps(found, indent=1))
        return
    for details in found:
        for name, value in details.items():
            if value is not None:
                lines = str(value).splitlines() or [""]  # a traceback keeps its lines
                click.echo(f"{name + ':':<10} " + "\n".join(map(printable, lines)))


@dlq.command("retry")
@click.argument("uuids", nargs=-1)
@click.option("--queue", default=None, help="Only dead letters of this queue.")
@backend_option
@log_level_option("warning")
def dlq_retry(uuids: tuple[str, ...], queue: str | None, backend: str | None) -> None:
    """Put dead letters (UUIDS, or all of them) back on their queues, to run
    at once, under the uuid listed. A payload that could not be decoded goes
    back as the bytes it was: it fails again unless the code reading it changed
    (``dlq purge UUID`` deletes it instead)."""
    broker = Broker(_backend(backend))
    chosen = _chosen(broker, uuids, queue)
    for dead in chosen:
        broker.replay(dead)
    click.echo(f"requeued {len(chosen)} message(s)")


@dlq.command("purge")
@click.argument("uuids", nargs=-1)
@click.option("--queue", default=None, help="Only dead letters of this queue.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@backend_option
@log_level_option("warning")
def dlq_purge(uuids: tuple[str, ...], queue: str | None, yes: bool, backend: str | None) -> None:
    """Delete dead letters (UUIDS, or all of them) for good."""
    broker = Broker(_backend(backend))
    chosen = _chosen(broker, uuids, queue)
    if not yes:
        _confirm(f"Delete {len(chosen)} dead letter(s){f' of {queue!r}' if queue else ''}?")
    click.echo(f"deleted {sum(broker.remove_dead_letter(d) for d in chosen)} dead letter(s)")


@click.command()
@click.argument("queue")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@backend_option
@log_level_option("warning")
def purge(queue: str, yes: bool, backend: str | None) -> None:
    """Delete every live message of QUEUE (dead letters stay)."""
    broker = Broker(_backend(backend))
    counts = broker.counts(queue)
    live = counts.ready + counts.delayed + counts.in_flight
    if not yes:
        _confirm(f"Delete {live} message(s) of queue {queue!r}?")
    click.echo(f"deleted {broker.purge(queue)} message(s) of {queue!r}")


@click.command()
@backend_option
@log_level_option("warning")
def healthcheck(backend: str | None) -> None:
    """Exit 0 if the backend answers, 2 if it is misconfigured (unknown scheme,
    missing driver, bad serializer or parameter, no store there), 1 if it is
    unreachable."""
    setting = resolve_backend_url(cli=backend)
    url = redact_url(setting.value)
    started = time.perf_counter()
    try:
        store = existing_backend(setting)
        store.exists("healthcheck")
        names = Broker(store).queues()
    except ConfigError as exc:
        text = one_line(exc)
        where = "" if setting.source in text else f" (backend from {setting.source})"
        error = click.ClickException(f"misconfigured: {text}{where}")
        error.exit_code = 2
        raise error from exc
    except Exception as exc:
        raise click.ClickException(f"backend {url} does not answer: {one_line(exc)}") from exc
    elapsed = (time.perf_counter() - started) * 1000
    click.echo(f"ok: {url} (from {setting.source}) answered in {elapsed:.1f} ms ({len(names)} queue(s))")


@click.command()
@json_option
@log_level_option("warning")
def backends(as_json: bool) -> None:
    """Registered backends and serializers, where they come from, and plugin errors."""
    rows = [{**row, "schemes": ", ".join(row["schemes"])} for row in plugin_host().describe()]
    errors = [str(e) for e in plugin_host().registry.errors]
    if as_json:
        click.echo(json.dumps({"registered": rows, "errors": errors}, indent=1))
        return
    _emit(rows, False, "plugins", "nothing registered")
    for error in errors:
        click.echo(f"plugin error: {error}", err=True)


COMMANDS = (queues, jobs, status, result, dlq, purge, healthcheck, backends)
