"""The PostgreSQL adapter beyond the shared contract: lazy connections, the
schema version check, pickling and forking, transactional submit, LISTEN/NOTIFY
wake-ups, glob escaping, and the ``alsek db`` commands. Each test gets its own
PostgreSQL schema (dropped afterwards) and namespace."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import click
import pytest
from click.testing import CliRunner

from alsek_core.clock import now_ms
from alsek_core.errors import ConfigError
from alsek_core.lazy import LazyClient
from alsek_core.plugins import plugin_host
from alsek_core.ports import Delivery, Envelope, Listener

psycopg = pytest.importorskip("psycopg")
psycopg_pool = pytest.importorskip("psycopg_pool")

from alsek_backends.postgres import schema as schema_lib  # noqa: E402
from alsek_backends.postgres.backend import PostgresBackend  # noqa: E402
from alsek_backends.postgres.kv import like_pattern  # noqa: E402
from alsek_backends.postgres.listen import MAX_CHANNEL_BYTES, channel_name  # noqa: E402
from alsek_backends.postgres.urls import DEFAULT_URL, with_schema  # noqa: E402

POSTGRES_URL = os.environ.get("ALSEK_TEST_POSTGRES_URL", DEFAULT_URL)
WAIT_MS = 20_000  # far longer than any wake-up should take: elapsed < half of it means woken


def envelope(queue: str = "q", delay: int = 0) -> Envelope:
    uid = uuid.uuid4().hex
    return Envelope(queue, uid, 0, now_ms() + delay, uid.encode())


@pytest.fixture
def url(schema: str, admin: Any) -> str:
    schema_lib.init(admin, schema)
    return with_schema(POSTGRES_URL, schema)


@pytest.fixture
def backend(url: str) -> Iterator[PostgresBackend]:
    instance = PostgresBackend(url, namespace=f"t-{uuid.uuid4().hex[:8]}")
    yield instance
    instance.close()


def other(backend: PostgresBackend, namespace: str | None = None) -> PostgresBackend:
    """A second instance on the same data: its own pool, as another process has."""
    return PostgresBackend(backend.db.state()["source"], namespace=namespace or backend.namespace)


def in_thread(func: Any, *args: Any) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(func(*args)))
    thread.start()
    return thread, out


# -- connections and schema ------------------------------------------------


def test_constructing_connects_to_nothing() -> None:
    backend = PostgresBackend("postgresql://nobody@127.0.0.1:1/nothing?schema=x")
    assert backend.schema == "x"
    with pytest.raises(psycopg.OperationalError):
        backend.exists("a")  # fails on first use, at once, not after pool retries


def test_schema_comes_from_argument_then_url_then_default() -> None:
    assert PostgresBackend(f"{POSTGRES_URL}?schema=from_url", schema="explicit").schema == "explicit"
    assert PostgresBackend(f"{POSTGRES_URL}?schema=from_url").schema == "from_url"
    assert PostgresBackend(POSTGRES_URL).schema == "alsek"
    with pytest.raises(ConfigError, match="schema name"):
        PostgresBackend(POSTGRES_URL, schema='x"; DROP TABLE y; --')


def test_libpq_parameters_pass_through(url: str) -> None:
    backend = PostgresBackend(f"{url}&application_name=alsek%20test&options=-c%20work_mem%3D7MB")
    settings = backend.db.run(
        lambda conn: conn.execute("SELECT current_setting('application_name'), current_setting('work_mem')")
        .fetchone()
    )
    assert settings == ("alsek test", "7MB")
    backend.close()


def test_missing_schema_names_the_init_command(schema: str, admin: Any) -> None:
    backend = PostgresBackend(with_schema(POSTGRES_URL, schema))
    with pytest.raises(ConfigError, match=f"alsek db init --backend '.*schema={schema}'"):
        backend.exists("a")


def test_old_schema_names_the_upgrade_command(schema: str, admin: Any) -> None:
    admin.execute(f"CREATE SCHEMA {schema}")
    admin.execute(f"CREATE TABLE {schema}.schema_version (version integer PRIMARY KEY, name text)")
    url = with_schema(POSTGRES_URL, schema)
    with pytest.raises(ConfigError, match=f"version 0.*alsek db upgrade --backend '.*schema={schema}'"):
        PostgresBackend(url).exists("a")
    result = CliRunner().invoke(alsek_cli(), ["db", "upgrade", "--backend", url])
    assert result.exit_code == 0, result.output
    assert "applied 0001_initial" in result.output
    assert not PostgresBackend(url).exists("a")


def test_password_never_in_messages(schema: str) -> None:
    url = with_schema(POSTGRES_URL.replace("postgres@", "postgres:s3cret@", 1), schema)
    with pytest.raises(ConfigError) as caught:
        PostgresBackend(url).exists("a")
    assert "s3cret" not in str(caught.value)
    assert "s3cret" not in repr(PostgresBackend(url))


def test_version_is_checked_once_per_instance(url: str, schema: str, admin: Any) -> None:
    backend = PostgresBackend(url)
    backend.set("a", 1)
    admin.execute(f"DROP TABLE {schema}.schema_version")
    assert backend.get("a") == 1, "no check per operation"
    with pytest.raises(ConfigError, match="alsek db init"):
        PostgresBackend(url).get("a")
    backend.close()


def test_concurrent_init_applies_each_migration_once(schema: str) -> None:
    url = with_schema(POSTGRES_URL, schema)

    def init() -> int:
        conn, name = schema_lib.connect(url)
        with conn:
            return len(schema_lib.init(conn, name))

    threads = [in_thread(init) for _ in range(4)]
    for thread, _ in threads:
        thread.join()
    # Each migration is applied by exactly one of the racing inits (which one may differ).
    assert sum(out[0] for _, out in threads) == len(schema_lib.migrations())
    conn, name = schema_lib.connect(url)
    with conn:
        assert schema_lib.status(conn, name).up_to_date


def test_users_pool_and_lazy_client(url: str, schema: str) -> None:
    with psycopg_pool.ConnectionPool(POSTGRES_URL, min_size=1, open=True) as pool:
        backend = PostgresBackend(pool, schema=schema)
        backend.set("a", 1)
        backend.close()
        assert not pool.closed, "closing the backend leaves the user's pool alone"
        lazy = PostgresBackend(LazyClient(lambda: pool), schema=schema)
        assert lazy.get("a") == 1


# -- processes -------------------------------------------------------------


def _submit_in_child(backend: PostgresBackend, env: Envelope, out: Any) -> None:
    backend.submit([env])
    [delivery] = backend.claim([env.queue], 1, 30_000)
    backend.ack(delivery.queue, delivery.uuid)
    out.put(backend.db.run(lambda conn: conn.execute("SELECT pg_backend_pid()").fetchone()[0]))


def test_pickles_without_its_pool(backend: PostgresBackend) -> None:
    backend.set("a", 1)
    data = pickle.dumps(backend)
    assert b"psycopg" not in data, "URL and options only: a copy opens its own pool"
    copy = pickle.loads(data)
    assert (copy.namespace, copy.schema) == (backend.namespace, backend.schema)
    assert copy.get("a") == 1
    copy.close()


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_child_processes_use_their_own_connections(backend: PostgresBackend, method: str) -> None:
    parent_pid = backend.db.run(lambda conn: conn.execute("SELECT pg_backend_pid()").fetchone()[0])
    listener = backend.listen(["status:x"])  # the parent's hub is running too
    ctx = multiprocessing.get_context(method)
    out = ctx.Queue()
    child = ctx.Process(target=_submit_in_child, args=(backend, envelope(), out))
    child.start()
    child_pid = out.get(timeout=60)
    child.join(timeout=30)
    assert child.exitcode == 0
    assert child_pid != parent_pid
    env = envelope()
    backend.submit([env])  # the parent's connections survived the child
    assert [d.uuid for d in backend.claim(["q"], 1, 30_000)] == [env.uuid]
    other(backend).notify("status:x")
    assert listener.wait(WAIT_MS)
    listener.close()


# -- transactional submit --------------------------------------------------


def test_submit_inside_callers_transaction(backend: PostgresBackend) -> None:
    rolled_back, committed = envelope(), envelope()
    with psycopg.Connection.connect(POSTGRES_URL) as conn:  # not autocommit
        assert backend.submit([rolled_back], connection=conn) == 1
        assert not backend.contains("q", rolled_back.uuid), "invisible until committed"
        conn.rollback()
        assert backend.submit([committed], connection=conn) == 1
        conn.commit()
    assert not backend.contains("q", rolled_back.uuid), "rolled back: never existed"
    assert [d.uuid for d in backend.claim(["q"], 10, 30_000)] == [committed.uuid]


def test_blocked_claimer_is_woken_only_by_the_commit(backend: PostgresBackend) -> None:
    env = envelope()
    thread, out = in_thread(other(backend).claim, ["q"], 1, 30_000, WAIT_MS)
    time.sleep(0.3)
    with psycopg.Connection.connect(POSTGRES_URL) as conn:
        backend.submit([env], connection=conn)
        time.sleep(0.5)
        assert thread.is_alive(), "an uncommitted submit wakes nobody"
        started = time.monotonic()
    thread.join(timeout=WAIT_MS / 1000)  # the with-block committed
    assert time.monotonic() - started < WAIT_MS / 2000
    assert [d.uuid for d in out[0]] == [env.uuid]


# -- blocking claims and wake-ups ------------------------------------------


class CountingBackend(PostgresBackend):
    """Counts the claim statements its queue runs."""

    claims = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        claim_once = self.queue._claim  # type: ignore[attr-defined]

        def counted(queues: Sequence[str], limit: int, lease_ms: int) -> list[Delivery]:
            self.claims += 1
            return claim_once(queues, limit, lease_ms)  # type: ignore[no-any-return]

        self.queue._claim = counted  # type: ignore[attr-defined]


def test_blocking_claim_is_woken_by_submit(backend: PostgresBackend) -> None:
    env = envelope("q2")
    claimer = CountingBackend(backend.db.state()["source"], namespace=backend.namespace)
    started = time.monotonic()
    thread, out = in_thread(claimer.claim, ["q1", "q2"], 1, 30_000, WAIT_MS)
    time.sleep(0.3)
    other(backend).submit([env])
    thread.join(timeout=WAIT_MS / 1000)
    assert [d.uuid for d in out[0]] == [env.uuid]
    assert time.monotonic() - started < WAIT_MS / 2000, "woken, not timed out"
    assert claimer.claims <= 3, "no polling while idle"
    claimer.close()


def test_blocking_claim_is_woken_by_reschedule(backend: PostgresBackend) -> None:
    backend.submit([envelope()])
    [delivery] = backend.claim(["q"], 1, 30_000)
    thread, out = in_thread(other(backend).claim, ["q"], 1, 30_000, WAIT_MS)
    time.sleep(0.3)
    started = time.monotonic()
    assert backend.reschedule(delivery, b"again", now_ms())
    thread.join(timeout=WAIT_MS / 1000)
    assert [d.payload for d in out[0]] == [b"again"]
    assert time.monotonic() - started < WAIT_MS / 2000


def test_idle_claim_sleeps_until_the_next_delayed_message(backend: PostgresBackend) -> None:
    env = envelope(delay=500)
    backend.submit([env])
    claimer = CountingBackend(backend.db.state()["source"], namespace=backend.namespace)
    started = time.monotonic()
    assert [d.uuid for d in claimer.claim(["q"], 1, 30_000, WAIT_MS)] == [env.uuid]
    assert time.monotonic() - started < WAIT_MS / 2000, "woke at ready_at, not at the wait's end"
    assert claimer.claims <= 3, "slept, did not poll"
    claimer.close()


def test_idle_claim_without_work_waits_out_its_time(backend: PostgresBackend) -> None:
    claimer = CountingBackend(backend.db.state()["source"], namespace=backend.namespace)
    started = time.monotonic()
    assert claimer.claim(["q"], 1, 30_000, 600) == []
    assert time.monotonic() - started >= 0.55
    assert claimer.claims == 2, "one claim, one wait, one last look"
    claimer.close()


def test_listen_and_notify(backend: PostgresBackend) -> None:
    channel = "results:" + "x" * 100  # longer than PostgreSQL's identifier limit
    listener: Listener = backend.listen([channel, "status:y"])
    assert not listener.wait(200)
    other(backend, namespace="someone-else").notify(channel)
    assert not listener.wait(300), "namespaces do not hear each other"
    other(backend).notify(channel)
    assert listener.wait(WAIT_MS)
    assert not listener.wait(100), "one notification, one wake-up"
    listener.close()


def test_channel_names_fit_the_identifier_limit() -> None:
    long = channel_name("alsek", "n" * 40, "status:" + "u" * 64)
    assert len(long.encode()) <= MAX_CHANNEL_BYTES
    assert long == channel_name("alsek", "n" * 40, "status:" + "u" * 64), "stable across processes"
    assert channel_name("alsek", "ns", "queue:q") == "alsek.ns:queue:q", "short names stay readable"


def test_due_message_keeps_its_submission_place(backend: PostgresBackend) -> None:
    early, later = envelope(delay=300), envelope()
    backend.submit([early])
    backend.submit([later])
    time.sleep(0.5)
    assert [d.uuid for d in backend.claim(["q"], 2, 30_000)] == [early.uuid, later.uuid]


def test_many_messages_coming_due_at_once_are_all_claimed(backend: PostgresBackend) -> None:
    envs = [envelope(delay=300) for _ in range(2500)]  # more than one claim promotes
    backend.submit(envs)
    time.sleep(0.5)
    claimed = []
    while batch := backend.claim(["q"], 1000, 30_000):
        claimed += [d.uuid for d in batch]
    assert sorted(claimed) == sorted(e.uuid for e in envs)


# -- key-value details -----------------------------------------------------


def test_like_translation() -> None:
    assert like_pattern("queues:q1:") == ("queues:q1:%", "queues:q1:", "queues:q1;")
    assert like_pattern(None) == ("%", "", None)
    assert like_pattern("a_b%c\\*?") == ("a\\_b\\%c\\\\%_%", "a_b%c\\", "a_b%c]")


def test_scan_treats_like_metacharacters_literally(backend: PostgresBackend) -> None:
    for name in ("a%b", "a_b", "axb", "a\\b", "ab", "zz"):
        backend.set(name, 0)
    assert list(backend.scan("a%")) == ["a%b"]
    assert list(backend.scan("a_")) == ["a_b"]
    assert list(backend.scan("a\\")) == ["a\\b"]
    assert sorted(backend.scan("a?b")) == sorted(["a%b", "a_b", "axb", "a\\b"])
    assert backend.count("a") == 5


def test_expired_rows_are_pruned(backend: PostgresBackend, admin: Any) -> None:
    backend.set("short", 1, ttl=50)
    time.sleep(0.15)
    backend._pruned_at = 0.0  # as if the prune interval had passed
    backend.set("other", 1, ttl=60_000)
    rows = admin.execute(
        f"SELECT name FROM {backend.schema}.kv WHERE namespace = %s", [backend.namespace]
    ).fetchall()
    assert rows == [("other",)]


# -- alsek db --------------------------------------------------------------


def alsek_cli() -> click.Group:
    """A stand-in for the CLI's main group, extended through the plugin hook."""
    root = click.Group("alsek")
    assert plugin_host().add_commands(root) == []
    return root


