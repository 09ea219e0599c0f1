from __future__ import annotations

import math
from typing import Any

import pytest

from alsek_core.errors import SerializationError
from alsek_serializers import JsonSerializer, MsgpackSerializer, PickleSerializer

SERIALIZERS = [JsonSerializer(), MsgpackSerializer(), PickleSerializer()]
VALUE: Any = {"text": "żółć 🚀", "n": [1, 2.5, None, True], "nested": {"deep": ["x" * 10_000]}}


@pytest.mark.parametrize("serializer", SERIALIZERS, ids=lambda s: s.name)
def test_round_trip(serializer: Any) -> None:
    assert serializer.loads(serializer.dumps(VALUE)) == VALUE


@pytest.mark.parametrize(
    "serializer", [JsonSerializer(), MsgpackSerializer()], ids=lambda s: s.name
)
def test_unencodable_names_the_type(serializer: Any) -> None:
    class Widget:
        pass

    with pytest.raises(SerializationError, match="Widget"):
        serializer.dumps({"w": Widget()})


@pytest.mark.parametrize("serializer", SERIALIZERS, ids=lambda s: s.name)
def test_undecodable_is_a_serialization_error(serializer: Any) -> None:
    with pytest.raises(SerializationError):
        serializer.loads(b"\xc1\xff not valid in any of them")


@pytest.mark.parametrize(
    ("value", "where", "why"),
    [
        ({"args": [1, float("nan")]}, r"\['args'\]\[1\]", "nan"),
        ({"kwargs": {"limit": float("inf")}}, r"\['kwargs'\]\['limit'\]", "inf"),
        ([{(1, 2): "pair"}], r"\[0\]", r"key \(1, 2\) \(tuple\)"),
        (float("-inf"), "", "-inf"),
    ],
)
def test_json_refuses_what_it_cannot_read_back_and_says_where(value: Any, where: str, why: str) -> None:
    # One rule: JSON stores only what comes back the same (no NaN/Infinity,
    # which are not JSON, no keys JSON cannot have), and names the culprit.
    with pytest.raises(SerializationError, match=f"{why}.*{where}") as refused:
        JsonSerializer().dumps(value)
    assert type(refused.value.__cause__) in (TypeError, ValueError)


def test_json_names_the_path_to_a_value_of_an_unknown_type() -> None:
    with pytest.raises(SerializationError, match=r"Widget.*\['kwargs'\]\['w'\]"):
        JsonSerializer().dumps({"kwargs": {"w": type("Widget", (), {})()}})


def test_json_refuses_a_value_that_refers_to_itself() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(SerializationError, match="refers to itself"):
        JsonSerializer().dumps({"args": loop})


def test_msgpack_round_trips_tuple_keys_and_non_finite_floats() -> None:
    serializer = MsgpackSerializer()
    value = {(1, (2, "x")): "pair", "inf": float("inf"), "nan": float("nan")}
    back = serializer.loads(serializer.dumps(value))
    assert back[(1, (2, "x"))] == "pair" and back["inf"] == float("inf") and math.isnan(back["nan"])


def test_msgpack_names_the_path_to_what_it_cannot_encode() -> None:
    with pytest.raises(SerializationError, match=r"int.*\['kwargs'\]\['big'\]"):
        MsgpackSerializer().dumps({"kwargs": {"big": 2**80}})


@pytest.mark.parametrize("serializer", SERIALIZERS, ids=lambda s: s.name)
def test_bytes_nested_beyond_the_stack_are_a_serialization_error(serializer: Any) -> None:
    deep = {"json": b"[" * 100_000 + b"]" * 100_000, "msgpack": b"\x91" * 100_000 + b"\xc0"}
    with pytest.raises(SerializationError):
        serializer.loads(deep.get(serializer.name, b"(" * 100_000))
