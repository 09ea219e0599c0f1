"""Contract: the five key-value methods and count."""

from __future__ import annotations

import time

import pytest

from alsek_core.errors import KeyExistsError
from alsek_core.ports import Backend


class KeyValueContract:
    def test_set_get_exists(self, backend: Backend) -> None:
        assert not backend.exists("a")
        assert backend.get("a") is None
        assert backend.get("a", default="fallback") == "fallback"
        backend.set("a", {"x": 1})
        assert backend.exists("a")
        assert backend.get("a") == {"x": 1}

    def test_overwrite(self, backend: Backend) -> None:
        backend.set("a", 1)
        backend.set("a", 2)
        assert backend.get("a") == 2

    def test_nx_refuses_existing(self, backend: Backend) -> None:
        backend.set("a", 1, nx=True)
        with pytest.raises(KeyExistsError):
            backend.set("a", 2, nx=True)
        assert backend.get("a") == 1

    def test_ttl_expires(self, backend: Backend) -> None:
        backend.set("short", 1, ttl=200)
        backend.set("long", 1, ttl=60_000)
        assert backend.exists("short")
        time.sleep(0.45)
        assert not backend.exists("short")
        assert backend.get("short") is None
        assert backend.exists("long")
        assert "short" not in list(backend.scan())

    def test_nx_after_expiry(self, backend: Backend) -> None:
        backend.set("lock", "a", nx=True, ttl=150)
        time.sleep(0.35)
        backend.set("lock", "b", nx=True)
        assert backend.get("lock") == "b"

    def test_delete(self, backend: Backend) -> None:
        backend.set("a", 1)
        backend.delete("a")
        assert not backend.exists("a")
        with pytest.raises(KeyError):
            backend.delete("a")
        backend.delete("a", missing_ok=True)

    def test_delete_if_only_while_it_holds_the_value(self, backend: Backend) -> None:
        backend.set("lock", "mine")
        assert backend.delete_if("lock", "theirs") is False
        assert backend.get("lock") == "mine"
        assert backend.delete_if("lock", "mine") is True
        assert not backend.exists("lock")
        assert backend.delete_if("lock", "mine") is False

    def test_delete_if_leaves_a_lock_retaken_after_expiry(self, backend: Backend) -> None:
        backend.set("lock", "first", nx=True, ttl=150)
        time.sleep(0.35)
        assert backend.delete_if("lock", "first") is False  # expired: nothing to delete
        backend.set("lock", "second", nx=True, ttl=60_000)
        assert backend.delete_if("lock", "first") is False
        assert backend.get("lock") == "second"

    def test_scan_patterns(self, backend: Backend) -> None:
        for name in ("queues:q1:x", "queues:q1:y", "queues:q10:z", "results:1", "results:2"):
            backend.set(name, 0)
        assert sorted(backend.scan("queues:q1:")) == ["queues:q1:x", "queues:q1:y"]
        assert sorted(backend.scan("queues:q1")) == sorted(
            ["queues:q1:x", "queues:q1:y", "queues:q10:z"]
        )
        assert sorted(backend.scan("results:")) == ["results:1", "results:2"]
        assert sorted(backend.scan("queues:*:z")) == ["queues:q10:z"]
        assert len(list(backend.scan())) == 5
        assert list(backend.scan("nothing:")) == []

    def test_count(self, backend: Backend) -> None:
        assert backend.count("queues:math_ops") == 0
        backend.set("queues:math_ops:1", 1)
        backend.set("queues:math_ops:2", 1)
        backend.set("queues:other:1", 1)
        assert backend.count("queues:math_ops") == 2
        assert backend.count() == 3

    def test_namespaces_do_not_mix(self, backend: Backend, backend_factory: object) -> None:
        backend.set("shared-name", "mine")
        assert backend.namespace
        assert all(not name.startswith(backend.namespace) for name in backend.scan())
