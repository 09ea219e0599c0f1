"""Chords on every registered backend, run in this process
(``run_until_empty``): the callback runs once, after every member, with the
results in member order; failures fail the chord or are passed on; retried
members count when they finally settle; chords nest."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from alsek import Broker, Chord, Message, chord, task
from alsek_core.errors import ChordFailedError, ValidationError
from alsek_core.ports import Backend
from alsek_core.result import ResultStore, store_for
from alsek_core.task import Task
from alsek_core.testing.runner import run_until_empty


@pytest.fixture
def broker(backend: Backend) -> Broker:
    return Broker(backend)


@pytest.fixture
def results(backend: Backend) -> ResultStore:
    return store_for(backend)


@pytest.fixture
def seen() -> list[Any]:
    """What each callback run was given, in the order they ran."""
    return []


@pytest.fixture
def start(backend: Backend) -> Iterator[Callable[..., Chord]]:
    """``chord``, and afterwards the joins of chords whose callback never ran
    removed (the contract fixture's wipe knows queues and keys only)."""
    made: list[Chord] = []

    def started(*args: Any, **kwargs: Any) -> Chord:
        made.append(chord(*args, **kwargs))
        return made[-1]

    yield started
    for each in made:
        backend.forget_join(each.callback.queue, each.callback.uuid)


@pytest.fixture
def tasks(broker: Broker, results: ResultStore, seen: list[Any]) -> dict[str, Task]:
    @task(broker, queue="members", result_store=results)
    def double(i: int) -> int:
        return 2 * i

    @task(broker, queue="members", max_retries=0)
    def fragile(i: int) -> int:
        if i == 3:
            raise ValueError("three is bad")
        return i

    @task(broker, queue="members", max_retries=2, backoff=None)
    def flaky(i: int, message: Message) -> int:
        if message.retries == 0 and i % 2:
            raise RuntimeError("first try fails")
        return i

    @task(broker, queue="callbacks", result_store=results)
    def collect(message: Message) -> Any:
        seen.append(message.previous_result)
        return message.previous_result

    @task(broker, queue="callbacks", result_store=results)
    def total(message: Message) -> int:
        seen.append(message.previous_result)
        return sum(message.previous_result)

    @task(broker, queue="callbacks", result_store=results)
    def fan_out_again(message: Message) -> str:
        """A callback that starts another chord with what it was given."""
        again = chord([double.generate(args=(r,), submit=False) for r in message.previous_result],
                      total.generate(submit=False))
        return again.callback.uuid

    return {t.name: t for t in (double, fragile, flaky, collect, total, fan_out_again)}


def test_the_callback_runs_once_with_results_in_member_order(tasks: dict[str, Task], seen: list[Any],
                                                             broker: Broker, start: Callable[..., Chord]) -> None:
    double, collect = tasks["double"], tasks["collect"]
    members = [double.generate(args=(i,), submit=False) for i in range(25)]
    made = start(members, collect.generate(submit=False))
    assert isinstance(made, Chord) and len(made) == 25 and not made.done
    assert broker.counts("members").ready == 25 and broker.counts("callbacks").delayed == 1
    run_until_empty(tasks.values())
    assert seen == [[2 * i for i in range(25)]]
    assert made.done and not made.failed
    assert made.get(timeout=10_000) == [2 * i for i in range(25)]
    assert broker.backend.joined("callbacks", made.callback.uuid) == {}, "the join goes with its callback"


def test_a_callback_keeping_nothing_drops_the_join_in_a_batching_worker(
    tasks: dict[str, Task], broker: Broker, seen: list[Any], start: Callable[..., Chord]
) -> None:
    """A pool's broker batches acks; the callback's removal is not batched, so
    its join can go at once (and never before the callback left its queue)."""
    @task(broker, queue="callbacks")
    def bare(message: Message) -> None:
        seen.append(message.previous_result)

    made = start([tasks["double"].generate(args=(i,), submit=False) for i in range(3)], bare.generate(submit=False))
    run_until_empty([*tasks.values(), bare], broker=broker.batching())
    assert seen == [[0, 2, 4]] and made.done
    assert broker.backend.joined("callbacks", made.callback.uuid) == {}


def test_a_failed_member_fails_the_chord(tasks: dict[str, Task], seen: list[Any], start: Callable[..., Chord]) -> None:
    made = start([tasks["fragile"].generate(args=(i,), submit=False) for i in range(6)],
                 tasks["collect"].generate(submit=False))
    run_until_empty(tasks.values())
    assert seen == [] and made.done and made.failed
    with pytest.raises(ChordFailedError, match="a member failed"):
        made.get(timeout=10_000)


def test_failures_can_be_passed_on(tasks: dict[str, Task], seen: list[Any], start: Callable[..., Chord]) -> None:
    made = start([tasks["fragile"].generate(args=(i,), submit=False) for i in range(6)],
                 tasks["collect"].generate(submit=False), on_failure="pass")
    run_until_empty(tasks.values())
    [given] = seen
    assert given[:3] == [0, 1, 2] and given[4:] == [4, 5]
    assert given[3]["name"] == "ValueError" and given[3]["text"] == "three is bad"
    assert not made.failed


def test_a_retried_member_counts_when_it_finally_settles(
    tasks: dict[str, Task], seen: list[Any], start: Callable[..., Chord]
) -> None:
    start([tasks["flaky"].generate(args=(i,), submit=False) for i in range(10)],
          tasks["total"].generate(submit=False))
    run_until_empty(tasks.values())
    assert seen == [list(range(10))]


def test_a_callback_starts_another_chord_and_chains_on(tasks: dict[str, Task], seen: list[Any],
                                                       start: Callable[..., Chord]) -> None:
    double, collect, total = tasks["double"], tasks["collect"], tasks["total"]
    after = collect.generate(submit=False)
    first = start([double.generate(args=(i,), submit=False) for i in range(4)],
                  tasks["fan_out_again"].generate(submit=False))
    chained = start([double.generate(args=(i,), submit=False) for i in range(3)],
                    total.generate(submit=False, callback=after))
    run_until_empty(tasks.values())
    assert first.get(timeout=10_000) is not None and chained.get(timeout=10_000) == 6
    assert [0, 2, 4] in seen, "the chord's callback ran first"
    assert 6 in seen, "then its own callback, with its result"
    assert [0, 4, 8, 12] in seen, "the nested chord ran on the first one's results, doubled"


def test_what_a_chord_refuses(tasks: dict[str, Task], broker: Broker, start: Callable[..., Chord]) -> None:
    double, collect = tasks["double"], tasks["collect"]
    member = double.generate(args=(1,), submit=False)
    callback = collect.generate(submit=False)
    for members, then, error in [
        ([member], callback, "on_failure must be one of"),
        ([member], Message("collect", queue="callbacks"), "not made by a task's generate"),
        ([member], member, "both a member and the callback"),
        ([], callback, "at least one message"),
    ]:
        with pytest.raises(ValidationError, match=error):
            start(members, then, on_failure="maybe" if "on_failure" in error else "fail")
    grouped = double.generate(args=(2,), submit=False)
    start([grouped], callback)
    with pytest.raises(ValidationError, match="in a chord already"):
        start([grouped], collect.generate(submit=False))
    assert broker.counts("members").ready == 1 and broker.counts("callbacks").delayed == 1
