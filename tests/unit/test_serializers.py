from __future__ import annotations

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
