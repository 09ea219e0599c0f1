"""The embedded default stores bytes only: a row edited on disk (or written by
another program) to hold a Python object that runs code when decoded is
refused with a clear error, through the backend and through ``alsek status``,
and nothing runs."""

from __future__ import annotations

import os
import pickle
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from alsek_backends.diskcache import DiskCacheBackend
from alsek_core.errors import SerializationError

UUID = "0123456789abcdef0123456789abcdef"


class Trap:
    """Decoding it creates ``marker``: proof that decoding ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (open, (str(self.marker), "w"))


def write_row(directory: Path, key: Any, raw: int, mode: int, value: Any, filename: str | None = None) -> None:
    """Straight into DiskCache's table, as an attacker with the file would."""
    with sqlite3.connect(directory / "cache.db") as conn:
        now = time.time()
        conn.execute(
            "INSERT OR REPLACE INTO Cache (key, raw, store_time, expire_time, access_time,"
            " access_count, tag, size, mode, filename, value) VALUES (?, ?, ?, NULL, ?, 0, NULL, 0, ?, ?, ?)",
            (key, raw, now, now, mode, filename, value),
        )
    conn.close()


@pytest.fixture
def backend(tmp_path: Path) -> Any:
    instance = DiskCacheBackend(str(tmp_path / "store"))
    instance.set("warm-up", 1)  # creates cache.db
    yield instance
    instance.close()


def test_a_pickled_value_is_refused_and_never_run(backend: DiskCacheBackend, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    write_row(tmp_path / "store", f"alsek:status:{UUID}", 1, 4, pickle.dumps(Trap(marker)))
    with pytest.raises(SerializationError, match="did not write"):
        backend.get(f"status:{UUID}")
    assert not marker.exists()


def test_alsek_status_on_a_pickled_row_says_so_and_runs_nothing(backend: DiskCacheBackend, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    write_row(tmp_path / "store", f"alsek:status:{UUID}", 1, 4, pickle.dumps(Trap(marker)))
    backend.close()
    result = subprocess.run(
        [sys.executable, "-m", "alsek_cli", "status", UUID, "--backend", f"sqlite:///{tmp_path}/store"],
        capture_output=True, text=True, timeout=120, env={**os.environ},
    )
    assert result.returncode != 0
    assert "did not write" in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists()


def test_a_pickled_key_is_refused_by_a_scan(backend: DiskCacheBackend, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    write_row(tmp_path / "store", pickle.dumps(Trap(marker)), 0, 1, b"x")
    with pytest.raises(SerializationError, match="did not write"):
        list(backend.scan())
    assert not marker.exists()


def test_a_value_file_outside_the_cache_is_refused(backend: DiskCacheBackend, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b'"not yours"')
    write_row(tmp_path / "store", "alsek:stolen", 1, 2, None, filename=str(secret))
    with pytest.raises(SerializationError, match="did not write"):
        backend.get("stolen")


def test_large_values_stored_in_files_still_round_trip(backend: DiskCacheBackend) -> None:
    big = "x" * 200_000  # past DiskCache's inline size: kept in a file of its own
    backend.set("big", big)
    assert backend.get("big") == big
    assert backend.delete_if("big", big)


def test_only_bytes_are_ever_written(backend: DiskCacheBackend) -> None:
    with pytest.raises(SerializationError):
        backend.connection.cache.set("alsek:raw", {"an": "object"})
