"""Every adapter's SQL file loads through the one loader, and each statement
carries its one-line description (the loader refuses it otherwise)."""

from __future__ import annotations

from pathlib import Path

import pytest

import alsek_backends
from alsek_backends.named_sql import load, parse

ROOT = Path(alsek_backends.__file__).parent
# Migrations are whole scripts run in order, not named statements.
SQL_FILES = sorted(p for p in ROOT.glob("*/*.sql"))


@pytest.mark.parametrize("path", SQL_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_statement_is_named_and_described(path: Path) -> None:
    statements = load(f"alsek_backends.{path.parent.name}", path.name)
    assert statements
    for name, body in statements.items():
        description = body.splitlines()[0]
        assert description.startswith("-- ") and len(description) > 10, name


def test_a_statement_without_description_is_refused() -> None:
    with pytest.raises(ValueError, match="'ack' lacks its one-line"):
        parse("-- name: ack\nDELETE FROM messages;\n", "x.sql")


def test_a_name_given_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="appears twice"):
        parse("-- name: a\n-- one\nSELECT 1;\n-- name: a\n-- two\nSELECT 2;\n", "x.sql")
