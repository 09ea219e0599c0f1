"""Binds every registered backend (built-ins, the five-method test backend, and
any installed third-party plugin with a test_url) to the one contract suite."""

from __future__ import annotations

from alsek_core.testing.contract import BackendContract


class TestRegisteredBackend(BackendContract):
    pass
