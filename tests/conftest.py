from __future__ import annotations

import os
import sys
from typing import Any

import pytest

from alsek_backends.postgres.plugin import TEST_SCHEMA, TEST_URL_ENV
from alsek_backends.postgres.urls import DEFAULT_URL
from alsek_core.plugins import Origin, plugin_host
from tests import five_method

# The five-method backend joins the registry as any plugin would, so every
# registry-driven suite (contract, tour) covers it too.
plugin_host().register(five_method, Origin("five-method", "alsek tests"))
assert "tests.five_method" in sys.modules

pytest_plugins = ["alsek_core.testing.contract.registry"]


# --- leave PostgreSQL as the run found it -------------------------------------------
# The contract suite's schema is made on first use (alsek_backends.postgres.plugin);
# a run that made it drops it when done, so two runs in a row start alike.

_CONTRACT_SCHEMA_KEY = pytest.StashKey[bool]()


def _contract_schema_exists() -> bool | None:
    """Whether the contract schema is there; None when PostgreSQL cannot say."""
    try:
        with _admin() as conn:
            row = conn.execute("SELECT to_regnamespace(%s) IS NOT NULL", [TEST_SCHEMA]).fetchone()
    except Exception:  # no driver, no server: nothing this run can have left there
        return None
    return bool(row and row[0])


def _admin() -> Any:
    import psycopg  # the postgres extra: without it there is no schema to leave behind

    return psycopg.Connection.connect(os.environ.get(TEST_URL_ENV) or DEFAULT_URL, autocommit=True,
                                      connect_timeout=5)


def pytest_sessionstart(session: pytest.Session) -> None:
    session.stash[_CONTRACT_SCHEMA_KEY] = _contract_schema_exists() is not False


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not session.stash.get(_CONTRACT_SCHEMA_KEY, True) and _contract_schema_exists():
        with _admin() as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {TEST_SCHEMA} CASCADE")
