"""Code written for Alsek, beyond the guided tour, runs unchanged (issue 15):
its reference's names and behaviour, through the ``alsek`` facade, on every
registered backend. Where this project differs on purpose, the test pins the
difference that README's "Coming from Alsek" section states."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid as uuid_lib
from typing import Any

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from alsek import Broker, Lock, Message, StatusTracker, TaskStatus, task
from alsek.core.backoff import ConstantBackoff, ExponentialBackoff
from alsek.core.consumer import Consumer
from alsek.core.task import Task, TriggerTask
from alsek.exceptions import (
    MessageDoesNotExistsError,
    MessageExpiredError,
    MessageInFlightError,
    SchedulingError,
    ValidationError,
)
from alsek.storage.backends import Backend
from alsek.storage.result import ResultStore
from alsek.storage.serialization import JsonSerializer, Serializer
from alsek_core.testing.runner import run_until_empty


@pytest.fixture
def broker(backend: Backend) -> Broker:
    return Broker(backend)


def claim(broker: Broker, queue: str) -> Message:
    [claimed] = Consumer(broker, subset=[queue]).claim(1)
    return claimed


# --- Tour behaviour that differed ------------------------------------------------------


def test_retry_of_a_message_no_worker_holds_counts_and_reschedules(broker: Broker) -> None:
    message = broker.submit(Message("job", queue="rq"))
    broker.retry(message)
    assert message.retries == 1
    assert broker.sync(message).retries == 1
    counts = broker.counts("rq")
    assert (counts.ready, counts.delayed) == (0, 1)  # waits for its backoff, as in Alsek


def test_nack_of_a_message_no_worker_holds_leaves_it_waiting(broker: Broker) -> None:
    message = broker.submit(Message("job", queue="nq"))
    broker.nack(message)
    assert broker.counts("nq").ready == 1 and broker.sync(message).retries == 0


def test_retry_and_nack_refuse_what_they_cannot_touch(broker: Broker) -> None:
    with pytest.raises(MessageDoesNotExistsError, match="is not queued"):
        broker.retry(Message("job", queue="gone"))
    held = broker.submit(Message("job", queue="held"))
    claim(broker, "held")
    for release in (broker.retry, broker.nack):
        with pytest.raises(MessageInFlightError, match="held by a worker"):
            release(held)
    assert held.retries == 0


def test_a_hand_built_message_backs_off_like_a_task() -> None:
    message = Message("t", retries=50)
    assert message.backoff_settings == ExponentialBackoff().settings
    assert not message.ready and message.ttr > 0
    assert message.get_backoff_duration() == ExponentialBackoff().get(50)


def test_result_metadata_keys_are_alseks(broker: Broker, backend: Backend) -> None:
    store = ResultStore(backend)

    @task(broker, result_store=store)
    def answer() -> int:
        return 42

    first = answer.generate()
    second = answer.generate(callback=answer.generate(submit=False))
    run_until_empty([answer])
    found = store.get(first, with_metadata=True)
    assert set(found) == {"result", "timestamp", "uuid"}
    assert (found["result"], found["uuid"]) == (42, first.uuid)
    family = store.get(second, with_metadata=True, descendants=True)
    assert [set(record) for record in family] == [{"result", "timestamp", "uuid"}] * 2


class AlsekStyleJson(Serializer):
    """A serializer as Alsek's reference writes one: static forward/reverse over str."""

    @staticmethod
    def forward(obj: Any) -> Any:
        import json

        return json.dumps(obj)

    @staticmethod
    def reverse(obj: Any) -> Any:
        import json

        return None if obj is None else json.loads(obj)


def test_a_forward_reverse_serializer_carries_values_and_messages(backend_factory: Any) -> None:
    backend = backend_factory()
    try:
        backend.serializer = AlsekStyleJson()
        backend.set("greeting", {"hello": ["world"]})
        assert backend.get("greeting") == {"hello": ["world"]}
        broker = Broker(backend)
        sent = broker.submit(Message("job", queue="sq", kwargs={"n": 1}))
        assert claim(broker, "sq").kwargs == sent.kwargs
    finally:
        backend.clear_namespace()
        backend.close()


