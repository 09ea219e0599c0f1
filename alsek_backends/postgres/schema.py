"""The database schema, owned by versioned migrations.

``migrations/NNNN_description.sql`` are applied in order, each in the same
transaction as its row in ``{schema}.schema_version``. Every change takes a
transaction-level advisory lock first, so processes racing to migrate (test
runners, several deploys at once) apply each migration exactly once.
A backend checks the version once, on first use, and refuses to run against
a schema it does not know: it says which ``alsek db`` command fixes that.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import psycopg

from alsek_backends.postgres.queries import validate_schema
from alsek_backends.postgres.urls import DEFAULT_SCHEMA, split_schema
from alsek_core.errors import ConfigError

_FILE = re.compile(r"^(\d{4})_(\w+)\.sql$")

Conn = psycopg.Connection[tuple[Any, ...]]


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    def render(self, schema: str) -> str:
        return self.sql.replace("{schema}", schema)


@dataclass(frozen=True)
class Status:
    """``current`` is None when the schema was never initialized."""

    schema: str
    current: int | None
    pending: list[Migration] = field(default_factory=list)

    @property
    def latest(self) -> int:
        return latest_version()

    @property
    def up_to_date(self) -> bool:
        return self.current is not None and not self.pending


@functools.cache
def migrations() -> tuple[Migration, ...]:
    found = []
    for entry in resources.files(f"{__package__}.migrations").iterdir():
        match = _FILE.match(entry.name)
        if match:
            text = entry.read_text(encoding="utf-8")
            found.append(Migration(int(match[1]), match[2], text))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migration versions must run 1, 2, 3, ... without gaps; found {versions}")
    return tuple(found)


def latest_version() -> int:
    return migrations()[-1].version


def connect(url: str) -> tuple[Conn, str]:
    """An autocommit connection for a backend URL, and the schema it names."""
    conninfo, schema = split_schema(url)
    schema = validate_schema(schema or DEFAULT_SCHEMA)
    return psycopg.Connection.connect(conninfo, autocommit=True), schema


def current_version(conn: Conn, schema: str) -> int | None:
    validate_schema(schema)
    row = conn.execute("SELECT to_regclass(%s)", [f"{schema}.schema_version"]).fetchone()
    if row is None or row[0] is None:
        return None
    version = conn.execute(f"SELECT coalesce(max(version), 0) FROM {schema}.schema_version").fetchone()
    return int(version[0]) if version else 0


def status(conn: Conn, schema: str) -> Status:
    current = current_version(conn, schema)
    return Status(schema, current, [m for m in migrations() if m.version > (current or 0)])


def init(conn: Conn, schema: str) -> list[Migration]:
    """Create the schema if need be and apply every pending migration (idempotent)."""
    return _migrate(conn, schema, create=True)


def upgrade(conn: Conn, schema: str) -> list[Migration]:
    """Apply pending migrations to an initialized schema."""
    return _migrate(conn, schema, create=False)


def _migrate(conn: Conn, schema: str, create: bool) -> list[Migration]:
    applied: list[Migration] = []
    for migration in migrations():
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"alsek migrate {schema}"])
            current = current_version(conn, schema)
            if current is None:
                if not create:
                    raise ConfigError(f"schema {schema!r} is not initialized; run `alsek db init` first")
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
                conn.execute(
                    f"CREATE TABLE {schema}.schema_version ("
                    " version integer PRIMARY KEY,"
                    " name text NOT NULL,"
                    " applied_at timestamptz NOT NULL DEFAULT now())"
                )
                current = 0
            if migration.version <= current:
                continue
            conn.execute(migration.render(schema).encode())
            conn.execute(
                f"INSERT INTO {schema}.schema_version (version, name) VALUES (%s, %s)",
                [migration.version, migration.name],
            )
            applied.append(migration)
    return applied


def check(conn: Conn, schema: str, url: str) -> None:
    """Raise ConfigError, naming the command to run, unless the schema is current."""
    current = current_version(conn, schema)
    latest = latest_version()
    if current is None:
        raise ConfigError(
            f"PostgreSQL schema {schema!r} has no alsek tables; run: alsek db init --backend '{url}'"
        )
    if current < latest:
        raise ConfigError(
            f"PostgreSQL schema {schema!r} is at version {current}, this alsek needs {latest}; "
            f"run: alsek db upgrade --backend '{url}'"
        )
    if current > latest:
        raise ConfigError(
            f"PostgreSQL schema {schema!r} is at version {current}, newer than this alsek knows "
            f"({latest}); upgrade alsek"
        )
