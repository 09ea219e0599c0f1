-- Rate and concurrency limits (alsek_backends/postgres/limits.py) on the
-- tables of migrations/0004_limits.sql. Each statement is one upsert or
-- update, so the row lock serializes racing workers; times are the
-- database's clock ({schema}.now_ms()), so hosts need not agree on theirs.
--
-- Taking a token and freeing a slot commit without waiting for the WAL
-- flush, as lease operations do (queue.sql): a server crash can only forget
-- the latest of them, which hands out a few tokens again or leaves a slot
-- held until its lease ends. Taking a slot waits for the flush: a slot,
-- once granted, stays granted.

-- name: take_token
-- Reserves the next token of a bucket (a new bucket is full); ms until it is due.
WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true)),
clock AS (
    SELECT {schema}.now_ms()::double precision AS now,
           1000.0 / %(rate_per_s)s::double precision AS step
)
INSERT INTO {schema}.rate_buckets AS b (namespace, bucket, tat)
SELECT %(namespace)s, %(bucket)s, clock.now + clock.step FROM clock, async_commit
ON CONFLICT (namespace, bucket) DO UPDATE
SET tat = GREATEST(b.tat, (SELECT now FROM clock)) + (SELECT step FROM clock)
RETURNING GREATEST(0, ceil(b.tat - (SELECT now FROM clock)
                           - %(burst)s * (SELECT step FROM clock)))::bigint AS wait_ms;

-- name: acquire_slot
-- Holds or extends a holder's slot if it has one or one is free; says whether.
INSERT INTO {schema}.limit_slots AS s (namespace, grp, holders)
VALUES (%(namespace)s, %(group)s,
        jsonb_build_object(%(holder)s::text, {schema}.now_ms() + %(lease_ms)s::bigint))
ON CONFLICT (namespace, grp) DO UPDATE
SET holders = (
    SELECT CASE
        WHEN live.holders ? %(holder)s::text
          OR (SELECT count(*) FROM jsonb_object_keys(live.holders)) < %(limit)s
        THEN live.holders || jsonb_build_object(%(holder)s::text, {schema}.now_ms() + %(lease_ms)s::bigint)
        ELSE live.holders
    END
    FROM (SELECT COALESCE(jsonb_object_agg(e.key, e.value), '{}'::jsonb) AS holders
          FROM jsonb_each(s.holders) AS e
          WHERE (e.value)::bigint > {schema}.now_ms()) AS live
)
RETURNING s.holders ? %(holder)s::text AS acquired;

-- name: release_slot
-- Frees a holder's slot, deleting the group's row when no live holder stays.
WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true)),
gone AS (
    DELETE FROM {schema}.limit_slots AS s
    WHERE s.namespace = %(namespace)s AND s.grp = %(group)s
      AND NOT EXISTS (SELECT 1 FROM jsonb_each(s.holders - %(holder)s::text) AS e
                      WHERE (e.value)::bigint > {schema}.now_ms())
    RETURNING 1
)
UPDATE {schema}.limit_slots AS s SET holders = s.holders - %(holder)s::text
FROM async_commit
WHERE s.namespace = %(namespace)s AND s.grp = %(group)s AND NOT EXISTS (SELECT 1 FROM gone);
