"""The ``alsek`` entry point. Every failure ends as one line on stderr and a
non-zero exit; ``--log-level debug`` adds the traceback."""

from __future__ import annotations

import sys
import traceback

import click

from alsek import __version__
from alsek_cli import admin, demo, operate, pools, revoke
from alsek_cli.options import debug_requested, one_line
from alsek_core.plugins import plugin_host


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=__version__, prog_name="alsek")
def cli() -> None:
    """Alsek: a distributed task queue for Python, on DiskCache/SQLite
    (default), Redis or PostgreSQL. Runs worker pools for your tasks, and
    looks after queues, statuses, results and dead letters."""


for command in (pools.thread_pool, pools.process_pool, demo.demo, *admin.COMMANDS, revoke.revoke,
                *operate.COMMANDS):
    cli.add_command(command)


def add_plugin_commands(group: click.Group) -> list[str]:
    """Ask each plugin for its commands on its own, so one broken plugin
    hides no other; returns the problems."""
    problems = []
    for impl in plugin_host().manager.hook.alsek_add_commands.get_hookimpls():
        try:
            impl.function(cli=group)
        except Exception as exc:
            problems.append(f"plugin {impl.plugin_name!r} could not add its commands: {one_line(exc)}")
    return problems


PLUGIN_PROBLEMS = add_plugin_commands(cli)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    debug = debug_requested(args)
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
        click.echo(f"error: {where}{' '.join(exc.format_message().split())}", err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"error: {one_line(exc)}", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
