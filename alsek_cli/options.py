"""Options every command shares, and turning any failure into one line."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import click

from alsek_cli.json_logs import FORMATS, JsonFormatter

F = TypeVar("F", bound=Callable[..., Any])
LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMAT = "%(asctime)s %(levelname)s [%(processName)s] %(name)s: %(message)s"


def debug_requested(argv: list[str]) -> bool:
    """``--log-level debug`` anywhere in argv: read before parsing, so that even
    a parse error shows its traceback when asked to."""
    for i, arg in enumerate(argv):
        value = arg.split("=", 1)[1] if arg.startswith("--log-level=") else None
        if arg == "--log-level" and i + 1 < len(argv):
            value = argv[i + 1]
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

    log_format = click.option(
        "--log-format",
        type=click.Choice(FORMATS, case_sensitive=False),
        default="text",
        show_default=True,
        expose_value=False,
        is_eager=True,
        callback=callback,
        help="Log lines as text, or as one JSON object per line.",
    )
    level = click.option(
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
    help="Backend URL (default: ALSEK_BACKEND_URL, then [tool.alsek] backend, then sqlite:///.alsek).",
)


def masked(url: str) -> str:
    """A URL fit for printing: the password replaced."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def one_line(exc: BaseException) -> str:
    """Our own errors say what went wrong already; others get their type named."""
    from alsek_core.errors import AlsekError

    text = " ".join(str(exc).split())
    if isinstance(exc, AlsekError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
