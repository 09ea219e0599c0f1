"""The worker pools' parts, in one process: the multiprocessing switch, the
shared slot table, thread interrupts, claim-ahead bookkeeping, and
BaseWorkerPool's contract with a subclass of its own."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
import uuid as uuid_lib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest

from alsek_core import outcome
from alsek_core.broker import Broker
from alsek_core.errors import ConfigError, DuplicateMessageError, RevokedError, ValidationError
from alsek_core.message import Message
from alsek_core.middleware import Outcome
from alsek_core.ports import ChordJoin, Delivery, Envelope, ResultWrite, Settlement, StatusWrite
from alsek_core.result import ResultStore
from alsek_core.settle_batch import RUNNING_AFTER_S
from alsek_core.status import StatusTracker, TaskStatus
from alsek_core.task import Task, task
from alsek_core.worker import BaseWorkerPool, TaskTimeoutError, settlement_record
from alsek_core.worker.holdings import MAX_CLAIM_AHEAD, Holdings
from alsek_core.worker.interrupt import Interruptible
from alsek_core.worker.mp import ENV_MP_BACKEND, context, multiprocessing_module
from alsek_core.worker.runtime import SharedHoldings
from alsek_core.worker.slots import BUFFER_BYTES, LEASE_BYTES, Held, LeaseBook, SlotTable
from alsek_serializers import JsonSerializer
from tests.five_method import DictBackend

# --- ALSEK_MULTIPROCESSING_BACKEND ---------------------------------------------------


def test_multiprocessing_is_the_stdlib_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_MP_BACKEND, raising=False)
    assert multiprocessing_module() is multiprocessing
    assert context().get_start_method() == "fork"


def test_torch_backend_without_torch_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_MP_BACKEND, "torch")
    monkeypatch.setitem(sys.modules, "torch", None)  # not importable, whatever is installed
    with pytest.raises(ConfigError, match=r"ALSEK_MULTIPROCESSING_BACKEND=torch .*torch\.multiprocessing"):
        multiprocessing_module()


def test_unknown_multiprocessing_backend_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_MP_BACKEND, "billiard")
    with pytest.raises(ConfigError, match="'billiard' is not supported; use one of: multiprocessing, torch"):
        multiprocessing_module()


# --- the slot table --------------------------------------------------------------------


def _delivery(payload: bytes = b"payload") -> Delivery:
    return Delivery("queue", str(uuid_lib.uuid4()), payload, uuid_lib.uuid4().hex, 2)


def test_slot_table_round_trip() -> None:
    table = SlotTable(context(), 2)
    delivery = _delivery(b"\x00binary\xff")
    table.begin(1, delivery, timeout_ms=5_000, terminate=True)
    state = table.read(1)
    assert state is not None and state.busy and state.terminate and state.has_payload
    assert state.delivery == delivery
    assert 4 < state.deadline - time.monotonic() <= 5
    idle = table.read(0)
    assert idle is not None and not idle.busy and idle.delivery is None
    table.end(1)
    ended = table.read(1)
    assert ended is not None and not ended.busy and ended.seq > state.seq


def test_slot_table_keeps_the_lease_of_a_payload_too_big_for_it() -> None:
    table = SlotTable(context(), 1)
    delivery = _delivery(b"x" * BUFFER_BYTES)
    table.begin(0, delivery, timeout_ms=1_000, terminate=False)
    state = table.read(0)
    assert state is not None and state.delivery is not None and not state.has_payload
    assert (state.delivery.uuid, state.delivery.token, state.delivery.payload) == (delivery.uuid, delivery.token, b"")


def test_slot_table_is_shared_with_a_forked_child() -> None:
    table = SlotTable(context(), 1)
    delivery = _delivery()
    child = context().Process(target=table.begin, args=(0, delivery, 1_000, False))
    child.start()
    child.join()
    state = table.read(0)
    assert state is not None and state.delivery == delivery


def test_a_stop_request_names_one_run_of_a_slot_never_the_next() -> None:
    table = SlotTable(context(), 2)
    table.begin(0, _delivery(), timeout_ms=1_000, terminate=False)
    state = table.read(0)
    assert state is not None and not table.stop_requested(0)
    table.request_stop(0, state.seq)
    assert table.stop_requested(0) and not table.stop_requested(1)
    table.end(0)
    assert not table.stop_requested(0)
    table.begin(0, _delivery(), timeout_ms=1_000, terminate=False)
    assert not table.stop_requested(0), "the request was for the run before"


def test_lease_book_keeps_what_a_child_holds_for_its_parent() -> None:
    book = LeaseBook(context(), 4)
    holdings = SharedHoldings(book, range(2, 4))
    small, big = _delivery(b"small payload"), _delivery(b"x" * LEASE_BYTES)
    holdings.add(small)
    holdings.add(big)
    holdings.add(_delivery())  # no room left: not written down, still held
    assert len(holdings) == 3
    found = {h.delivery.uuid: h.delivery for h in filter(None, (book.take(2), book.take(3)))}
    assert found[small.uuid] == small
    assert found[big.uuid].payload == b"" and found[big.uuid].token == big.token
    assert book.take(3) is None, "taking clears"


def test_shared_holdings_free_their_records() -> None:
    book = LeaseBook(context(), 1)
    holdings = SharedHoldings(book, range(1))
    first, second = _delivery(), _delivery()
    holdings.add(first)
    holdings.finish(first.uuid, run_s=0.01)
    holdings.add(second)
    assert book.take(0) == Held(second, False)


def test_shared_holdings_keep_a_finished_message_until_its_ack_is_done() -> None:
    book = LeaseBook(context(), 2)
    holdings = SharedHoldings(book, range(2))
    done, acked_first = _delivery(), _delivery()
    holdings.add(done)
    holdings.add(acked_first)
    holdings.finish(done.uuid, run_s=0.01, awaiting_ack=True)
    holdings.acked([acked_first.uuid])  # its ack went before its thread said it waited
    holdings.finish(acked_first.uuid, run_s=0.01, awaiting_ack=True)
    assert len(holdings) == 0 and book.count(range(2)) == 1
    holdings.acked([done.uuid])
    assert book.count(range(2)) == 0
    holdings.add(done)
    holdings.finish(done.uuid, run_s=0.01, awaiting_ack=True)
    assert Held(done, True) in (book.take(0), book.take(1))


# --- thread interrupts -----------------------------------------------------------------


def test_a_thread_in_user_code_gets_task_timeout_error() -> None:
    window = Interruptible()
    caught: list[BaseException] = []
    entered = threading.Event()

    def user_code() -> None:
        try:
            with window:
                entered.set()
                while True:  # busy in Python: the exception lands
                    pass
        except TaskTimeoutError as exc:
            caught.append(exc)

    thread = threading.Thread(target=user_code)
    thread.start()
    entered.wait(5)
    assert window.interrupt()
    thread.join(5)
    assert not thread.is_alive()
    assert isinstance(caught[0], TimeoutError) and "past its timeout" in str(caught[0])
    assert not window.interrupt(), "once per message"


def test_a_revoked_thread_gets_revoked_error_once() -> None:
    window = Interruptible()
    caught: list[BaseException] = []
    entered = threading.Event()

    def user_code() -> None:
        try:
            with window:
                entered.set()
                while True:
                    time.sleep(0.01)  # short sleeps: the exception lands between them
        except RevokedError as exc:
            caught.append(exc)

    thread = threading.Thread(target=user_code)
    thread.start()
    entered.wait(5)
    assert window.interrupt(RevokedError)
    thread.join(5)
    assert not thread.is_alive() and isinstance(caught[0], RevokedError)
    assert not window.interrupt(), "a timeout does not land on top of it"


def test_no_interrupt_outside_user_code() -> None:
    window = Interruptible()
    assert not window.interrupt()
    assert window.interrupted is False


# --- claim-ahead bookkeeping ---------------------------------------------------------


def test_no_claim_ahead_until_run_times_are_known_and_none_for_slow_tasks() -> None:
    holdings = Holdings()
    assert holdings.claim_ahead(4) == 0
    holdings.add(_delivery())
    holdings.finish("any", run_s=0.0001)
    assert holdings.claim_ahead(4) == MAX_CLAIM_AHEAD
    for _ in range(30):
        holdings.finish("any", run_s=2.0)
    assert holdings.claim_ahead(4) == 0


def test_unstarted_messages_are_handed_back_started_ones_kept() -> None:
    holdings = Holdings()
    waiting, running = _delivery(), _delivery()
    holdings.add(waiting)
    holdings.add(running)
    assert holdings.start(running)
    assert holdings.take_unstarted(older_than_s=0) == [waiting]
    assert not holdings.start(waiting), "handed back: it must not run here any more"
    assert holdings.deliveries() == [running]


# --- BaseWorkerPool and a subclass ----------------------------------------------------


class ExecutorPool(BaseWorkerPool):
    """The subclass in BaseWorkerPool's docstring."""

    def __init__(self, tasks: Any, n_workers: int = 4, **options: Any) -> None:
        super().__init__(tasks, **options)
        self.executor = ThreadPoolExecutor(n_workers)
        self.n_workers = n_workers
        self.running = 0

    def free_slots(self) -> int:
        return self.n_workers - self.running

    def submit_to_executor(self, task: Task, message: Message) -> None:
        self.running += 1
        future = self.executor.submit(self.execute, task, message)
        future.add_done_callback(lambda _: self._done())

    def _done(self) -> None:
        self.running -= 1
        self.slot_freed()


