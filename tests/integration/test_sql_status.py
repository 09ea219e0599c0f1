"""Statuses persisted to PostgreSQL: the seed's CustomStatusTracker example and
SqlStatusTracker, against the real server, each test in its own schema."""

from __future__ import annotations

import importlib.util
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alsek import Broker, task
from alsek.core.status import StatusTrackerIntegrityScanner, TaskStatus
from alsek_backends.diskcache import DiskCacheBackend
from alsek_core.testing.contract.fixtures import unavailable
from alsek_core.testing.runner import run_until_empty

sa = pytest.importorskip("sqlalchemy")

POSTGRES_URL = os.environ.get("ALSEK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
EXAMPLE = Path(__file__).parents[2] / "examples" / "custom_status_tracker.py"


def _sa_url(schema: str) -> str:
    url = POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


@pytest.fixture
def schema() -> Iterator[str]:
    name = f"alsek_t_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(_sa_url("public"))
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    except sa.exc.OperationalError as exc:
        unavailable(f"PostgreSQL unreachable at {POSTGRES_URL}: {exc.orig}")
    yield name
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
    admin.dispose()


def test_seed_custom_status_tracker_records_every_transition(
    schema: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALSEK_EXAMPLE_POSTGRES_URL", _sa_url(schema))
    spec = importlib.util.spec_from_file_location("custom_status_tracker", EXAMPLE)
    assert spec and spec.loader
    example: Any = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    example.Base.metadata.create_all(example.engine)
    seen: list[tuple[str, str]] = []

    class Recording(example.CustomStatusTracker):  # type: ignore[misc, name-defined]
        def set(self, message: Any, status: TaskStatus) -> None:
            super().set(message, status)
            with example.engine.connect() as conn:  # what PostgreSQL holds now
                row = conn.execute(sa.text("SELECT status FROM status WHERE id = :id"), {"id": message.uuid})
                seen.append((message.uuid, row.scalar_one()))

    backend = DiskCacheBackend(str(tmp_path))
    broker = Broker(backend)
    tracker = Recording(backend)
    attempts: list[int] = []

    @task(broker, status_tracker=tracker, max_retries=1, backoff=None)
    def flaky_sum(n: int) -> int:
        attempts.append(n)
        if len(attempts) == 1:
            raise RuntimeError("first try fails")
        return n * (n + 1) // 2

    message = flaky_sum.generate(kwargs={"n": 100})
    run_until_empty([flaky_sum])
    assert [s for u, s in seen if u == message.uuid] == [
        "SUBMITTED", "RUNNING", "RETRYING", "RUNNING", "SUCCEEDED",
    ]
    assert tracker.get(message) == TaskStatus.SUCCEEDED  # the backend copy too
    example.session.close()
    example.engine.dispose()


def test_sql_status_tracker_on_postgres(schema: str, tmp_path: Path) -> None:
    from alsek_backends.sqlalchemy_status import SqlStatusTracker

    engine = sa.create_engine(_sa_url(schema))
    tracker = SqlStatusTracker(engine)
    broker = Broker(DiskCacheBackend(str(tmp_path)))

    @task(broker, status_tracker=tracker)
    def job() -> int:
        return 1

    done, lost = job.generate(), job.generate()
    assert tracker.get(done) == TaskStatus.SUBMITTED
    broker.remove(lost)
    run_until_empty([job])
    assert tracker.wait_for(done, TaskStatus.SUCCEEDED, timeout=5) == TaskStatus.SUCCEEDED
    assert StatusTrackerIntegrityScanner(tracker, broker).scan() == 1
    assert tracker.get(lost) == TaskStatus.UNKNOWN
    with engine.connect() as conn:
        rows = dict(conn.execute(sa.text("SELECT uuid, status FROM alsek_status")).all())
    assert rows[done.uuid] == "SUCCEEDED"
    tracker.delete(done)
    assert not tracker.exists(done)
    engine.dispose()