def test_serializers_answer_to_both_spellings() -> None:
    ours = JsonSerializer()
    assert ours.reverse(ours.forward({"a": [1]})) == {"a": [1]}
    assert ours.reverse(ours.dumps({"a": 1}).decode()) == {"a": 1}
    theirs = AlsekStyleJson()
    assert theirs.loads(theirs.dumps([1, "x"])) == [1, "x"]

    class Neither(Serializer):
        pass

    with pytest.raises(TypeError, match=r"define dumps \(or forward\) and loads \(or reverse\)"):
        Neither()


def test_redis_backend_accepts_a_decoding_client() -> None:
    redis = pytest.importorskip("redis")
    from alsek.storage.backends.redis.standard import RedisBackend

    client = redis.Redis(host="127.0.0.1", port=6379, decode_responses=True)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        client.close()
        pytest.skip("no Redis at 127.0.0.1:6379")
    backend = RedisBackend(client, namespace=f"compat-{uuid_lib.uuid4().hex[:10]}")
    try:
        backend.set("k", {"v": b"\xff".hex()})
        assert backend.get("k") == {"v": "ff"}
        broker = Broker(backend)
        broker.submit(Message("job", queue="dq", args=[1]))
        assert claim(broker, "dq").args == (1,)
    finally:
        backend.clear_namespace()
        backend.close()
        client.close()


# --- Broker --------------------------------------------------------------------------------


def test_submit_ttl_expires_an_unclaimed_message(broker: Broker) -> None:
    ran: list[int] = []

    @task(broker, queue="tq")
    def job(i: int) -> None:
        ran.append(i)

    late = broker.submit(job.generate(args=[1], delay=300, submit=False), ttl=100)
    on_time = job.generate(args=[2], ttl=60_000)
    run_until_empty([job])
    assert ran == [2]
    assert broker.in_dlq(late) and not broker.in_dlq(on_time)
    assert (broker.sync(late).exception_details or {})["name"] == MessageExpiredError.__name__
    with pytest.raises(ValidationError, match="ttl must be a positive int"):
        broker.submit(Message("job", queue="tq"), ttl=0)


def test_every_fire_of_a_trigger_gets_the_ttl(broker: Broker) -> None:
    @task(broker, queue="fq", trigger=IntervalTrigger(seconds=1))
    def tick() -> None:
        pass

    with pytest.raises(ValidationError, match="ttl must be a positive int"):
        tick.generate(ttl=-1)
    try:
        tick.generate(ttl=60_000)
        deadline = time.monotonic() + 10
        while not broker.counts("fq").ready and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        tick.shutdown()
    fired = [m for _, _, m in broker.messages("fq") if m is not None]
    assert fired and all(m.expires_at is not None and m.expires_at > m.created_at for m in fired)


def test_sync_reads_what_a_worker_recorded(broker: Broker) -> None:
    @task(broker, queue="yq", max_retries=1, backoff=ConstantBackoff(constant=60_000, floor=None))
    def flaky() -> None:
        raise RuntimeError("try later")

    message = flaky.generate()
    for claimed in Consumer(broker, subset=["yq"]).claim(1):
        broker.retry(claimed)
    synced = broker.sync(message)
    assert (message.retries, synced.retries) == (0, 1)
    broker.remove(message)
    with pytest.raises(MessageDoesNotExistsError):
        broker.sync(message)


# --- Message -----------------------------------------------------------------------------


