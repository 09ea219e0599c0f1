"""The adapter's SQL (kv.sql, queue.sql, status_results.sql, read by
:mod:`alsek_backends.named_sql`) rendered for a schema.

Statements name their tables ``{schema}.table``: the Postgres schema is a
setting, so the text is rendered once per schema with the (validated, hence
safe to splice) schema name. Parameters stay psycopg placeholders.
"""

from __future__ import annotations

import functools
import re

from alsek_backends.named_sql import load
from alsek_core.errors import ConfigError

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def validate_schema(schema: str) -> str:
    """Only plain lower-case identifiers: they need no quoting anywhere."""
    if not _IDENTIFIER.match(schema):
        raise ConfigError(
            f"invalid PostgreSQL schema name {schema!r}: use lower-case letters, digits and _"
        )
    return schema


@functools.cache
def queries(filename: str, schema: str) -> dict[str, str]:
    """The statements of one file, rendered for ``schema``."""
    validate_schema(schema)
    return {name: sql.replace("{schema}", schema) for name, sql in load("alsek_backends.postgres", filename).items()}
