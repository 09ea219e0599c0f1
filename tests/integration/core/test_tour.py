"""The Alsek guided tour (seed 001, and 002 where 001 is silent), section by
section, on every registered backend. Each example is the seed's, changed only
in its backend line and in running messages with ``run_until_empty``."""

from __future__ import annotations

import time
from typing import Any

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from alsek import Broker, Lock, Message, task
from alsek.core.backoff import ConstantBackoff, ExponentialBackoff, LinearBackoff
from alsek.core.consumer import Consumer
from alsek.core.status import StatusTrackerIntegryScanner, TaskStatus
from alsek.core.task import Task, TriggerTask
from alsek.storage.backends import Backend, LazyClient
from alsek.storage.backends.disk import DiskCacheBackend
from alsek.storage.result import ResultStore
from alsek.storage.serialization import JsonSerializer, Serializer
from alsek.tools import ResultPool
from alsek_core.errors import SerializationError, ValidationError
from alsek_core.result import store_for
from alsek_core.status import BaseStatusTracker, tracker_for
from alsek_core.testing.contract.fixtures import wipe
from alsek_core.testing.runner import run_until_empty


@pytest.fixture
def broker(backend: Backend) -> Broker:
    return Broker(backend)


@pytest.fixture
def result_store(backend: Backend) -> ResultStore:
    """The backend's own store: key-value records, or native tables (PostgreSQL)."""
    return store_for(backend)


@pytest.fixture
def status_tracker(backend: Backend) -> BaseStatusTracker:
    return tracker_for(backend)


# --- Backends -----------------------------------------------------------------------


def test_lazy_client_defers_connecting(tmp_path: Any) -> None:
    made = []

    def connect() -> Any:
        import diskcache

        made.append(1)
        return diskcache.Cache(str(tmp_path))

    lazy_backend = DiskCacheBackend(LazyClient(connect))
    assert made == []
    assert lazy_backend.count("queues:math_ops") == 0
    assert made == [1]


def test_namespaces_keep_data_apart(backend: Backend, backend_factory: Any) -> None:
    other = type(backend).__new__(type(backend))
    other.__dict__.update(backend.__dict__)
    other.namespace = backend.namespace + "-other"
    backend.set("name", "mine")
    assert not other.exists("name")
    assert list(other.scan()) == []


# --- Serializers ----------------------------------------------------------------------


def test_custom_serializer_on_the_backend(backend_factory: Any) -> None:
    class ShoutingJson(Serializer):
        def dumps(self, obj: Any) -> bytes:
            return JsonSerializer().dumps(obj).upper()

        def loads(self, data: bytes) -> Any:
            return JsonSerializer().loads(data.lower())

    backend = backend_factory()
    backend.serializer = ShoutingJson()
    try:
        backend.set("greeting", "hello")
        assert backend.get("greeting") == "hello"
    finally:
        wipe(backend)  # a backend of its own, not the fixture's: it cleans up after itself


# --- Messages -------------------------------------------------------------------------


def test_message_properties(broker: Broker) -> None:
    @task(broker)
    def simple_task() -> int:
        return 99

    message = simple_task.generate()
    assert message.task_name == "simple_task" and message.queue == "alsek_queue"
    assert message.timeout == 3_600_000 and message.mechanism == "process"
    assert message.backoff_settings == {
        "algorithm": "ExponentialBackoff",
        "parameters": {
            "base": 4,
            "factor": 10000,
            "floor": 60000,
            "ceiling": 3600000,
            "zero_override": True,
        },
    }
    assert message.data["task_name"] == "simple_task"
    assert (
        message.summary
        == f"Message(uuid={message.uuid!r}, queue='alsek_queue', task='simple_task')"
    )
    assert message.ready_at == message.created_at
    assert message.ttr == 0 and message.ready is True
    assert message.descendant_uuids is None
    for field in (
        "progenitor_uuid",
        "previous_message_uuid",
        "callback_message_data",
        "exception_details",
    ):
        assert f"{field}=" in repr(message)
    assert Message(**message.data) == message