def test_db_commands(schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    url = with_schema(POSTGRES_URL, schema)
    runner = CliRunner()
    result = runner.invoke(alsek_cli(), ["db", "status", "--backend", url])
    assert result.exit_code == 1 and "not initialized" in result.output
    result = runner.invoke(alsek_cli(), ["db", "upgrade", "--backend", url])
    assert result.exit_code == 1 and "alsek db init" in result.output
    result = runner.invoke(alsek_cli(), ["db", "init", "--backend", url])
    assert result.exit_code == 0 and "applied 0001_initial" in result.output, result.output
    monkeypatch.setenv("ALSEK_BACKEND_URL", url)  # the default when --backend is absent
    result = runner.invoke(alsek_cli(), ["db", "init"])
    assert result.exit_code == 0 and "already initialized" in result.output, result.output
    result = runner.invoke(alsek_cli(), ["db", "status"])
    assert result.exit_code == 0 and f"version {schema_lib.latest_version()} of" in result.output
    result = runner.invoke(alsek_cli(), ["db", "upgrade"])
    assert result.exit_code == 0 and "already up to date" in result.output


def test_db_commands_refuse_other_backends() -> None:
    result = CliRunner().invoke(alsek_cli(), ["db", "init", "--backend", "redis://127.0.0.1:6379/0"])
    assert result.exit_code == 2
    assert "not a PostgreSQL URL" in result.output


def test_generate_inside_the_callers_transaction(backend: PostgresBackend, url: str) -> None:
    """What a user writes: ``task.generate(connection=conn)`` in their own transaction."""
    from alsek import Broker, task

    broker = Broker(backend)

    @task(broker, queue="tx")
    def job() -> None:
        pass

    with psycopg.connect(POSTGRES_URL) as conn:
        rolled_back = job.generate(connection=conn)
        conn.rollback()
        committed = job.generate(connection=conn)
        assert not broker.exists(committed), "invisible until the caller commits"
        conn.commit()
    assert not broker.exists(rolled_back)
    assert broker.exists(committed)