@pytest.fixture
def broker() -> Iterator[Broker]:
    backend = DictBackend(store=uuid_lib.uuid4().hex)
    yield Broker(backend)


def _stop_when(pool: BaseWorkerPool, condition: Any, timeout: float = 20) -> threading.Thread:
    def watch() -> None:
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.01)
        pool.stop()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_a_subclass_runs_messages_and_dead_letters_unknown_ones(broker: Broker) -> None:
    results, tracker = ResultStore(broker.backend), StatusTracker(broker.backend)

    @task(broker, result_store=results, status_tracker=tracker)
    def double(x: int) -> int:
        return 2 * x

    messages = [double.generate(args=(i,)) for i in range(40)]
    stranger = broker.submit(Message("stranger", queue=double.queue))
    pool = ExecutorPool([double], backoff=None)
    _stop_when(pool, lambda: all(results.exists(m) for m in messages) and broker.dead_letters())
    pool.run()
    assert [results.get(m) for m in messages] == [2 * i for i in range(40)]
    (dead,) = broker.dead_letters()
    assert dead.uuid == stranger.uuid and "stranger" in dead.exception_details["text"]
    assert tracker.get(stranger) == TaskStatus.FAILED


def test_leases_are_kept_alive_while_a_task_runs(broker: Broker) -> None:
    results = ResultStore(broker.backend)

    started = threading.Event()

    @task(broker, result_store=results)
    def slow() -> str:
        started.set()
        time.sleep(1.0)
        return "done"

    message = slow.generate()
    pool = ExecutorPool([slow], lease_ms=200, backoff=None)
    stolen: list[Delivery] = []

    def try_to_steal() -> None:
        started.wait(10)
        while not results.exists(message):
            stolen.extend(broker.backend.claim([slow.queue], 1, 200))
            time.sleep(0.05)

    thief = threading.Thread(target=try_to_steal)
    thief.start()
    _stop_when(pool, lambda: results.exists(message))
    pool.run()
    thief.join()
    assert stolen == [], "a 200 ms lease outlived by a 1 s task must be extended"