def test_message_validation_is_clear() -> None:
    with pytest.raises(ValidationError, match="priority must be an int"):
        Message("t", priority="high")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="delay must be an int >= 0"):
        Message("t", delay=-5)
    with pytest.raises(ValidationError, match="mechanism must be one of"):
        Message("t", mechanism="fiber")
    with pytest.raises(ValidationError, match="invalid queue name"):
        Message("t", queue="no spaces allowed")


# --- Brokers --------------------------------------------------------------------------


def test_broker_methods(broker: Broker) -> None:
    @task(broker, queue="bq")
    def job() -> None:
        pass

    message = job.generate()
    assert broker.exists(message)
    [claimed] = Consumer(broker, subset=["bq"]).claim(1)
    broker.nack(claimed)  # eligible again at once
    [claimed] = Consumer(broker, subset=["bq"]).claim(1)
    broker.retry(claimed)
    assert claimed.retries == 1 and broker.exists(claimed)
    assert broker.counts("bq").delayed == 1  # waits for its backoff
    broker.remove(message)
    assert not broker.exists(message)
    broker.ack(message)  # idempotent

    failing = job.generate()
    [claimed] = Consumer(broker, subset=["bq"]).claim(1)
    broker.fail(claimed, RuntimeError("no"))
    assert not broker.exists(failing)
    [dead] = broker.dead_letters("bq")
    assert dead.uuid == failing.uuid and dead.exception_details["name"] == "RuntimeError"
    broker.replay(dead)
    assert broker.exists(failing) and broker.dead_letters("bq") == []
    assert broker.purge("bq") == 1


def test_submit_many_and_duplicates(broker: Broker) -> None:
    from alsek_core.errors import MessageAlreadyExistsError

    @task(broker)
    def job() -> None:
        pass

    messages = [job.generate(submit=False) for _ in range(50)]
    assert broker.submit_many(messages) == 50
    assert broker.counts("alsek_queue").ready == 50
    with pytest.raises(MessageAlreadyExistsError):
        broker.submit(messages[0])
    assert broker.submit_many([*messages[:10], job.generate(submit=False)]) == 1  # duplicates skipped


def test_submit_many_stopped_by_a_bad_message_can_be_sent_again(broker: Broker) -> None:
    from alsek_core.errors import SerializationError

    @task(broker, queue="again")
    def job(value: object = None) -> None:
        pass

    good = [job.generate(submit=False) for _ in range(3)]
    with pytest.raises(SerializationError):
        broker.submit_many([*good, job.generate(args=(object(),), submit=False)])
    before = broker.counts("again").ready  # all, none or some, depending on the backend
    assert broker.submit_many(good) == 3 - before  # what went before the bad one is skipped, not doubled
    assert broker.counts("again").ready == 3


# --- Tasks ----------------------------------------------------------------------------


def test_task_stays_callable(broker: Broker) -> None:
    @task(broker)
    def add(a: int, b: int) -> int:
        return a + b

    assert add(1, b=1) == 2
    assert isinstance(add, Task)


def test_mechanism_and_timeout(broker: Broker) -> None:
    @task(broker, mechanism="thread", timeout=90 * 1000)
    def my_task() -> int:
        return 99

    message = my_task.generate()
    assert (message.mechanism, message.timeout) == ("thread", 90_000)
    with pytest.raises(ValidationError):
        task(broker, mechanism="fiber")(lambda: None)


def test_priority_across_tasks_of_a_queue(broker: Broker) -> None:
    order: list[str] = []

    @task(broker, queue="my_queue")
    def task_a() -> str:
        order.append("A")
        return "A!"

    @task(broker, queue="my_queue")
    def task_b() -> str:
        order.append("B")
        return "B!"

    task_a.generate(priority=1)
    task_b.generate(priority=2)
    task_a.generate(priority=0)
    task_b.generate(priority=0)
    run_until_empty([task_a, task_b])
    assert order == ["A", "B", "A", "B"]


