"""Registers the built-in serializers through the ``alsek`` entry point."""

from __future__ import annotations

from alsek_core.plugins import Registry, SerializerSpec, hookimpl
from alsek_serializers import JsonSerializer, MsgpackSerializer, PickleSerializer


@hookimpl
def alsek_register_serializers(register: Registry) -> None:
    register.serializer(SerializerSpec("json", JsonSerializer, "JSON, the default"))
    register.serializer(SerializerSpec(
        "msgpack", MsgpackSerializer, "msgpack (extra: msgpack)", requires=("msgpack",), extra="msgpack"
    ))
    register.serializer(
        SerializerSpec("pickle", PickleSerializer, "pickle: unsafe for untrusted data")
    )
