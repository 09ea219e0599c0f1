"""The ``alsek`` entry point. Every failure ends as one line on stderr and a
non-zero exit (2 for a configuration mistake, 1 for anything else);
``--log-level debug`` adds the traceback."""

from __future__ import annotations

import sys
import traceback

import click

import alsek_cli.scheduler
from alsek import __version__
from alsek_cli import admin, demo, operate, pause, pools, revoke
from alsek_cli.options import debug_requested, one_line, scrubbed
from alsek_core.errors import AlsekError, ConfigError
from alsek_core.plugins import plugin_host


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=__version__, prog_name="alsek")
def cli() -> None:
    """Alsek: a distributed task queue for Python, on DiskCache/SQLite
    (default), Redis or PostgreSQL. Runs worker pools for your tasks, and
    looks after queues, statuses, results and dead letters."""


for command in (pools.thread_pool, pools.process_pool, demo.demo, *admin.COMMANDS, revoke.revoke,
                *operate.COMMANDS, *pause.COMMANDS):
    cli.add_command(command)
cli.add_command(alsek_cli.scheduler.scheduler)


def add_plugin_commands(group: click.Group) -> tuple[list[str], str | None]:
    """The plugins' commands on ``group``: (problems of single plugins, or why
    no plugin could load at all, e.g. a source tree without package metadata)."""
    try:
        return plugin_host().add_commands(group), None
    except AlsekError as exc:
        return [], one_line(exc)


PLUGIN_PROBLEMS, HOST_ERROR = add_plugin_commands(cli)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    debug = debug_requested(args)
    if HOST_ERROR is not None:
        click.echo(f"error: {HOST_ERROR}", err=True)
        sys.exit(2)
    for problem in PLUGIN_PROBLEMS:
        click.echo(f"warning: {problem}", err=True)
    try:
        code = cli.main(args=args, prog_name="alsek", standalone_mode=False)
    except getattr(click.exceptions, "NoArgsIsHelpError", ()) as exc:  # bare `alsek`: its help
        click.echo(exc.ctx.get_help())
        sys.exit(0)
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        if debug:
            traceback.print_exc()
        ctx = getattr(exc, "ctx", None)
        where = f"{ctx.command_path}: " if ctx is not None else ""
        click.echo(scrubbed(f"error: {where}{' '.join(exc.format_message().split())}", args), err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:
        if debug:
            traceback.print_exc()
        click.echo(scrubbed(f"error: {one_line(exc)}", args), err=True)
        sys.exit(2 if isinstance(exc, ConfigError) else 1)
    sys.exit(code if isinstance(code, int) else 0)
