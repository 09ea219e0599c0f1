"""PostgreSQL fixtures shared by the PostgreSQL test modules: an admin
connection and a throwaway schema per test. A module defining its own
``admin`` or ``schema`` fixture keeps using that one."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from alsek_core.testing.contract.fixtures import unavailable


def postgres_url() -> str:
    from alsek_backends.postgres.urls import DEFAULT_URL

    return os.environ.get("ALSEK_TEST_POSTGRES_URL", DEFAULT_URL)


@pytest.fixture(scope="module")
def admin() -> Iterator[Any]:
    psycopg = pytest.importorskip("psycopg")
    try:
        conn = psycopg.Connection.connect(postgres_url(), autocommit=True)
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL unreachable at {postgres_url()}: {exc}")
    yield conn
    conn.close()


@pytest.fixture
def schema(admin: Any) -> Iterator[str]:
    name = f"alsek_t_{uuid.uuid4().hex[:10]}"
    yield name
    admin.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
