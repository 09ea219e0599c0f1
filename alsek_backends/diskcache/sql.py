"""The adapter's SQL lives in ``queue.sql``; this reads it once, by name."""

from __future__ import annotations

import re
from importlib.resources import files

_HEADER = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def load_queries(filename: str) -> dict[str, str]:
    """Split a file on its ``-- name: xyz`` headers into ``{"xyz": "<sql>"}``;
    text before the first header is the file's documentation."""
    text = files("alsek_backends.diskcache").joinpath(filename).read_text(encoding="utf-8")
    parts = _HEADER.split(text)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


QUERIES = load_queries("queue.sql")
