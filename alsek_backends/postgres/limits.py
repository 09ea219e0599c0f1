"""The limit operations of the ``Queue`` port on PostgreSQL: each one
statement of ``limits.sql`` on the tables of migration 0003."""

from __future__ import annotations

from alsek_backends.postgres.connection import Database, Statements


class PostgresLimits:
    """``take_token`` / ``acquire_slot`` / ``release_slot`` (see ``Queue``)."""

    db: Database
    namespace: str

    def _limits(self) -> Statements:
        return Statements(self.db, "limits.sql", namespace=self.namespace)

    def take_token(self, bucket: str, rate_per_s: float, burst: int) -> int:
        row = self._limits().row("take_token", bucket=bucket, rate_per_s=rate_per_s, burst=burst)
        assert row is not None
        return int(row.wait_ms)

    def acquire_slot(self, group: str, holder: str, limit: int, lease_ms: int) -> bool:
        row = self._limits().row("acquire_slot", group=group, holder=holder, limit=limit, lease_ms=lease_ms)
        return row is not None and bool(row.acquired)

    def release_slot(self, group: str, holder: str) -> None:
        self._limits().rowcount("release_slot", group=group, holder=holder)