def test_trigger_task(broker: Broker, result_store: ResultStore) -> None:
    @task(broker, result_store=result_store, trigger=IntervalTrigger(seconds=1))
    def check_system_usage() -> int:
        return 99

    assert isinstance(check_system_usage, TriggerTask)
    message = check_system_usage.generate()
    try:
        time.sleep(2.5)
        check_system_usage.pause()
        run_until_empty([check_system_usage])
        results = result_store.get(message, timeout=5_000, descendants=True)
        assert 1 <= len(results) <= 3 and set(results) == {99}
        check_system_usage.resume()
        check_system_usage.clear()
    finally:
        check_system_usage.shutdown()


def test_trigger_with_parameters_is_refused(broker: Broker) -> None:
    with pytest.raises(ValidationError, match="cannot take parameters"):

        @task(broker, trigger=IntervalTrigger(hours=1))
        def needs_args(x: int) -> int:
            return x


def test_trigger_fires_once_across_schedulers(broker: Broker) -> None:
    """Two copies of one TriggerTask (as in two processes) submit each fire once."""
    copies = []
    for _ in range(2):

        @task(broker, name="heartbeat", queue="beats", trigger=IntervalTrigger(seconds=1))
        def heartbeat() -> None:
            pass

        copies.append(heartbeat)
    try:
        for copy in copies:
            copy.generate()
        time.sleep(3.5)
    finally:
        for copy in copies:
            copy.shutdown()
    counts = broker.counts("beats")
    submitted = counts.ready + counts.delayed
    assert 2 <= submitted <= 4, f"{submitted} messages for about 3 fires"


def test_message_passing(broker: Broker) -> None:
    seen: list[Any] = []

    @task(broker)
    def my_task(message: Message) -> None:
        seen.append(message.uuid)

    @task(broker)
    def untyped(message) -> None:  # type: ignore[no-untyped-def]
        seen.append(type(message).__name__)

    @task(broker)
    def hinted_otherwise(message: str = "default") -> None:
        seen.append(message)

    @task(broker)
    def given_in_kwargs(message: Message) -> None:
        seen.append(message)

    m = my_task.generate()
    untyped.generate()
    hinted_otherwise.generate()
    given_in_kwargs.generate(kwargs={"message": "string"})
    run_until_empty([my_task, untyped, hinted_otherwise, given_in_kwargs])
    assert sorted(map(str, seen)) == sorted([m.uuid, "Message", "default", "string"])


def _chain_tasks(broker: Broker, result_store: ResultStore) -> tuple[Task, Task, Task, list[Any]]:
    printed: list[Any] = []

    @task(broker, result_store=result_store)
    def add_1(number: int) -> int:
        return number + 1

    @task(broker, result_store=result_store)
    def add_1_previous(message: Message) -> int:
        return int(message.previous_result) + 1

    @task(broker, result_store=result_store)
    def print_result(message: Message) -> None:
        printed.append(
            (message.previous_result, message.previous_message_uuid, message.progenitor_uuid)
        )

    return add_1, add_1_previous, print_result, printed


def test_callbacks_nested_and_flat_are_identical(broker: Broker, result_store: ResultStore) -> None:
    add_1, add_1_previous, print_result, printed = _chain_tasks(broker, result_store)
    nested = add_1.generate(
        args=(1,),
        callback=(
            add_1_previous.defer().generate(
                callback=add_1_previous.defer().generate(
                    callback=add_1_previous.defer().generate(
                        callback=print_result.defer().generate()
                    )
                ),
            )
        ),
    )
    flat_chain = (
        add_1_previous.defer().generate(),
        add_1_previous.defer().generate(),
        add_1_previous.defer().generate(),
        print_result.defer().generate(),
    )
    flat = add_1.generate(args=(1,), callback=flat_chain)
    assert flat_chain[0].callback_message_data == flat_chain[1].data  # rewritten in place

    def shape(message: Message) -> list[str]:
        names, data = [], message.callback_message_data
        while data:
            names.append(data["task_name"])
            data = data["callback_message_data"]
        return names

    assert shape(nested) == shape(flat) == ["add_1_previous"] * 3 + ["print_result"]
    assert len(flat.descendant_uuids or []) == 4
    assert broker.counts("alsek_queue").ready == 2, "deferred callbacks are not submitted"
    run_until_empty([add_1, add_1_previous, print_result])
    assert [p[0] for p in printed] == [5, 5]
    assert {p[2] for p in printed} == {nested.uuid, flat.uuid}, "progenitor is the root message"
    assert result_store.get(flat, descendants=True) == [2, 3, 4, 5, None]


