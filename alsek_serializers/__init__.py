"""Serializers shipped with alsek. JSON is the default; msgpack needs the
``msgpack`` extra; pickle is opt-in and unsafe for data you do not trust."""

from __future__ import annotations

from alsek_serializers.json import JsonSerializer
from alsek_serializers.msgpack import MsgpackSerializer
from alsek_serializers.pickle import PickleSerializer

__all__ = ["JsonSerializer", "MsgpackSerializer", "PickleSerializer"]
