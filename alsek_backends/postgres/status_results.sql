-- The native status tracker and result store (migrations/0002_status_results.sql).
--
-- A row past its expires_at (database clock, ms) is invisible, as if already
-- gone; the writers prune such rows now and then. Every write NOTIFYs its
-- waiters in the same statement, so the notification leaves on commit, after
-- the row is visible: a woken waiter always finds what woke it.

-- name: set_status
-- Upserts a message's status and NOTIFYs its waiters on commit. Without
-- durable (a status a later write replaces: SUBMITTED, RUNNING) it commits
-- asynchronously, as lease operations do: a server crash may forget it, and
-- the next status write replaces it anyway.
WITH durability AS (
    SELECT set_config('synchronous_commit',
                      CASE WHEN %(durable)s THEN current_setting('synchronous_commit') ELSE 'off' END, true)
), written AS (
    INSERT INTO {schema}.statuses AS s
        (namespace, uuid, status, queue, task_name, updated_at, expires_at)
    SELECT %(namespace)s, %(uuid)s, %(status)s, %(queue)s, %(task_name)s, %(updated_at)s,
           {schema}.now_ms() + %(ttl)s::bigint
    FROM durability
    ON CONFLICT (namespace, uuid) DO UPDATE
    SET status = EXCLUDED.status, queue = EXCLUDED.queue, task_name = EXCLUDED.task_name,
        updated_at = EXCLUDED.updated_at, expires_at = EXCLUDED.expires_at
    RETURNING 1
)
SELECT pg_notify(%(channel)s, '') FROM written;

-- name: set_statuses
-- set_status for many messages in one statement (the outcomes of a settle
-- batch; one row per uuid), committed as the transaction around it says.
WITH written AS (
    INSERT INTO {schema}.statuses AS s
        (namespace, uuid, status, queue, task_name, updated_at, expires_at)
    SELECT %(namespace)s, w.uuid, w.status, w.queue, w.task_name, w.updated_at, {schema}.now_ms() + w.ttl
    FROM unnest(%(uuids)s::text[], %(statuses)s::text[], %(queues)s::text[], %(task_names)s::text[],
                %(updated_ats)s::bigint[], %(ttls)s::bigint[])
         AS w(uuid, status, queue, task_name, updated_at, ttl)
    ON CONFLICT (namespace, uuid) DO UPDATE
    SET status = EXCLUDED.status, queue = EXCLUDED.queue, task_name = EXCLUDED.task_name,
        updated_at = EXCLUDED.updated_at, expires_at = EXCLUDED.expires_at
)
SELECT pg_notify(channel, '') FROM unnest(%(channels)s::text[]) AS channel;

-- name: get_status
-- A message's live status record.
SELECT status, queue, task_name, updated_at FROM {schema}.statuses
WHERE namespace = %(namespace)s AND uuid = %(uuid)s
  AND (expires_at IS NULL OR expires_at > {schema}.now_ms());

-- name: status_uuids
-- Every uuid with a live status (for the integrity scanner).
SELECT uuid FROM {schema}.statuses
WHERE namespace = %(namespace)s
  AND (expires_at IS NULL OR expires_at > {schema}.now_ms())
ORDER BY uuid;

-- name: remove_status
-- Forgets a message's status.
DELETE FROM {schema}.statuses WHERE namespace = %(namespace)s AND uuid = %(uuid)s;

-- name: prune_statuses
-- Every namespace's expired rows: invisible to all, so anyone may delete them.
DELETE FROM {schema}.statuses WHERE expires_at <= {schema}.now_ms();

-- name: set_result
-- With nx, a live row is kept (a message that ran twice keeps its first
-- result); an expired one is taken over. Waiters on the message and on its
-- progenitor are notified either way.
WITH written AS (
    INSERT INTO {schema}.results AS r
        (namespace, uuid, progenitor_uuid, result, written_at, expires_at)
    VALUES (%(namespace)s, %(uuid)s, %(progenitor_uuid)s, %(result)s, {schema}.now_ms(),
            {schema}.now_ms() + %(ttl)s::bigint)
    ON CONFLICT (namespace, uuid) DO UPDATE
    SET progenitor_uuid = EXCLUDED.progenitor_uuid, result = EXCLUDED.result,
        written_at = EXCLUDED.written_at, expires_at = EXCLUDED.expires_at,
        write_order = nextval('{schema}.result_order')
    WHERE NOT %(nx)s OR r.expires_at <= {schema}.now_ms()
    RETURNING 1
), woken AS (
    SELECT pg_notify(channel, '') FROM unnest(%(channels)s::text[]) AS channel
)
SELECT (SELECT count(*) FROM written) AS written, (SELECT count(*) FROM woken) AS woken;

