"""Contract: values survive a round trip through the backend's serializer."""

from __future__ import annotations

import math
from typing import Any

import pytest

from alsek_core.errors import SerializationError
from alsek_core.ports import Backend

VALUES: list[Any] = [
    0,
    -17,
    3.5,
    True,
    None,
    "",
    "plain",
    "unicode: żółć 日本語 🚀 \u0000 end",
    [1, "two", [3.0, None]],
    {"nested": {"list": [1, 2], "str": "ü"}, "empty": {}},
]


class SerializerContract:
    @pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
    def test_round_trip(self, backend: Backend, value: Any) -> None:
        backend.set("value", value)
        assert backend.get("value") == value

    def test_large_value(self, backend: Backend) -> None:
        big = {"blob": "x" * 2_000_000, "items": list(range(50_000))}
        backend.set("big", big)
        assert backend.get("big") == big

    def test_unencodable_value_is_a_clear_error(self, backend: Backend) -> None:
        with pytest.raises(SerializationError, match="generator"):
            backend.set("bad", (i for i in range(0)))
        assert not backend.exists("bad")

    @pytest.mark.parametrize(
        "value",
        [float("nan"), float("inf"), {"limit": float("-inf")}, {(1, 2): "pair"}, {"k": {("a",): 1}}],
        ids=["nan", "inf", "-inf-inside", "tuple-key", "tuple-key-inside"],
    )
    def test_a_value_is_stored_only_if_it_comes_back_the_same(self, backend: Backend, value: Any) -> None:
        """No serializer may store what it cannot read back as it was: either
        a SerializationError at once, or an exact round trip."""
        try:
            backend.set("odd", value)
        except SerializationError:
            assert not backend.exists("odd")
            return
        assert _same(backend.get("odd"), value)


def _same(a: Any, b: Any) -> bool:
    """Equality in which NaN equals NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)