def test_defer_is_cancelled_by_generate(broker: Broker) -> None:
    @task(broker)
    def job() -> None:
        pass

    job.defer().generate()
    job.generate()
    assert broker.counts("alsek_queue").ready == 1


def test_do_callback_control(broker: Broker) -> None:
    ran: list[int] = []

    class CustomTask1(Task):
        def do_callback(self, message: Message, result: Any) -> bool:
            return bool(result > 1)

    @task(broker, base_task=CustomTask1)
    def value(x: int) -> int:
        return x

    @task(broker)
    def follow(message: Message) -> None:
        ran.append(message.previous_result)

    value.generate(args=(1,), callback=follow.defer().generate())
    value.generate(args=(2,), callback=follow.defer().generate())
    run_until_empty([value, follow])
    assert ran == [2]


def test_pre_and_post_ops(broker: Broker) -> None:
    events: list[str] = []

    class CustomTask2(Task):
        def pre_op(self, message: Message) -> None:
            events.append(f"About to process {message.summary}!")

        def post_op(self, message: Message, result: Any) -> None:
            events.append(f"Processed {message.summary} and got '{result}'!")

    @task(broker, base_task=CustomTask2)
    def simple_task() -> int:
        return 99

    m = simple_task.generate()
    run_until_empty([simple_task])
    assert events == [f"About to process {m.summary}!", f"Processed {m.summary} and got '99'!"]


def test_retries_and_do_retry(broker: Broker) -> None:
    attempts: list[str] = []

    class CustomTask3(Task):
        def do_retry(self, message: Message, exception: BaseException) -> bool:
            if isinstance(exception, ZeroDivisionError):
                return False
            elif self.max_retries is None:
                return True
            return message.retries < self.max_retries

    @task(broker, base_task=CustomTask3, max_retries=2, backoff=None)
    def flaky(kind: str) -> int:
        attempts.append(kind)
        if kind == "zero":
            return 1 // 0
        raise ValueError(kind)

    flaky.generate(args=("zero",))
    flaky.generate(args=("value",))
    run_until_empty([flaky])
    assert attempts.count("zero") == 1
    assert attempts.count("value") == 3  # first try + max_retries
    assert len(broker.dead_letters()) == 2


def test_backoff_algorithms() -> None:
    assert ConstantBackoff(constant=30 * 1000).get(3) == 60_000  # floor applies
    assert ConstantBackoff(constant=30 * 1000, floor=0).get(3) == 30_000
    assert LinearBackoff(factor=30 * 1000).get(3) == 90_000
    assert ExponentialBackoff(ceiling=90 * 1000).get(5) == 90_000
    assert ExponentialBackoff().get(0) == 0  # zero_override
    assert ExponentialBackoff(floor=0).get(1) == 40_000


def test_backoff_none_is_constant_zero(broker: Broker) -> None:
    @task(broker, backoff=None)
    def job() -> None:
        pass

    assert job.backoff == ConstantBackoff(constant=0, floor=0, ceiling=0, zero_override=True)


# --- Status tracking ------------------------------------------------------------------


def test_status_tracking(backend: Backend, status_tracker: BaseStatusTracker) -> None:
    broker = Broker(backend)

    @task(broker, status_tracker=status_tracker)
    def sum_n(n: int) -> int:
        return int(n * (n + 1) / 2)

    message = sum_n.generate(kwargs={"n": 100})
    assert status_tracker.get(message) == TaskStatus.SUBMITTED
    run_until_empty([sum_n])
    assert status_tracker.wait_for(message, TaskStatus.SUCCEEDED, timeout=5) == TaskStatus.SUCCEEDED
    # The tour's numbers, and REVOKED after them (a run stopped by a revoke).
    assert [s.value for s in TaskStatus] == [0, 1, 2, 3, 4, 5, 6] and TaskStatus.REVOKED.value == 6
    assert list(status_tracker.listen(message, timeout=1)) == [TaskStatus.SUCCEEDED]
    with pytest.raises(TimeoutError):
        status_tracker.wait_for(message, TaskStatus.FAILED, timeout=0.2)


