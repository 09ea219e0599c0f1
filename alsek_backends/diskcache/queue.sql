-- The queue of the DiskCache backend, in its own SQLite file next to the cache
-- (queue.sqlite3), so claims never wait on the cache's write lock.
--
-- messages       live messages; one row per (namespace, queue, uuid).
--                id        autoincrement: FIFO order within a priority. A
--                          rescheduled message is re-inserted, so it goes to
--                          the back, as in alsek_core/kv_queue.py.
--                waiting   0: claimable now. 1: not before wake_at, which is
--                          ready_at for a delayed message and the lease expiry
--                          for a claimed one. The two partial indexes keep the
--                          sets apart, so a claim never walks over delayed or
--                          leased rows: it wakes the due waiting rows (an index
--                          range), then takes the first claimable ones (an
--                          index prefix) - O(log n) either way.
--                token     the lease holder's proof; NULL unless leased.
-- dead_letters   messages a worker gave up on, per (namespace, queue, uuid).
-- unique_keys    the message holding each unique key of a queue, until
--                expires_at (NULL: no window). A key whose holder is no longer
--                in messages is free, whatever the row says (version 2).
-- chord_joins    per chord (its callback's queue and uuid), each settled
--                member's outcome by index: the primary key counts a member
--                once however often it settles (version 3).
-- chord_counts   per chord, how many members chord_joins holds (so the
--                settle that records one need not count them all).
--
-- Every statement names its namespace, so namespaces sharing the file never
-- see each other. Times are milliseconds since the epoch.

-- name: connect
-- WAL: readers never block the writer, and a commit is an append to the log.
-- synchronous=NORMAL under WAL fsyncs only at checkpoints: a committed
-- transaction survives a crash of the process, a power loss may drop the
-- last few (never corrupting the file). The busy timeout is set by the caller.
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;

-- name: schema
-- Creates the tables and indexes on first use (user_version marks it done).
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS messages (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace  TEXT    NOT NULL,
    queue      TEXT    NOT NULL,
    uuid       TEXT    NOT NULL,
    priority   INTEGER NOT NULL,
    ready_at   INTEGER NOT NULL,
    payload    BLOB    NOT NULL,
    waiting    INTEGER NOT NULL,
    wake_at    INTEGER NOT NULL,
    token      TEXT,
    deliveries INTEGER NOT NULL DEFAULT 0,
    UNIQUE (namespace, queue, uuid)
);
CREATE INDEX IF NOT EXISTS messages_claimable
    ON messages (namespace, queue, priority, id) WHERE waiting = 0;
CREATE INDEX IF NOT EXISTS messages_waiting
    ON messages (namespace, queue, wake_at) WHERE waiting = 1;
CREATE TABLE IF NOT EXISTS dead_letters (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace  TEXT    NOT NULL,
    queue      TEXT    NOT NULL,
    uuid       TEXT    NOT NULL,
    priority   INTEGER NOT NULL,
    ready_at   INTEGER NOT NULL,
    payload    BLOB    NOT NULL,
    UNIQUE (namespace, queue, uuid)
);
CREATE TABLE IF NOT EXISTS unique_keys (
    namespace  TEXT    NOT NULL,
    queue      TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    uuid       TEXT    NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (namespace, queue, key)
);
CREATE TABLE IF NOT EXISTS chord_joins (
    namespace  TEXT    NOT NULL,
    queue      TEXT    NOT NULL,
    callback   TEXT    NOT NULL,
    idx        INTEGER NOT NULL,
    data       BLOB    NOT NULL,
    PRIMARY KEY (namespace, queue, callback, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS chord_counts (
    namespace  TEXT    NOT NULL,
    queue      TEXT    NOT NULL,
    callback   TEXT    NOT NULL,
    recorded   INTEGER NOT NULL,
    PRIMARY KEY (namespace, queue, callback)
) WITHOUT ROWID;
PRAGMA user_version = 3;
COMMIT;

-- name: submit
-- Enqueues one message; a uuid already queued is skipped.
INSERT OR IGNORE INTO messages (namespace, queue, uuid, priority, ready_at, payload, waiting, wake_at)
VALUES (:namespace, :queue, :uuid, :priority, :ready_at, :payload, :ready_at > :now, :ready_at);

-- name: has_due
-- Read-only, outside any transaction: an idle poller need not take the write lock.
SELECT EXISTS (
    SELECT 1 FROM messages
    WHERE namespace = :namespace AND queue = :queue AND waiting = 0
) OR EXISTS (
    SELECT 1 FROM messages
    WHERE namespace = :namespace AND queue = :queue AND waiting = 1 AND wake_at <= :now
);

-- name: wake
-- Delays that have passed and leases that have expired become claimable.
UPDATE messages SET waiting = 0, token = NULL
WHERE namespace = :namespace AND queue = :queue AND waiting = 1 AND wake_at <= :now;

-- name: claim
-- RETURNING gives rows in no promised order; the caller sorts by (priority, id).
UPDATE messages
SET waiting = 1, wake_at = :lease_until, token = lower(hex(randomblob(16))),
    deliveries = deliveries + 1
WHERE id IN (
    SELECT id FROM messages
    WHERE namespace = :namespace AND queue = :queue AND waiting = 0
    ORDER BY priority, id
    LIMIT :limit
)
RETURNING priority, id, uuid, payload, token, deliveries;

-- name: ack
-- Removes a message for good, leased or not.
DELETE FROM messages WHERE namespace = :namespace AND queue = :queue AND uuid = :uuid;

-- name: extend_lease
-- Pushes a live lease's end further; no row changed means the lease was lost.
UPDATE messages SET wake_at = :lease_until
WHERE namespace = :namespace AND queue = :queue AND uuid = :uuid
  AND token = :token AND wake_at > :now;

-- name: take_leased
-- Removes a message only for the holder of a live lease (reschedule, dead_letter).
DELETE FROM messages
WHERE namespace = :namespace AND queue = :queue AND uuid = :uuid
  AND token = :token AND wake_at > :now
RETURNING priority, ready_at;

-- name: bury
-- Writes a message taken by take_leased into the dead letters.
INSERT OR REPLACE INTO dead_letters (namespace, queue, uuid, priority, ready_at, payload)
VALUES (:namespace, :queue, :uuid, :priority, :ready_at, :payload);

-- name: join_record
-- A chord member's outcome; one already recorded (a rerun's) is kept.
INSERT OR IGNORE INTO chord_joins (namespace, queue, callback, idx, data)
VALUES (:namespace, :queue, :callback, :idx, :data);

-- name: joined
-- A chord's recorded outcomes.
SELECT idx, data FROM chord_joins
WHERE namespace = :namespace AND queue = :queue AND callback = :callback;

-- name: join_count
-- Counts a member join_record just recorded; how many the chord has now.
INSERT INTO chord_counts (namespace, queue, callback, recorded)
VALUES (:namespace, :queue, :callback, 1)
ON CONFLICT (namespace, queue, callback) DO UPDATE SET recorded = recorded + 1
RETURNING recorded;

-- name: release
-- A parked chord callback becomes claimable (one no longer parked is left alone).
UPDATE messages SET ready_at = :now, waiting = 0, wake_at = :now
WHERE namespace = :namespace AND queue = :queue AND uuid = :callback
  AND ready_at = :parked AND token IS NULL;

-- name: forget_join
-- Drops a chord's join once its callback has settled.
DELETE FROM chord_joins
WHERE namespace = :namespace AND queue = :queue AND callback = :callback;

-- name: forget_count
-- Drops a chord's count with its join.
DELETE FROM chord_counts
WHERE namespace = :namespace AND queue = :queue AND callback = :callback;

-- name: contains
-- Whether a message is live in the queue.
SELECT EXISTS (
    SELECT 1 FROM messages WHERE namespace = :namespace AND queue = :queue AND uuid = :uuid
);

-- name: queue_names
-- A skip scan over the unique indexes: one seek per distinct queue, not one
-- step per message.
WITH RECURSIVE
    live(queue) AS (
        SELECT min(queue) FROM messages WHERE namespace = :namespace
        UNION ALL
        SELECT (SELECT min(queue) FROM messages WHERE namespace = :namespace AND queue > live.queue)
        FROM live WHERE live.queue IS NOT NULL
    ),
    dead(queue) AS (
        SELECT min(queue) FROM dead_letters WHERE namespace = :namespace
        UNION ALL
        SELECT (SELECT min(queue) FROM dead_letters WHERE namespace = :namespace AND queue > dead.queue)
        FROM dead WHERE dead.queue IS NOT NULL
    )
SELECT queue FROM live WHERE queue IS NOT NULL
UNION
SELECT queue FROM dead WHERE queue IS NOT NULL
ORDER BY queue;

-- name: counts
-- In flight: a live lease. An expired one that no claim has woken yet counts
-- as ready, as it is claimable.
SELECT
    coalesce(sum(CASE WHEN token IS NOT NULL AND wake_at > :now THEN 0
                      WHEN ready_at > :now THEN 0 ELSE 1 END), 0),
    coalesce(sum(CASE WHEN token IS NOT NULL AND wake_at > :now THEN 0
                      WHEN ready_at > :now THEN 1 ELSE 0 END), 0),
    coalesce(sum(token IS NOT NULL AND wake_at > :now), 0),
    (SELECT count(*) FROM dead_letters WHERE namespace = :namespace AND queue = :queue)
FROM messages
WHERE namespace = :namespace AND queue = :queue;

-- name: messages
-- A queue's live messages, best first, with whether each holds a live lease.
SELECT uuid, payload, ready_at, token IS NOT NULL AND wake_at > :now
FROM messages
WHERE namespace = :namespace AND queue = :queue
ORDER BY priority, id;

-- name: dead_messages
-- A queue's dead letters, best first.
SELECT uuid, payload, ready_at
FROM dead_letters
WHERE namespace = :namespace AND queue = :queue
ORDER BY priority, id;

-- name: remove_dead
-- Forgets one dead letter.
DELETE FROM dead_letters WHERE namespace = :namespace AND queue = :queue AND uuid = :uuid;

-- name: purge
-- Drops every live message of a queue.
DELETE FROM messages WHERE namespace = :namespace AND queue = :queue;

-- name: purge_unique
-- Frees every unique key of a queue (with purge, in its transaction).
DELETE FROM unique_keys WHERE namespace = :namespace AND queue = :queue;

-- name: unique_holder
-- The live message holding a unique key within its window, if any.
SELECT k.uuid
FROM unique_keys AS k
JOIN messages AS m ON m.namespace = k.namespace AND m.queue = k.queue AND m.uuid = k.uuid
WHERE k.namespace = :namespace AND k.queue = :queue AND k.key = :key
  AND (k.expires_at IS NULL OR k.expires_at > :now);

-- name: take_unique
-- Makes a message the holder of a key (the caller checked it was free).
INSERT INTO unique_keys (namespace, queue, key, uuid, expires_at)
VALUES (:namespace, :queue, :key, :uuid, :expires_at)
ON CONFLICT (namespace, queue, key) DO UPDATE SET uuid = excluded.uuid, expires_at = excluded.expires_at;

-- name: release_unique
-- Frees a key only while the given message holds it.
DELETE FROM unique_keys
WHERE namespace = :namespace AND queue = :queue AND key = :key AND uuid = :uuid;
