from __future__ import annotations

from alsek_core.serialization import Serializer
from alsek_serializers import JsonSerializer, MsgpackSerializer, PickleSerializer

__all__ = ["JsonSerializer", "MsgpackSerializer", "PickleSerializer", "Serializer"]
