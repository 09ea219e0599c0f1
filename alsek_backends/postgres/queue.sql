-- Queue operations (semantics of alsek_core/kv_queue.py, natively).
--
-- A message is claimable when ready_at <= now and it has no live lease
-- (lease_expires_at NULL or past). Order: the given queue order, then lower
-- priority, then id (submission order). Every time is the database's, in ms,
-- but for ready_at, which is the submitter's (as in the Envelope).
-- "waiting" marks rows written with ready_at ahead of the database clock; the
-- claim index holds only the others (see migrations/0001_initial.sql).
--
-- Lease operations (claim, ack, extend_lease, reschedule, dead_letter) commit
-- asynchronously (synchronous_commit off for their own transaction only): a
-- server crash may forget the last few hundred ms of them, and forgetting one
-- only means the message is delivered again, which at-least-once allows. WAL
-- is sequential, so the next durable commit (a submit, any key-value write)
-- makes them durable too. Submits stay synchronous: forgetting one loses a
-- message. This halves the cost of a claim or ack (no fsync to wait for).

-- name: submit
-- A uuid already queued is skipped. One NOTIFY per queue wakes idle claimers
-- (inside a caller's transaction it is sent on commit, or never).
-- The arrays go in binary (placeholders ending in b): as text, the driver spells every payload
-- in hex inside an array literal, which cost a batch of 20,000 more client
-- time than the whole insert costs the server.
WITH added AS (
    INSERT INTO {schema}.messages (namespace, queue, uuid, priority, ready_at, waiting, payload)
    SELECT %(namespace)s, e.queue, e.uuid, e.priority, e.ready_at,
           e.ready_at > {schema}.now_ms(), e.payload
    FROM unnest(%(queues)b::text[], %(uuids)b::text[], %(priorities)b::bigint[],
                %(ready_ats)b::bigint[], %(payloads)b::bytea[])
         WITH ORDINALITY AS e(queue, uuid, priority, ready_at, payload, ord)
    ORDER BY e.ord
    ON CONFLICT (namespace, queue, uuid) DO NOTHING
    RETURNING 1
), woken AS (
    SELECT pg_notify(channel, '') FROM unnest(%(channels)b::text[]) AS channel
)
SELECT (SELECT count(*) FROM added) AS added, (SELECT count(*) FROM woken) AS woken;

-- name: claim
-- One statement: promote waiting messages that came due (visible to the next
-- claim: the caller claims again when this one promoted and came up short);
-- then per queue (LATERAL), the best claimable rows in index order, skipping
-- rows other claimers hold locked; then the overall best `limit`.
-- Always returns a row, carrying the promoted count, even when none is claimed.
WITH async_commit AS (
    SELECT set_config('synchronous_commit', 'off', true)
), promoted AS (
    UPDATE {schema}.messages SET waiting = false
    WHERE id IN (
        SELECT id FROM {schema}.messages
        WHERE namespace = %(namespace)s AND queue = ANY(%(queues)s::text[])
          AND waiting AND ready_at <= {schema}.now_ms()
        ORDER BY ready_at
        LIMIT 1000
        FOR UPDATE SKIP LOCKED
    )
    RETURNING 1
), picked AS (
    SELECT m.id, q.ord, m.priority
    FROM unnest(%(queues)s::text[]) WITH ORDINALITY AS q(name, ord)
    CROSS JOIN LATERAL (
        SELECT id, priority FROM {schema}.messages
        WHERE namespace = %(namespace)s AND queue = q.name AND NOT waiting
          AND ready_at <= {schema}.now_ms()
          AND (lease_expires_at IS NULL OR lease_expires_at <= {schema}.now_ms())
        ORDER BY priority, id
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    ) AS m
    ORDER BY q.ord, m.priority, m.id
    LIMIT %(limit)s
), claimed AS (
    UPDATE {schema}.messages AS t
    SET lease_token = gen_random_uuid()::text,
        lease_expires_at = {schema}.now_ms() + %(lease_ms)s::bigint,
        deliveries = t.deliveries + 1
    FROM picked
    WHERE t.id = picked.id
    RETURNING t.queue, t.uuid, t.payload, t.lease_token AS token, t.deliveries,
              picked.ord AS queue_order, picked.priority, t.id
)
SELECT (SELECT count(*) FROM promoted) AS promoted, claimed.*
FROM async_commit LEFT JOIN claimed ON true;

-- name: next_due
-- How long until the soonest waiting message of these queues comes due.
SELECT min(ready_at) - {schema}.now_ms() AS due_in_ms FROM {schema}.messages
WHERE namespace = %(namespace)s AND queue = ANY(%(queues)s::text[]) AND waiting;

-- name: ack
-- Removes a message for good, leased or not.
WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true))
DELETE FROM {schema}.messages USING async_commit
WHERE namespace = %(namespace)s AND queue = %(queue)s AND uuid = %(uuid)s;