def test_sigterm_stops_claiming_and_releases_what_outlives_the_grace(broker: Broker) -> None:
    started = threading.Event()

    @task(broker)
    def long() -> None:
        started.set()
        time.sleep(3)

    long.generate()
    pool = ExecutorPool([long], grace_period=200, backoff=None)

    def terminate() -> None:
        started.wait(10)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=terminate, daemon=True).start()
    previous = signal.getsignal(signal.SIGTERM)
    began = time.monotonic()
    pool.run()
    assert time.monotonic() - began < 2.5
    assert signal.getsignal(signal.SIGTERM) is previous, "the pool puts the old handler back"
    counts = broker.counts(long.queue)
    assert (counts.ready, counts.in_flight) == (1, 0)


def test_pool_arguments_are_checked(broker: Broker) -> None:
    @task(broker, name="same")
    def one() -> None: ...

    @task(broker, name="same")
    def other() -> None: ...

    other_broker = Broker(DictBackend(store="other", namespace="elsewhere"))

    @task(other_broker)
    def elsewhere() -> None: ...

    with pytest.raises(ValidationError, match="at least one task"):
        ExecutorPool([])
    with pytest.raises(ValidationError, match="two different tasks are named 'same'"):
        ExecutorPool([one, other])
    with pytest.raises(ValidationError, match="different brokers"):
        ExecutorPool([one, elsewhere])
    with pytest.raises(ValidationError, match="lease_ms must be at least 100"):
        ExecutorPool([one], lease_ms=10)
    assert ExecutorPool([one], queues=["b", "a"]).queues == ["b", "a"]


