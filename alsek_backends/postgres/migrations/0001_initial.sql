-- The queue, its dead letters and the key-value store.
--
-- Every table has a namespace column, so one schema serves many applications
-- (and every test its own namespace). Text keys use the "C" collation: byte
-- order matches Python's sort, and LIKE 'prefix%' can use the btree indexes.
-- Timestamps are bigint milliseconds since the epoch (alsek_core.clock).
-- Later tables (a native status tracker, result store) come as 0002, ...

-- One clock for leases and TTLs: the database's, so hosts never disagree.
-- STABLE (transaction time): our statements run in autocommit, where that is
-- the statement's start, and STABLE lets the planner compare it to indexes.
CREATE FUNCTION {schema}.now_ms() RETURNS bigint
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT floor(extract(epoch FROM now()) * 1000)::bigint $$;

-- Submission order (FIFO within a priority). Rescheduling takes a new value,
-- sending the message to the back of its priority, as the generic queue does.
CREATE SEQUENCE {schema}.message_order;

-- Live messages only: ack deletes the row, dead-lettering moves it, so the
-- claim index never wades through finished work.
--
-- "waiting" is true for a message written with ready_at in the future. It
-- keeps delayed messages (ETAs, retries with backoff) out of the claim index,
-- so a claim stays a short index walk however many wait; each claim first
-- promotes the waiting messages that have come due.
CREATE TABLE {schema}.messages (
    id               bigint PRIMARY KEY DEFAULT nextval('{schema}.message_order'),
    namespace        text COLLATE "C" NOT NULL,
    queue            text COLLATE "C" NOT NULL,
    uuid             text COLLATE "C" NOT NULL,
    priority         bigint NOT NULL,
    ready_at         bigint NOT NULL,
    waiting          boolean NOT NULL,
    payload          bytea NOT NULL,
    deliveries       integer NOT NULL DEFAULT 0,
    lease_token      text,
    lease_expires_at bigint,
    UNIQUE (namespace, queue, uuid)
) WITH (fillfactor = 80);  -- room for HOT updates: a claim touches no indexed column

-- Claim walks this in (priority, id) order and stops after LIMIT rows.
CREATE INDEX messages_claim ON {schema}.messages (namespace, queue, priority, id)
    WHERE NOT waiting;
-- Waiting messages by due time: promotion, and how long an idle claimer sleeps.
CREATE INDEX messages_due ON {schema}.messages (namespace, queue, ready_at)
    WHERE waiting;

CREATE TABLE {schema}.dead_letters (
    namespace text COLLATE "C" NOT NULL,
    queue     text COLLATE "C" NOT NULL,
    uuid      text COLLATE "C" NOT NULL,
    id        bigint NOT NULL DEFAULT nextval('{schema}.message_order'),
    priority  bigint NOT NULL,
    ready_at  bigint NOT NULL,
    dead_at   bigint NOT NULL,
    payload   bytea NOT NULL,
    PRIMARY KEY (namespace, queue, uuid)
);

CREATE INDEX dead_letters_order ON {schema}.dead_letters (namespace, queue, priority, id);

CREATE TABLE {schema}.kv (
    namespace  text COLLATE "C" NOT NULL,
    name       text COLLATE "C" NOT NULL,
    value      bytea NOT NULL,
    expires_at bigint,
    PRIMARY KEY (namespace, name)
);

-- Pruning expired names (of every namespace: they are invisible to all) without a full scan.
CREATE INDEX kv_expiry ON {schema}.kv (expires_at) WHERE expires_at IS NOT NULL;
