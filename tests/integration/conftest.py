"""Fixtures shared by the integration modules: for PostgreSQL, an admin
connection and a throwaway schema per test (a module defining its own
``admin`` or ``schema`` fixture keeps using that one); for subprocesses, the
URL of the registered backend under test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from alsek_core.plugins import plugin_host
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


@pytest.fixture
def shared_url(
    registered_backend: str, scratch_dir: str, contract_namespace: str, backend: Any, process_local: bool
) -> str:
    """The ``backend`` fixture's URL, namespace included, for other processes
    (pools, schedulers) to reach the same data; ``backend`` wipes it after."""
    if process_local:
        pytest.skip(f"the {registered_backend} backend lives in one process")
    spec = plugin_host().registry.backends[registered_backend][0]
    assert spec.test_url is not None
    base = spec.test_url(scratch_dir)
    return f"{base}{'&' if '?' in base else '?'}namespace={contract_namespace}"
