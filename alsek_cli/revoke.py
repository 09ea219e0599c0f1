"""``alsek revoke``: stop messages from running, from a shell."""

from __future__ import annotations

import click

from alsek_cli.options import backend_option, log_level_option
from alsek_core.broker import Broker
from alsek_core.config import default_backend
from alsek_core.message import Message
from alsek_core.revocation import revoke as revoke_message
from alsek_core.status import tracker_for


@click.command()
@click.argument("uuids", nargs=-1, required=True)
@backend_option
@log_level_option("warning")
def revoke(uuids: tuple[str, ...], backend: str | None) -> None:
    """Revoke messages by UUID: a queued or delayed one never runs (a worker
    dead-letters it as revoked, its status FAILED); a running one is stopped
    and ends REVOKED. A message whose status is already terminal is left alone."""
    store = default_backend(cli=backend)
    broker, tracker = Broker(store), tracker_for(store)
    revoked = []
    for uuid in uuids:
        record = tracker.record(uuid)
        if record is None:  # not tracked: the mark alone
            broker.revoke(uuid)
            revoked.append(uuid)
            continue
        message = Message(record["task_name"], queue=record["queue"], uuid=uuid)
        if revoke_message(broker, message, tracker):
            revoked.append(uuid)
        else:
            click.echo(f"{uuid} already ended ({record['status']}); left alone", err=True)
    click.echo(f"revoked {len(revoked)} message(s)")