-- name: ack_many
-- ack for many messages of one queue, in one statement.
WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true))
DELETE FROM {schema}.messages USING async_commit
WHERE namespace = %(namespace)s AND queue = %(queue)s AND uuid = ANY(%(uuids)s);

-- name: extend_lease
-- Pushes a live lease's end further; no row changed means the lease was lost.
WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true))
UPDATE {schema}.messages
SET lease_expires_at = {schema}.now_ms() + %(lease_ms)s::bigint
FROM async_commit
WHERE namespace = %(namespace)s AND queue = %(queue)s AND uuid = %(uuid)s
  AND lease_token = %(token)s AND lease_expires_at > {schema}.now_ms();

-- name: reschedule
-- Back of its priority (a new id), lease dropped, delivery count reset.
WITH async_commit AS (
    SELECT set_config('synchronous_commit', 'off', true)
), moved AS (
    UPDATE {schema}.messages
    SET payload = %(payload)s, ready_at = %(ready_at)s,
        waiting = %(ready_at)s > {schema}.now_ms(),
        id = nextval('{schema}.message_order'),
        deliveries = 0, lease_token = NULL, lease_expires_at = NULL
    FROM async_commit
    WHERE namespace = %(namespace)s AND queue = %(queue)s AND uuid = %(uuid)s
      AND lease_token = %(token)s AND lease_expires_at > {schema}.now_ms()
    RETURNING 1
)
SELECT count(*) AS moved,
       (SELECT pg_notify(%(channel)s, '') WHERE EXISTS (SELECT 1 FROM moved)) AS woken
FROM moved;

-- name: dead_letter
-- Moves a message to dead_letters, only for the holder of its live lease.
WITH async_commit AS (
    SELECT set_config('synchronous_commit', 'off', true)
), moved AS (
    DELETE FROM {schema}.messages USING async_commit
    WHERE namespace = %(namespace)s AND queue = %(queue)s AND uuid = %(uuid)s
      AND lease_token = %(token)s AND lease_expires_at > {schema}.now_ms()
    RETURNING namespace, queue, uuid, priority, ready_at
)
INSERT INTO {schema}.dead_letters (namespace, queue, uuid, priority, ready_at, dead_at, payload)
SELECT namespace, queue, uuid, priority, ready_at, {schema}.now_ms(), %(payload)s FROM moved
ON CONFLICT (namespace, queue, uuid) DO UPDATE
SET id = EXCLUDED.id, priority = EXCLUDED.priority, ready_at = EXCLUDED.ready_at,
    dead_at = EXCLUDED.dead_at, payload = EXCLUDED.payload;

-- name: contains
-- Whether a message is live in the queue.
SELECT 1 FROM {schema}.messages
WHERE namespace = %(namespace)s AND queue = %(queue)s AND uuid = %(uuid)s;