def test_integrity_scanner(backend: Backend, status_tracker: BaseStatusTracker) -> None:
    broker = Broker(backend)

    @task(broker, status_tracker=status_tracker)
    def job() -> None:
        pass

    lost = job.generate()
    kept = job.generate()
    broker.remove(lost)  # as if its worker vanished and nobody will retry it
    assert StatusTrackerIntegryScanner(status_tracker, broker).scan() == 1
    assert status_tracker.get(lost) == TaskStatus.UNKNOWN
    assert status_tracker.get(kept) == TaskStatus.SUBMITTED


# --- Result storage -------------------------------------------------------------------


def test_result_store(broker: Broker, result_store: ResultStore) -> None:
    @task(broker, result_store=result_store)
    def valuable_output() -> dict[str, int]:
        return {"a": 1, "b": 2, "c": 3}

    message = valuable_output.generate()
    run_until_empty([valuable_output])
    meta = result_store.get(message, keep=True, with_metadata=True)
    assert meta["result"] == {"a": 1, "b": 2, "c": 3} and meta["uuid"] == message.uuid
    assert result_store.get(message) == {"a": 1, "b": 2, "c": 3}
    with pytest.raises(KeyError):
        result_store.get(message)  # deleted once fetched


def test_result_store_on_another_backend(broker: Broker, tmp_path: Any) -> None:
    result_store = ResultStore(DiskCacheBackend(str(tmp_path)))

    @task(broker, result_store=result_store)
    def valuable_output() -> dict[str, int]:
        return {"a": 1}

    message = valuable_output.generate()
    run_until_empty([valuable_output])
    assert result_store.get(message) == {"a": 1}


def test_result_ttl(broker: Broker, result_store: ResultStore) -> None:
    @task(broker, result_store=result_store)
    def short_lived() -> int:
        return 1

    message = short_lived.generate(result_ttl=300)
    run_until_empty([short_lived])
    assert result_store.exists(message)
    time.sleep(0.6)
    assert not result_store.exists(message)


def test_result_timeout_raises(broker: Broker, result_store: ResultStore) -> None:
    @task(broker, result_store=result_store)
    def never_run() -> int:
        return 1

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        result_store.get(never_run.generate(), timeout=300)
    assert time.monotonic() - started < 10


def test_result_pool(broker: Broker, result_store: ResultStore) -> None:
    result_pool = ResultPool(result_store)

    @task(broker, result_store=result_store)
    def sum_n(n: int) -> int:
        return int(n * (n + 1) / 2)

    messages = [sum_n.generate(kwargs=dict(n=n)) for n in (10, 100, 1000)]
    run_until_empty([sum_n])
    got = {m.uuid: r for m, r in result_pool.istream(*messages, descendants=False, keep=True)}
    assert got == {messages[0].uuid: 55, messages[1].uuid: 5050, messages[2].uuid: 500500}
    assert [r for _, r in result_pool.stream(*messages, timeout=5_000)] == [55, 5050, 500500]


def test_unencodable_result_fails_cleanly(
    backend: Backend, result_store: ResultStore, status_tracker: BaseStatusTracker
) -> None:
    broker, result_store, status_tracker = (
        Broker(backend),
        result_store,
        status_tracker,
    )

    @task(broker, result_store=result_store, status_tracker=status_tracker)
    def returns_object() -> object:
        return object()

    message = returns_object.generate()
    run_until_empty([returns_object])
    assert status_tracker.get(message) == TaskStatus.FAILED
    [dead] = broker.dead_letters()
    assert dead.uuid == message.uuid and dead.exception_details["name"] == "SerializationError"


