"""``alsek db init | upgrade | status``: the PostgreSQL schema's migrations.

The backend refuses to run against a schema that is missing or behind, and
its error names the command here that fixes it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import click

from alsek_core.redact import redact_url

if TYPE_CHECKING:
    from alsek_backends.postgres.schema import Migration

T = TypeVar("T")

backend_option = click.option(
    "--backend",
    default=None,
    metavar="URL",
    help="postgresql://... (default: ALSEK_BACKEND_URL, then [tool.alsek] backend).",
)


def _with_schema_connection(backend: str | None, action: Callable[..., T]) -> tuple[str, T]:
    """(printable URL, ``action(conn, schema)``), errors made click errors."""
    import psycopg

    from alsek_backends.postgres import schema as schema_lib
    from alsek_backends.postgres.plugin import SCHEMES
    from alsek_core.config import split_url
    from alsek_core.errors import ConfigError
    from alsek_core.settings import backend_url

    try:
        scheme, url, _ = split_url(backend_url(cli=backend))
        if scheme not in SCHEMES:
            raise ConfigError(f"{redact_url(url)} is not a PostgreSQL URL (postgresql://...)")
        conn, schema = schema_lib.connect(url)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    except psycopg.OperationalError as exc:
        raise click.ClickException(f"cannot connect to {redact_url(url)}: {exc}") from exc
    with conn:
        try:
            return redact_url(url), action(conn, schema)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group()
def db() -> None:
    """PostgreSQL schema migrations."""


@db.command()
@backend_option
def init(backend: str | None) -> None:
    """Create the schema and apply every migration (safe to repeat)."""
    from alsek_backends.postgres import schema as schema_lib

    url, applied = _with_schema_connection(backend, schema_lib.init)
    _report(url, applied, "already initialized")


@db.command()
@backend_option
def upgrade(backend: str | None) -> None:
    """Apply pending migrations to an initialized schema."""
    from alsek_backends.postgres import schema as schema_lib

    url, applied = _with_schema_connection(backend, schema_lib.upgrade)
    _report(url, applied, "already up to date")


@db.command()
@backend_option
def status(backend: str | None) -> None:
    """Show the schema version; exit status 1 when it is not up to date."""
    from alsek_backends.postgres import schema as schema_lib

    url, state = _with_schema_connection(backend, schema_lib.status)
    if state.current is None:
        click.echo(f"{url}: schema {state.schema!r} not initialized; run: alsek db init")
    else:
        click.echo(f"{url}: schema {state.schema!r} at version {state.current} of {state.latest}")
    for migration in state.pending:
        click.echo(f"  pending {migration.version:04d}_{migration.name}")
    if not state.up_to_date:
        click.get_current_context().exit(1)


def _report(url: str, applied: list[Migration], nothing: str) -> None:
    if not applied:
        click.echo(f"{url}: {nothing}")
    for migration in applied:
        click.echo(f"{url}: applied {migration.version:04d}_{migration.name}")