def test_message_reference_methods(backend: Backend) -> None:
    message = Message("t", kwargs={"k": [1]}, metadata={"m": 1})
    twin = message.duplicate()
    assert twin.uuid != message.uuid and twin.kwargs == message.kwargs
    twin.kwargs["k"].append(2)
    assert message.kwargs == {"k": [1]}
    assert message.duplicate(uuid="fixed").uuid == "fixed"
    before = message.updated_at
    assert message.increment() is message and message.retries == 1 and message.updated_at >= before
    assert message.get_backoff_duration() == ExponentialBackoff().get(1)
    with pytest.raises(KeyError, match="no field 'colour'"):
        message.update(colour="red", priority=9)
    with pytest.raises(ValidationError, match="retries must be an int >= 0"):
        message.update(retries=-1, priority=9)
    assert (message.priority, message.retries) == (0, 1)
    assert message.update(args=[1, 2]).args == (1, 2)

    lock = Lock("work", backend=backend)
    assert lock.acquire()
    message.link_lock(lock)
    with pytest.raises(AttributeError, match="already linked"):
        message.link_lock(Lock("other", backend=backend))
    assert message.unlink_lock() == "work" and not lock.held
    assert message.unlink_lock(missing_ok=True) is None
    with pytest.raises(AttributeError, match="no linked lock"):
        message.unlink_lock()


# --- Lock ----------------------------------------------------------------------------------


def test_lock_auto_release_and_names(backend: Backend) -> None:
    with Lock("kept", backend=backend, auto_release=False) as lock:
        assert lock.acquire()
    assert lock.held
    assert lock.long_name == "locks:kept"
    assert lock.full_name == f"{backend.namespace}:locks:kept"
    assert lock.release()
    with Lock("freed", backend=backend) as lock:
        assert lock.acquire()
    assert not lock.held


# --- StatusTracker ---------------------------------------------------------------------------


def test_wait_for_takes_a_poll_interval_and_refuses_nonsense(broker: Broker, backend: Backend) -> None:
    tracker = StatusTracker(backend)

    @task(broker, status_tracker=tracker)
    def quick() -> int:
        return 1

    message = quick.generate()
    run_until_empty([quick])
    assert tracker.wait_for(message, TaskStatus.SUCCEEDED, poll_interval=0.01) == TaskStatus.SUCCEEDED
    assert tracker.wait_for(message, [TaskStatus.FAILED, TaskStatus.SUCCEEDED]) == TaskStatus.SUCCEEDED
    waiting = quick.generate()
    assert tracker.wait_for(waiting, TaskStatus.SUCCEEDED, timeout=0.1, raise_on_timeout=False) == (
        TaskStatus.SUBMITTED
    )
    for nonsense in ("SUCCEEDED", 5, [], ["SUCCEEDED"]):
        with pytest.raises(ValueError, match="TaskStatus"):
            tracker.wait_for(message, nonsense)  # type: ignore[arg-type]


# --- Task -------------------------------------------------------------------------------------


def test_op_deferred_and_result_ttl(broker: Broker) -> None:
    class Doubled(Task):
        def op(self, message: Message) -> Any:
            return 2 * super().op(message)

    @task(broker, base_task=Doubled)
    def seven() -> int:
        return 7

    assert seven.op(seven.generate(submit=False)) == 14
    assert not seven.deferred
    seven.defer()
    assert seven.deferred
    seven.generate()
    assert not seven.deferred and broker.counts(seven.queue).ready == 0
    with pytest.raises(ValidationError, match="no result_store"):
        seven.generate(result_ttl=1_000)
    assert broker.counts(seven.queue).ready == 0


def test_trigger_task_generated_and_base_task(broker: Broker) -> None:
    @task(broker, trigger=IntervalTrigger(hours=1), base_task=Task)
    def hourly() -> int:
        return 1

    assert isinstance(hourly, TriggerTask)
    try:
        assert not hourly.generated
        hourly.generate()
        assert hourly.generated
        with pytest.raises(SchedulingError, match="already scheduled"):
            hourly.generate()
        hourly.clear()
        assert not hourly.generated
    finally:
        hourly.shutdown()
    with pytest.raises(SchedulingError, match="cannot take parameters"):

        @task(broker, trigger=IntervalTrigger(hours=1), base_task=Task)
        def needs(x: int) -> int:
            return x


