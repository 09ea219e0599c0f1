"""Options every command shares, and turning any failure into one line."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from alsek_cli.json_logs import FORMATS, JsonFormatter
from alsek_core.redact import scrub
from alsek_core.settings import ENV_BACKEND

F = TypeVar("F", bound=Callable[..., Any])
LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMAT = "%(asctime)s %(levelname)s [%(processName)s] %(name)s: %(message)s"


def spellings(name: str) -> list[str]:
    """``--n-processes`` and ``--n_processes`` for either: the seed's snake_case
    spellings keep working, and kebab-case, the usual CLI style, works too."""
    if not name.startswith("--"):
        return [name]
    kebab = "--" + name[2:].replace("_", "-")
    snake = "--" + name[2:].replace("-", "_")
    return [kebab] if kebab == snake else [kebab, snake]


def option(*names: str, **attrs: Any) -> Callable[[F], F]:
    """``click.option`` accepting both spellings of every long option name; the
    parameter keeps its snake_case name."""
    declared = [spelling for name in names for spelling in spellings(name)]
    if not any(n.isidentifier() for n in names):
        declared.append(next(n for n in names if n.startswith("--"))[2:].replace("-", "_"))
    return click.option(*declared, **attrs)


def debug_requested(argv: list[str]) -> bool:
    """``--log-level debug`` (or ``--log_level``) anywhere in argv: read before
    parsing, so that even a parse error shows its traceback when asked to."""
    for i, arg in enumerate(argv):
        name, _, inline = arg.partition("=")
        if name not in ("--log-level", "--log_level"):
            continue
        value = inline if inline else (argv[i + 1] if i + 1 < len(argv) else None)
        if value is not None and value.lower() == "debug":
            return True
    return False


def setup_logging(level: str, log_format: str = "text") -> None:
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT, stream=sys.stderr, force=True)
    if log_format == "json":
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter())


def log_level_option(default: str) -> Callable[[F], F]:
    """``--log-level`` and ``--log-format``; whichever click reads last sets
    logging up with both (both are eager, read in command-line order)."""

    def callback(ctx: click.Context, param: click.Parameter, value: str) -> str:
        ctx.meta[f"alsek.{param.name}"] = value
        setup_logging(ctx.meta.get("alsek.log_level", default), ctx.meta.get("alsek.log_format", "text"))
        return value

    def both(function: F) -> F:
        return level(log_format(function))

    log_format = option(
        "--log-format",
        type=click.Choice(FORMATS, case_sensitive=False),
        default="text",
        show_default=True,
        expose_value=False,
        is_eager=True,
        callback=callback,
        help="Log lines as text, or as one JSON object per line.",
    )
    level = option(
        "--log-level",
        type=click.Choice(LEVELS, case_sensitive=False),
        default=default,
        show_default=True,
        expose_value=False,
        is_eager=True,
        callback=callback,
        help="Logging level; 'debug' also shows tracebacks of errors.",
    )
    return both


backend_option = click.option(
    "--backend",
    default=None,
    metavar="URL",
    help="Backend URL (default: ALSEK_BACKEND_URL, then [tool.alsek] backend, then .alsek/ next to "
         "the project's pyproject.toml or in the working directory).",
)


def backend_urls(argv: list[str]) -> list[str]:
    """Every backend URL this run may use: ``--backend`` values and the environment's."""
    found = [os.environ.get(ENV_BACKEND, "")]
    for i, arg in enumerate(argv):
        if arg.startswith("--backend="):
            found.append(arg.split("=", 1)[1])
        elif arg == "--backend" and i + 1 < len(argv):
            found.append(argv[i + 1])
    return [url for url in found if url]


def scrubbed(text: str, argv: list[str]) -> str:
    """``text`` without any secret of a backend URL this run was given: a
    driver's error message may quote its URL whole."""
    for url in backend_urls(argv):
        text = scrub(text, url)
    return text


def one_line(exc: BaseException) -> str:
    """Our own errors say what went wrong already; others get their type named."""
    from alsek_core.errors import AlsekError

    text = " ".join(str(exc).split())
    if isinstance(exc, AlsekError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