-- name: queue_names
-- Distinct queues by skipping through the indexes (one probe per queue), not
-- by reading every row: the dead letters may number millions.
WITH RECURSIVE live(queue) AS (
    (SELECT queue FROM {schema}.messages WHERE namespace = %(namespace)s ORDER BY queue LIMIT 1)
    UNION ALL
    SELECT (SELECT m.queue FROM {schema}.messages AS m
            WHERE m.namespace = %(namespace)s AND m.queue > live.queue
            ORDER BY m.queue LIMIT 1)
    FROM live WHERE live.queue IS NOT NULL
), dead(queue) AS (
    (SELECT queue FROM {schema}.dead_letters WHERE namespace = %(namespace)s ORDER BY queue LIMIT 1)
    UNION ALL
    SELECT (SELECT d.queue FROM {schema}.dead_letters AS d
            WHERE d.namespace = %(namespace)s AND d.queue > dead.queue
            ORDER BY d.queue LIMIT 1)
    FROM dead WHERE dead.queue IS NOT NULL
)
SELECT queue FROM live WHERE queue IS NOT NULL
UNION
SELECT queue FROM dead WHERE queue IS NOT NULL
ORDER BY queue;

-- name: counts
-- How many messages of a queue are in each state, by the database clock.
SELECT
    count(*) FILTER (WHERE (lease_expires_at IS NULL OR lease_expires_at <= now.ms)
                     AND ready_at <= now.ms) AS ready,
    count(*) FILTER (WHERE (lease_expires_at IS NULL OR lease_expires_at <= now.ms)
                     AND ready_at > now.ms) AS delayed,
    count(*) FILTER (WHERE lease_expires_at > now.ms) AS in_flight,
    (SELECT count(*) FROM {schema}.dead_letters
     WHERE namespace = %(namespace)s AND queue = %(queue)s) AS dead
FROM {schema}.messages, (SELECT {schema}.now_ms() AS ms) AS now
WHERE namespace = %(namespace)s AND queue = %(queue)s;

-- name: messages
-- A queue's live messages, best first, each with its state.
SELECT uuid, payload, ready_at,
       CASE WHEN lease_expires_at > {schema}.now_ms() THEN 'in_flight'
            WHEN ready_at > {schema}.now_ms() THEN 'delayed'
            ELSE 'ready' END AS state
FROM {schema}.messages
WHERE namespace = %(namespace)s AND queue = %(queue)s
ORDER BY priority, id;

-- name: dead_messages
-- A queue's dead letters, best first.
SELECT uuid, payload, ready_at, 'dead' AS state
FROM {schema}.dead_letters
WHERE namespace = %(namespace)s AND queue = %(queue)s
ORDER BY priority, id;

-- name: remove_dead
-- Forgets one dead letter.
DELETE FROM {schema}.dead_letters
WHERE namespace = %(namespace)s AND queue = %(queue)s AND uuid = %(uuid)s;

-- name: purge
-- Drops every live message of a queue, and so frees its unique keys.
WITH freed AS (
    DELETE FROM {schema}.unique_keys WHERE namespace = %(namespace)s AND queue = %(queue)s
)
DELETE FROM {schema}.messages
WHERE namespace = %(namespace)s AND queue = %(queue)s;

-- name: lock_unique
-- Serializes the submits of one unique key (to the end of their transaction),
-- so that submit_unique, run next in the same transaction with a snapshot
-- taken after the lock, sees the holder any earlier one committed.
SELECT pg_advisory_xact_lock(hashtextextended(%(namespace)s || ':' || %(queue)s || ':' || %(key)s, 0));

