"""Message details that the tour does not show: the stored fields, the uuids,
and validation that still names the bad value."""

from __future__ import annotations

import uuid

import pytest

from alsek_core.backoff import ConstantBackoff, settings2backoff
from alsek_core.errors import ValidationError
from alsek_core.message import FIELDS, Message, new_uuid


def test_data_holds_every_field_and_rebuilds_the_message() -> None:
    message = Message("t", args=(1,), kwargs={"k": 2}, metadata={"m": 3}, delay=5,
                      trace_context={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
    assert tuple(message.data) == FIELDS
    assert Message(**message.data).data == message.data


def test_a_payload_without_a_trace_context_is_what_older_versions_wrote() -> None:
    """Untraced, a message stores no trace field (older readers know none), and
    a payload without one (an older writer's) reads as untraced."""
    message = Message("t")
    assert "trace_context" not in message.data and Message(**message.data).trace_context is None
    with pytest.raises(ValidationError, match="trace_context"):
        Message("t", trace_context={"traceparent": 1})  # type: ignore[dict-item]


def test_new_uuid_is_a_random_version_4_uuid() -> None:
    made = {new_uuid() for _ in range(10_000)}
    assert len(made) == 10_000
    for text in list(made)[:1_000]:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
        assert str(parsed) == text


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("priority", "high", "priority must be an int, got str 'high'"),
        ("timeout", 0, "timeout must be a positive int (ms), got 0"),
        ("delay", -1, "delay must be an int >= 0 (ms), got -1"),
        ("result_ttl", 1.5, "result_ttl must be a positive int (ms) or None, got 1.5"),
        ("mechanism", "fiber", "mechanism must be one of ('process', 'thread'), got 'fiber'"),
        ("backoff_settings", {"algorithm": "Nope", "parameters": {}}, "invalid backoff settings"),
    ],
)
def test_bad_field_is_named_with_its_value(field: str, value: object, says: str) -> None:
    with pytest.raises(ValidationError, match=says.replace("(", r"\(").replace(")", r"\)")):
        Message("t", **{field: value})  # type: ignore[arg-type]


def test_backoff_settings_are_built_once_per_distinct_settings() -> None:
    settings = ConstantBackoff(constant=7, floor=None).settings
    assert settings2backoff(settings) is settings2backoff(dict(settings))
    assert settings2backoff(settings).get(1) == 7
    assert settings2backoff(ConstantBackoff(constant=8, floor=None).settings).get(1) == 8


def test_a_chord_field_must_be_what_chord_sets() -> None:
    member = {"queue": "q", "callback": "u", "index": 0, "size": 2, "on_failure": "fail"}
    assert Message("t", chord=member).chord == member
    assert Message("t", chord={"size": 2, "on_failure": "pass"}).chord is not None
    for bad in ["x", {}, {**member, "index": 2}, {**member, "size": True}, {**member, "on_failure": "maybe"},
                {"size": 0, "on_failure": "fail"}, {**member, "extra": 1}]:
        with pytest.raises(ValidationError, match="chord must be"):
            Message("t", chord=bad)
