"""The ``alsek`` command line: worker pools, queue administration, the demo.

Adapters add their own commands (``alsek db`` from PostgreSQL) through the
``alsek_add_commands`` plugin hook."""

from __future__ import annotations
