"""Backend URLs: a libpq URL plus our ``schema=`` query parameter.

Pure string work, no driver import, so the plugin module can use it too.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

DEFAULT_SCHEMA = "alsek"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def split_schema(url: str) -> tuple[str, str | None]:
    """(the URL libpq understands, the schema it named if any). libpq rejects
    unknown parameters, so ``schema`` must come off before connecting; the
    rest stays byte for byte (libpq decodes %XX, but not "+" as a space)."""
    base, _, query = url.partition("?")
    kept, schema = [], None
    for item in query.split("&") if query else []:
        key, _, value = item.partition("=")
        if unquote(key) == "schema":
            schema = unquote(value)
        else:
            kept.append(item)
    return f"{base}?{'&'.join(kept)}" if kept else base, schema


def with_schema(url: str, schema: str) -> str:
    """``url`` naming ``schema`` (replacing any it named)."""
    base, _ = split_schema(url)
    return f"{base}{'&' if '?' in base else '?'}schema={quote(schema)}"

