"""Registers the PostgreSQL backend for ``postgresql://`` and ``postgres://``
URLs, and the ``alsek db`` commands. Loads no driver: psycopg is imported when
a backend is built or a command runs, so ``import alsek`` stays light.

URL: ``postgresql://user:password@host:5432/db?schema=alsek`` (``schema`` is
ours; everything else is libpq's).
"""

from __future__ import annotations

import os
from typing import Any

from alsek_backends.postgres.urls import DEFAULT_URL, with_schema
from alsek_core.plugins import BackendSpec, Registry, hookimpl

SCHEMES = ("postgresql", "postgres")
TEST_URL_ENV = "ALSEK_TEST_POSTGRES_URL"
#: The contract suite's schema; each test isolates itself by namespace.
TEST_SCHEMA = "alsek_contract"
_migrated: set[str] = set()


def make_backend(url: str, **options: Any) -> Any:
    from alsek_backends.postgres.backend import PostgresBackend

    return PostgresBackend(url, **options)


def url_params() -> set[str]:
    """libpq's own keywords (as the installed libpq knows them) and our ``schema``."""
    from psycopg import pq

    return {d.keyword.decode() for d in pq.Conninfo.get_defaults()} | {"schema"}


def test_url(scratch_dir: str) -> str:
    """The test server's URL with its schema migrated (once per process; the
    migration's advisory lock makes racing test processes safe). When the
    server is down the URL is still returned: the backend's first use then
    reports it, which skips locally and fails under CI."""
    url = with_schema(os.environ.get(TEST_URL_ENV) or DEFAULT_URL, TEST_SCHEMA)
    if url not in _migrated:
        import psycopg

        from alsek_backends.postgres import schema

        try:
            conn, name = schema.connect(url)
        except psycopg.OperationalError:
            return url
        with conn:
            schema.init(conn, name)
        _migrated.add(url)
    return url


@hookimpl
def alsek_register_backends(register: Registry) -> None:
    register.backend(
        BackendSpec(
            "postgres",
            SCHEMES,
            make_backend,
            "PostgreSQL (psycopg 3): SKIP LOCKED claims, LISTEN/NOTIFY, many hosts",
            test_url=test_url,
            requires=("psycopg", "psycopg_pool"),
            extra="postgres",
            url_params=url_params,
        )
    )


@hookimpl
def alsek_add_commands(cli: Any) -> None:
    from alsek_backends.postgres.cli import db

    cli.add_command(db)
