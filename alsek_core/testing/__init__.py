"""Helpers for testing code that uses alsek, and for testing backends."""

from __future__ import annotations

from alsek_core.testing.runner import run_until_empty

__all__ = ["run_until_empty"]
