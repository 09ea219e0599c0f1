-- The key-value store: one row per (namespace, name). A row past its
-- expires_at (database clock, ms) is invisible, as if already gone.

-- name: exists
-- Whether a live row holds the name.
SELECT 1 FROM {schema}.kv
WHERE namespace = %(namespace)s AND name = %(name)s
  AND (expires_at IS NULL OR expires_at > {schema}.now_ms());

-- name: get
-- The value of a live row.
SELECT value FROM {schema}.kv
WHERE namespace = %(namespace)s AND name = %(name)s
  AND (expires_at IS NULL OR expires_at > {schema}.now_ms());

-- name: set
-- Writes a row, replacing whatever held the name.
INSERT INTO {schema}.kv (namespace, name, value, expires_at)
VALUES (%(namespace)s, %(name)s, %(value)s, {schema}.now_ms() + %(ttl)s::bigint)
ON CONFLICT (namespace, name) DO UPDATE
SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at;

-- name: set_nx
-- Inserts, or takes over a row that has expired; no row back means the name is live.
INSERT INTO {schema}.kv AS kv (namespace, name, value, expires_at)
VALUES (%(namespace)s, %(name)s, %(value)s, {schema}.now_ms() + %(ttl)s::bigint)
ON CONFLICT (namespace, name) DO UPDATE
SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at
WHERE kv.expires_at IS NOT NULL AND kv.expires_at <= {schema}.now_ms()
RETURNING 1;

-- name: delete
-- Returns whether the deleted row was live (an expired one counts as missing).
DELETE FROM {schema}.kv
WHERE namespace = %(namespace)s AND name = %(name)s
RETURNING expires_at IS NULL OR expires_at > {schema}.now_ms() AS live;

-- name: delete_if
-- Deletes a live row only while it holds the value; a row back means it did.
DELETE FROM {schema}.kv
WHERE namespace = %(namespace)s AND name = %(name)s AND value = %(value)s
  AND (expires_at IS NULL OR expires_at > {schema}.now_ms())
RETURNING 1;

-- name: scan
-- lo/hi bound the literal prefix of the pattern, so the primary key is used
-- even under a generic (prepared) plan that cannot look inside the LIKE.
SELECT name FROM {schema}.kv
WHERE namespace = %(namespace)s
  AND name >= %(lo)s AND (%(hi)s::text IS NULL OR name < %(hi)s::text)
  AND name LIKE %(like)s
  AND (expires_at IS NULL OR expires_at > {schema}.now_ms())
ORDER BY name;

-- name: count
-- How many live names match the pattern (bounded like scan).
SELECT count(*) AS names FROM {schema}.kv
WHERE namespace = %(namespace)s
  AND name >= %(lo)s AND (%(hi)s::text IS NULL OR name < %(hi)s::text)
  AND name LIKE %(like)s
  AND (expires_at IS NULL OR expires_at > {schema}.now_ms());

-- name: prune
-- Every namespace's expired rows: invisible to all, so anyone may delete them.
DELETE FROM {schema}.kv WHERE expires_at <= {schema}.now_ms();