def test_a_result_json_cannot_hold_fails_the_message(
    broker: Broker, status_tracker: BaseStatusTracker, result_store: ResultStore
) -> None:
    @task(broker, status_tracker=status_tracker, result_store=result_store)
    def returns_nan() -> float:
        return float("nan")

    message = returns_nan.generate()
    run_until_empty([returns_nan])
    assert status_tracker.get(message) == TaskStatus.FAILED
    [dead] = broker.dead_letters()
    assert dead.uuid == message.uuid and dead.exception_details["name"] == "SerializationError"
    assert "nan" in dead.exception_details["text"]


def test_unencodable_argument_is_refused_at_generate(broker: Broker) -> None:
    @task(broker)
    def takes(x: Any) -> None:
        pass

    with pytest.raises(SerializationError, match="object"):
        takes.generate(args=(object(),))
    with pytest.raises(SerializationError, match=r"key \(1, 2\).*\['kwargs'\]\['x'\]"):
        takes.generate(kwargs={"x": {(1, 2): "pair"}})
    with pytest.raises(SerializationError, match=r"nan.*\['args'\]\[0\]"):
        takes.generate(args=(float("nan"),))
    assert broker.counts(takes.queue).ready == 0
    with pytest.raises(ValidationError, match="args must be a tuple or list"):
        takes.generate(args="not a tuple")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="kwargs must be a dict"):
        takes.generate(kwargs=[1])  # type: ignore[arg-type]


# --- Concurrency ----------------------------------------------------------------------


def test_lock(backend: Backend) -> None:
    sent: list[str] = []
    with Lock("send_data", backend=backend) as lock:
        if lock.acquire(strict=False):
            sent.append("Sending data...")
        assert lock.held and lock.holder == lock.owner_id
        rival = Lock("send_data", backend=backend, owner_id="someone-else")
        assert not rival.acquire(strict=False)
        assert lock.acquire(strict=False) and not lock.acquire(strict=True)
    assert sent == ["Sending data..."]
    assert not lock.held and lock.holder is None


def test_lock_expires_when_holder_dies(backend: Backend) -> None:
    assert Lock("dies", backend=backend, ttl=300, owner_id="dead-worker").acquire()
    assert not Lock("dies", backend=backend).acquire()
    time.sleep(0.6)
    assert Lock("dies", backend=backend).acquire()


def test_late_release_leaves_the_next_holders_lock(backend: Backend) -> None:
    slow = Lock("job", backend=backend, ttl=200, owner_id="slow")
    assert slow.acquire()
    time.sleep(0.4)  # slow's lock expires while it still works
    quick = Lock("job", backend=backend, owner_id="quick")
    assert quick.acquire()
    assert slow.release() is False
    assert quick.held


def _count_under_lock(factory: Any, rounds: int) -> None:
    backend = factory()
    lock = Lock("counter", backend=backend, ttl=10_000)
    for _ in range(rounds):
        while not lock.acquire():
            time.sleep(0.001)
        value = backend.get("counter", default=0)
        time.sleep(0.001)  # widen the window a missing lock would let others in
        backend.set("counter", value + 1)
        lock.release()


def test_lock_across_processes(backend: Backend, backend_factory: Any, process_local: bool) -> None:
    import multiprocessing
    import threading

    rounds, workers = 25, 4
    if not process_local:
        ctx = multiprocessing.get_context("spawn")
        runners: list[Any] = [
            ctx.Process(target=_count_under_lock, args=(backend_factory, rounds))
            for _ in range(workers)
        ]
    else:
        runners = [
            threading.Thread(target=_count_under_lock, args=(backend_factory, rounds))
            for _ in range(workers)
        ]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join(timeout=120)
    assert backend.get("counter") == rounds * workers


# --- Consumers ------------------------------------------------------------------------


def test_consumer_stream(broker: Broker) -> None:
    @task(broker, queue="c1")
    def job(i: int) -> None:
        pass

    for i in range(3):
        job.generate(args=(i,))
    consumer = Consumer(broker)
    got = []
    for message in consumer.stream():
        got.append(message.args[0])
        broker.ack(message)
        if len(got) == 3:
            consumer.stop()
    assert got == [0, 1, 2]