-- name: submit_unique
-- Queues the message and makes it the key's holder, unless a live message
-- holds the key within its window: then "holder" names that one and nothing
-- changes. "added" is 0 as well when the uuid itself was queued already.
WITH holder AS (
    SELECT k.uuid
    FROM {schema}.unique_keys AS k
    JOIN {schema}.messages AS m
      ON m.namespace = k.namespace AND m.queue = k.queue AND m.uuid = k.uuid
    WHERE k.namespace = %(namespace)s AND k.queue = %(queue)s AND k.key = %(key)s
      AND (k.expires_at IS NULL OR k.expires_at > {schema}.now_ms())
), added AS (
    INSERT INTO {schema}.messages (namespace, queue, uuid, priority, ready_at, waiting, payload)
    SELECT %(namespace)s, %(queue)s, %(uuid)s, %(priority)s, %(ready_at)s,
           %(ready_at)s > {schema}.now_ms(), %(payload)s
    WHERE NOT EXISTS (SELECT 1 FROM holder)
    ON CONFLICT (namespace, queue, uuid) DO NOTHING
    RETURNING uuid
), taken AS (
    INSERT INTO {schema}.unique_keys (namespace, queue, key, uuid, expires_at)
    SELECT %(namespace)s, %(queue)s, %(key)s, uuid,
           {schema}.now_ms() + %(window_ms)s::bigint
    FROM added
    ON CONFLICT (namespace, queue, key)
        DO UPDATE SET uuid = EXCLUDED.uuid, expires_at = EXCLUDED.expires_at
    RETURNING 1
), woken AS (
    SELECT pg_notify(%(channel)s, '') FROM added
)
SELECT (SELECT uuid FROM holder) AS holder,
       (SELECT count(*) FROM added) AS added,
       (SELECT count(*) FROM taken) AS taken,
       (SELECT count(*) FROM woken) AS woken;

-- name: release_unique
-- Frees a key only while the given message holds it.
DELETE FROM {schema}.unique_keys
WHERE namespace = %(namespace)s AND queue = %(queue)s AND key = %(key)s AND uuid = %(uuid)s;

-- name: join
-- A chord member's share (ports.ChordJoin), in its settle's transaction:
-- drop the callback if the member failed the chord; record the outcome
-- unless its index is there (a rerun); count it; release the parked
-- callback if that count completes the chord. One statement, so the CTEs
-- never touch one row twice: a member that drops never releases.
WITH dropped AS (
    DELETE FROM {schema}.messages
    WHERE %(drop)s AND namespace = %(namespace)s AND queue = %(queue)s AND uuid = %(callback)s
    RETURNING 1
), recorded AS (
    INSERT INTO {schema}.chord_joins (namespace, queue, callback, idx, data)
    VALUES (%(namespace)s, %(queue)s, %(callback)s, %(idx)s, %(data)s)
    ON CONFLICT DO NOTHING
    RETURNING 1
), counted AS (
    INSERT INTO {schema}.chord_counts AS c (namespace, queue, callback, recorded)
    SELECT %(namespace)s, %(queue)s, %(callback)s, 1 FROM recorded
    ON CONFLICT (namespace, queue, callback) DO UPDATE SET recorded = c.recorded + 1
    RETURNING recorded
), released AS (
    UPDATE {schema}.messages SET ready_at = {schema}.now_ms(), waiting = false
    WHERE NOT %(drop)s AND namespace = %(namespace)s AND queue = %(queue)s AND uuid = %(callback)s
      AND ready_at = %(parked)s AND EXISTS (SELECT 1 FROM counted WHERE recorded = %(size)s)
    RETURNING 1
)
SELECT (SELECT count(*) FROM dropped) AS dropped, (SELECT count(*) FROM released) AS released,
       (SELECT pg_notify(%(channel)s, '') WHERE EXISTS (SELECT 1 FROM released)) AS woken;

-- name: joined
-- A chord's recorded outcomes.
SELECT idx, data FROM {schema}.chord_joins
WHERE namespace = %(namespace)s AND queue = %(queue)s AND callback = %(callback)s;

-- name: forget_join
-- Drops a chord's join once its callback has settled.
WITH counts AS (
    DELETE FROM {schema}.chord_counts
    WHERE namespace = %(namespace)s AND queue = %(queue)s AND callback = %(callback)s
)
DELETE FROM {schema}.chord_joins
WHERE namespace = %(namespace)s AND queue = %(queue)s AND callback = %(callback)s;