def test_a_batching_broker_acks_on_flush_in_one_call(broker: Broker) -> None:
    messages = [broker.submit(Message("t", queue="q")) for _ in range(3)]
    batching = broker.batching()
    for m in messages:
        m.delivery = Delivery(m.queue, m.uuid, b"", "token", 1)
        batching.ack(m)
    assert batching.acks_pending() == 3 and all(broker.exists(m) for m in messages), "waiting for company"
    assert batching.ack_pending(messages[0].uuid) and broker.acks_pending() == 0
    assert sorted(batching.flush_acks()) == sorted(m.uuid for m in messages)
    assert not any(broker.exists(m) for m in messages)
    assert batching.acks_pending() == 0



def test_a_finished_message_s_waiting_settlement_is_kept_whole_for_the_parent() -> None:
    serializer = JsonSerializer()
    book = LeaseBook(context(), 2)
    holdings = SharedHoldings(book, range(2))
    delivery, plain = _delivery(b"payload"), _delivery()
    settlement = Settlement(
        delivery,
        status=StatusWrite(delivery.uuid, {"status": "SUCCEEDED"}, None, serializer.dumps({"status": "SUCCEEDED"})),
        result=ResultWrite(delivery.uuid, "family", {"result": [1, "two"]}, 60_000,
                           serializer.dumps({"result": [1, "two"]})),
        callback=Envelope("next", "callback-uuid", 3, 1234, b"\x00callback"),
        join=ChordJoin("chords", "chord-callback", 2, 5, b"\x01outcome", drop=True),
    )
    for d in (delivery, plain):
        holdings.add(d)
    assert holdings.finish(delivery.uuid, 0.1, awaiting_ack=True, settlement=settlement)
    assert holdings.finish(plain.uuid, 0.1, awaiting_ack=True)
    kept, acked = book.take(0), book.take(1)
    assert kept is not None and kept.finished and kept.settlement is not None
    assert settlement_record.decode(kept.settlement, kept.delivery, serializer) == replace(
        settlement, delivery=replace(delivery, payload=b""))
    assert acked is not None and acked.finished and acked.settlement is None and acked.delivery == plain
    holdings.add(delivery)
    huge = replace(settlement, result=replace(settlement.result, data=b"x" * LEASE_BYTES))
    assert not holdings.finish(delivery.uuid, 0.1, awaiting_ack=True, settlement=huge), "settle it now"


