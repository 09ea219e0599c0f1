"""SQL lives in ``.sql`` files next to this module, one statement per
``-- name: xyz`` header, parsed once per process.

Statements name their tables ``{schema}.table``: the Postgres schema is a
setting, so the text is rendered once per schema with the (validated, hence
safe to splice) schema name. Parameters stay psycopg placeholders.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

from alsek_core.errors import ConfigError

_HEADER = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def validate_schema(schema: str) -> str:
    """Only plain lower-case identifiers: they need no quoting anywhere."""
    if not _IDENTIFIER.match(schema):
        raise ConfigError(
            f"invalid PostgreSQL schema name {schema!r}: use lower-case letters, digits and _"
        )
    return schema


def parse(text: str) -> dict[str, str]:
    """``{name: statement}`` from a file of ``-- name:`` sections."""
    parts = _HEADER.split(text)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


@functools.cache
def _file(filename: str) -> dict[str, str]:
    return parse(resources.files(__package__).joinpath(filename).read_text(encoding="utf-8"))


@functools.cache
def queries(filename: str, schema: str) -> dict[str, str]:
    """The statements of one file, rendered for ``schema``."""
    validate_schema(schema)
    return {name: sql.replace("{schema}", schema) for name, sql in _file(filename).items()}
