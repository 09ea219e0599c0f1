"""``alsek pause QUEUE`` and ``alsek resume QUEUE``: stop and restart claiming
from a queue in every pool, without touching its messages (see
``alsek_core.pause``). ``alsek queues`` shows which queues are paused."""

from __future__ import annotations

import json

import click

from alsek_cli.admin import _backend, json_option
from alsek_cli.options import backend_option, log_level_option
from alsek_core.broker import Broker
from alsek_core.errors import ValidationError


def _switch(queue: str, backend: str | None, as_json: bool, paused: bool) -> None:
    broker = Broker(_backend(backend))
    try:
        if paused:
            broker.pause(queue)
        else:
            broker.resume(queue)
    except ValidationError as exc:
        raise click.BadParameter(str(exc), param_hint="QUEUE") from None
    if as_json:
        click.echo(json.dumps({"queue": queue, "paused": paused}))
    elif paused:
        click.echo(f"paused {queue!r}: pools stop claiming from it within a second; "
                   "its messages stay queued and running ones finish")
    else:
        click.echo(f"resumed {queue!r}")


@click.command()
@click.argument("queue")
@backend_option
@json_option
@log_level_option("warning")
def pause(queue: str, backend: str | None, as_json: bool) -> None:
    """Stop every pool claiming from QUEUE (its messages stay queued; delayed
    ones keep their time; running ones finish). Undo with ``alsek resume``."""
    _switch(queue, backend, as_json, paused=True)


@click.command()
@click.argument("queue")
@backend_option
@json_option
@log_level_option("warning")
def resume(queue: str, backend: str | None, as_json: bool) -> None:
    """Let pools claim from QUEUE again."""
    _switch(queue, backend, as_json, paused=False)


COMMANDS = (pause, resume)