def test_a_batching_broker_settles_successes_on_flush_and_drops_a_moot_running(broker: Broker) -> None:
    tracker, store = StatusTracker(broker.backend), ResultStore(broker.backend)
    messages = [broker.submit(Message("t", queue="q")) for _ in range(2)]
    batching = broker.batching()
    for m in messages:
        m.delivery = Delivery(m.queue, m.uuid, b"", "token", 1)
        batching.running(tracker, m, deferrable=True)
    batching.settle(outcome.succeeded(batching, messages[0], tracker, store, 42, None), messages[0])
    assert batching.pending_settlement(messages[0].uuid) is not None and batching.acks_pending() == 1
    assert not store.exists(messages[0]) and broker.exists(messages[0]), "waiting for company"
    time.sleep(RUNNING_AFTER_S)
    assert batching.flush_acks() == [messages[0].uuid]
    assert store.get(messages[0]) == 42 and tracker.get(messages[0]) == TaskStatus.SUCCEEDED
    assert not broker.exists(messages[0]) and batching.acks_pending() == 0
    assert tracker.get(messages[1]) == TaskStatus.RUNNING, "still running at the flush"


@pytest.mark.parametrize("stored", [True, False], ids=["settled", "acked"])
def test_a_batching_broker_frees_a_unique_key_only_when_its_flush_applies_the_settle(
        broker: Broker, stored: bool) -> None:
    tracker = StatusTracker(broker.backend) if stored else None
    holder = broker.submit(Message("t", queue="q", unique_key="k"))
    [holder.delivery] = broker.claim(["q"], 1, 10_000)
    batching = broker.batching()
    batching.settle(outcome.succeeded(batching, holder, tracker, None, 1, None), holder)
    assert batching.ack_pending(holder.uuid)
    with pytest.raises(DuplicateMessageError):  # its holder may still run again: the key stays
        broker.submit(Message("t", queue="q", unique_key="k"))
    assert batching.flush_acks() == [holder.uuid]
    assert not broker.exists(holder) and not broker.free_unique(holder), "freed by the flush"
    second = broker.submit(Message("t", queue="q", unique_key="k"))
    with pytest.raises(DuplicateMessageError):
        broker.submit(Message("t", queue="q", unique_key="k"))
    assert broker.exists(second)


class _SettleOutageBackend(DictBackend):
    """Refuses every settle, like a server that is down."""

    def settle(self, settlements: Any) -> list[bool]:
        raise ConnectionError("server down")


def test_a_flush_that_cannot_settle_keeps_no_history_of_it_and_frees_no_key() -> None:
    broker = Broker(_SettleOutageBackend(store=uuid_lib.uuid4().hex))
    tracker = StatusTracker(broker.backend)
    message = broker.submit(Message("t", queue="q", unique_key="k"))
    [message.delivery] = broker.claim(["q"], 1, 10_000)
    batching = broker.batching()
    batching.settle(outcome.succeeded(batching, message, tracker, None, 1, None), message)
    now = time.time()
    batching.record_finished(message, Outcome("succeeded", now, now, attempt=1))
    assert batching.flush_acks() == [message.uuid]
    assert broker.exists(message) and broker.history() == [], "it runs again, and is told again"
    with pytest.raises(DuplicateMessageError):
        broker.submit(Message("t", queue="q", unique_key="k"))


class _OutageBackend(DictBackend):
    """Refuses its first claim, like a server that is restarting."""

    failures = 1

    def claim(self, queues: Any, limit: int, lease_ms: int, wait_ms: int = 0) -> list[Delivery]:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("server restarting")
        return super().claim(queues, limit, lease_ms, wait_ms)


def test_a_backend_outage_is_waited_out_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    broker = Broker(_OutageBackend(store=uuid_lib.uuid4().hex))
    results = ResultStore(broker.backend)

    @task(broker, result_store=results)
    def one() -> int:
        return 1

    message = one.generate()
    pool = ExecutorPool([one], backoff=None)
    _stop_when(pool, lambda: results.exists(message))
    pool.run()
    assert results.get(message) == 1
    assert "cannot claim from" in caplog.text and "server restarting; trying again in 1 s" in caplog.text