# --- Backend ----------------------------------------------------------------------------------


def test_namespace_helpers_and_clear_namespace(backend: Backend, broker: Broker) -> None:
    full = backend.full_name("a")
    assert full == f"{backend.namespace}:a" and backend.full_name(full) == full
    assert backend.in_namespace(full) and not backend.in_namespace("a")
    backend.set("a", 1)
    backend.set("b", 2)
    broker.submit(Message("t", queue="cq"))
    dead = broker.submit(Message("t", queue="cq2"))
    broker.fail(claim(broker, "cq2"), RuntimeError("x"))
    assert broker.in_dlq(dead)
    assert backend.clear_namespace() >= 4
    assert list(backend.scan()) == [] and broker.queues() == []
    with pytest.raises(ValueError, match="a name the library uses"):
        Backend.__init__(type(backend).__new__(type(backend)), namespace="queues")


# --- CLI ----------------------------------------------------------------------------------------


def test_cli_help_and_version() -> None:
    def alsek(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "alsek_cli", *args], capture_output=True, text=True,
                              timeout=60)

    assert "Alsek: a distributed task queue" in alsek("--help").stdout
    version = alsek("--version")
    assert version.returncode == 0 and version.stdout.strip() == "alsek, version 0.1.0"


def test_a_message_built_by_hand_retries_on_its_own_schedule(broker: Broker) -> None:
    """The default backoff matters to workers too: a failure waits for it."""
    attempts: list[float] = []

    @task(broker, queue="hq", max_retries=1)
    def fails() -> None:
        attempts.append(time.monotonic())
        raise RuntimeError("no")

    broker.submit(Message("fails", queue="hq"))
    with pytest.raises(TimeoutError):
        run_until_empty([fails], timeout=0.5)
    assert len(attempts) == 1 and broker.counts("hq").delayed == 1


# --- Revoke (the day-two issue's first bullet) -------------------------------------------------


def test_alsek_revoke_command(tmp_path: Any) -> None:
    from alsek_core.config import backend_from_url

    url = f"sqlite:///{tmp_path}/store"
    backend = backend_from_url(url)
    assert isinstance(backend, Backend)
    try:
        broker, tracker = Broker(backend), StatusTracker(backend)
        ran: list[int] = []

        @task(broker, queue="cli", status_tracker=tracker)
        def job(i: int) -> None:
            ran.append(i)

        tracked, untracked = job.generate(args=[1]), broker.submit(Message("job", queue="cli", args=[2]))
        kept = job.generate(args=[3])
        done = subprocess.run([sys.executable, "-m", "alsek_cli", "revoke", tracked.uuid, untracked.uuid,
                               "--backend", url], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and "revoked 2 message(s)" in done.stdout, done.stderr
        assert tracker.get(tracked) == TaskStatus.FAILED
        run_until_empty([job])
        assert ran == [3] and tracker.get(kept) == TaskStatus.SUCCEEDED
        assert {m.uuid for m in broker.dead_letters("cli")} == {tracked.uuid, untracked.uuid}
        again = subprocess.run([sys.executable, "-m", "alsek_cli", "revoke", kept.uuid, "--backend", url],
                               capture_output=True, text=True, timeout=60)
        assert "already ended (SUCCEEDED)" in again.stderr and "revoked 0" in again.stdout
        missing = subprocess.run([sys.executable, "-m", "alsek_cli", "revoke", "--backend", url],
                                 capture_output=True, text=True, timeout=60)
        assert missing.returncode != 0 and "UUIDS" in missing.stderr
    finally:
        backend.close()


def test_revoke_refuses_what_is_not_a_message(broker: Broker) -> None:
    for nonsense in ("", "   ", None, 42):
        with pytest.raises(ValidationError, match="a Message or a message uuid"):
            broker.revoke(nonsense)  # type: ignore[arg-type]
