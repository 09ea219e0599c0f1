"""SQL kept in ``.sql`` files beside the adapter that runs it (DiskCache's
SQLite queue, PostgreSQL), read once per process.

A file is a run of statements, each under a ``-- name: xyz`` header whose
next line is a ``-- `` comment saying in one line what the statement is for;
a file breaking that rule is refused when it is loaded, so the rule holds.
Text before the first header documents the file as a whole.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from importlib.resources import files
from types import MappingProxyType

_HEADER = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def parse(text: str, where: str) -> Mapping[str, str]:
    """``{name: statement}`` of a file's text; ``where`` names it in errors."""
    parts = _HEADER.split(text)
    statements: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        body = body.strip()
        if not body.startswith("-- "):
            raise ValueError(f"{where}: statement {name!r} lacks its one-line '-- ' description")
        if name in statements:
            raise ValueError(f"{where}: statement {name!r} appears twice")
        statements[name] = body
    return MappingProxyType(statements)


@functools.cache
def load(package: str, filename: str) -> Mapping[str, str]:
    """The statements of ``filename`` in ``package``'s directory."""
    text = files(package).joinpath(filename).read_text(encoding="utf-8")
    return parse(text, f"{package}/{filename}")
