"""Backend URLs: a libpq URL plus our ``schema=`` query parameter.

Pure string work, no driver import, so the plugin module can use it too.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

DEFAULT_SCHEMA = "alsek"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def split_schema(url: str) -> tuple[str, str | None]:
    """(the URL libpq understands, the schema it named if any). libpq rejects
    unknown parameters, so ``schema`` must come off before connecting."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((value for key, value in query if key == "schema"), None)
    rest = urlencode([(key, value) for key, value in query if key != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


def with_schema(url: str, schema: str) -> str:
    """``url`` naming ``schema`` (replacing any it named)."""
    base, _ = split_schema(url)
    parts = urlsplit(base)
    query = [*parse_qsl(parts.query, keep_blank_values=True), ("schema", schema)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def masked(url: str) -> str:
    """``url`` safe to print: the password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
