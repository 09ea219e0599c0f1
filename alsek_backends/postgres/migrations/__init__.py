"""Versioned schema migrations: ``NNNN_description.sql``, applied in order by
:mod:`alsek_backends.postgres.schema`. ``{schema}`` stands for the schema name."""
