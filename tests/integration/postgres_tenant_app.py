"""Seed 004's per-tenant layout on PostgreSQL, as a user's project would have it.

Each tenant's work goes to the queue named after the tenant, so pools can be
started per tenant: ``alsek thread-pool tests/integration/postgres_tenant_app.py
-qu 1 --backend URL`` serves tenant 1 only. The ``scheduler`` task runs on a
cron trigger in every process started as ``python postgres_tenant_app.py``
(backend from ALSEK_BACKEND_URL); each fire is submitted once however many
such processes run. A pool on the ``scheduler`` queue runs it: it defers one
``sync_tenant`` per tenant into the tenant's queue and runs none of them.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from apscheduler.triggers.cron import CronTrigger

from alsek_backends.postgres import PostgresBackend, PostgresResultStore, PostgresStatusTracker
from alsek_core.broker import Broker
from alsek_core.errors import MessageAlreadyExistsError
from alsek_core.message import Message
from alsek_core.task import task

TENANTS = ("1", "2", "3")
SCHEDULER_QUEUE = "scheduler"
FIRE_EVERY_S = 2

broker = Broker()
assert isinstance(broker.backend, PostgresBackend), "the tenant app runs on PostgreSQL"
status = PostgresStatusTracker(broker.backend)
results = PostgresResultStore(broker.backend)


@task(broker, queue=SCHEDULER_QUEUE, mechanism="thread",
      trigger=CronTrigger(second=f"*/{FIRE_EVERY_S}"))
def scheduler(message: Message) -> None:
    """One sync per tenant per fire. The uuid is fixed per fire and tenant, so
    a rerun of this message (its worker died) submits nothing twice."""
    for tenant in TENANTS:
        try:
            sync_tenant.generate(args=(tenant, message.uuid, message.created_at), queue=tenant,
                                 uuid=f"{message.uuid}-{tenant}")
        except MessageAlreadyExistsError:
            continue


@task(broker, queue=TENANTS[0], mechanism="thread", result_store=results, status_tracker=status)
def sync_tenant(tenant: str, fire: str | None, fired_at: int | None) -> str:
    return tenant


def main() -> None:
    """Schedule until SIGTERM."""
    stop = threading.Event()

    def on_term(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    scheduler.generate()
    print("scheduling", flush=True)
    stop.wait()
    scheduler.shutdown()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