-- name: add_results
-- set_result with nx for many messages in one statement (the outcomes of a
-- settle batch; one row per uuid): a live row is kept, an expired one taken
-- over, and every channel given is notified.
WITH written AS (
    INSERT INTO {schema}.results AS r
        (namespace, uuid, progenitor_uuid, result, written_at, expires_at)
    SELECT %(namespace)s, w.uuid, w.progenitor_uuid, w.result, {schema}.now_ms(), {schema}.now_ms() + w.ttl
    FROM unnest(%(uuids)s::text[], %(progenitor_uuids)s::text[], %(results)s::bytea[], %(ttls)s::bigint[])
         WITH ORDINALITY AS w(uuid, progenitor_uuid, result, ttl, n)
    ORDER BY w.n
    ON CONFLICT (namespace, uuid) DO UPDATE
    SET progenitor_uuid = EXCLUDED.progenitor_uuid, result = EXCLUDED.result,
        written_at = EXCLUDED.written_at, expires_at = EXCLUDED.expires_at,
        write_order = nextval('{schema}.result_order')
    WHERE r.expires_at <= {schema}.now_ms()
)
SELECT pg_notify(channel, '') FROM unnest(%(channels)s::text[]) AS channel;

-- name: result_exists
-- Whether a message has a live result.
SELECT 1 FROM {schema}.results
WHERE namespace = %(namespace)s AND uuid = %(uuid)s
  AND (expires_at IS NULL OR expires_at > {schema}.now_ms());

-- name: family_complete
-- The message or one of its descendants has a result, and so has every
-- member the caller knows of (a callback chain's uuids).
SELECT EXISTS (
           SELECT 1 FROM {schema}.results
           WHERE namespace = %(namespace)s
             AND (uuid = %(uuid)s OR progenitor_uuid = %(uuid)s)
             AND (expires_at IS NULL OR expires_at > {schema}.now_ms()))
       AND (SELECT count(*) FROM {schema}.results
            WHERE namespace = %(namespace)s AND uuid = ANY(%(members)s::text[])
              AND (expires_at IS NULL OR expires_at > {schema}.now_ms()))
           = cardinality(%(members)s::text[]) AS complete;

-- name: get_result
-- A message's live result, kept.
SELECT uuid, result, written_at, write_order FROM {schema}.results
WHERE namespace = %(namespace)s AND uuid = %(uuid)s
  AND (expires_at IS NULL OR expires_at > {schema}.now_ms());

-- name: take_result
-- Fetch and forget at once: two takers cannot both get it.
DELETE FROM {schema}.results
WHERE namespace = %(namespace)s AND uuid = %(uuid)s
  AND (expires_at IS NULL OR expires_at > {schema}.now_ms())
RETURNING uuid, result, written_at, write_order;

-- name: get_family
-- The live results of a message and its descendants, kept.
SELECT uuid, result, written_at, write_order FROM {schema}.results
WHERE namespace = %(namespace)s AND (uuid = %(uuid)s OR progenitor_uuid = %(uuid)s)
  AND (expires_at IS NULL OR expires_at > {schema}.now_ms())
ORDER BY write_order;

-- name: take_family
-- The live results of a message and its descendants, deleted as they are read.
DELETE FROM {schema}.results
WHERE namespace = %(namespace)s AND (uuid = %(uuid)s OR progenitor_uuid = %(uuid)s)
  AND (expires_at IS NULL OR expires_at > {schema}.now_ms())
RETURNING uuid, result, written_at, write_order;

-- name: delete_result
-- Counts the row only if it was live (an expired one counts as missing).
WITH gone AS (
    DELETE FROM {schema}.results
    WHERE namespace = %(namespace)s AND uuid = %(uuid)s
    RETURNING expires_at IS NULL OR expires_at > {schema}.now_ms() AS live
)
SELECT count(*) FILTER (WHERE live) AS removed FROM gone;

-- name: delete_family
-- Forgets the results of a message and its descendants; counts the live ones.
WITH gone AS (
    DELETE FROM {schema}.results
    WHERE namespace = %(namespace)s AND (uuid = %(uuid)s OR progenitor_uuid = %(uuid)s)
    RETURNING expires_at IS NULL OR expires_at > {schema}.now_ms() AS live
)
SELECT count(*) FILTER (WHERE live) AS removed FROM gone;

-- name: prune_results
-- Every namespace's expired results: invisible to all, so anyone may delete them.
DELETE FROM {schema}.results WHERE expires_at <= {schema}.now_ms();
