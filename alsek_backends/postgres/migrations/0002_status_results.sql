-- Statuses and results as tables of their own (PostgresStatusTracker,
-- PostgresResultStore), so an application can join them with its own tables
-- and query them with SQL, instead of opaque key-value rows.
--
-- Same conventions as 0001: a namespace column, "C" collation on keys,
-- bigint milliseconds of the database clock, expires_at NULL for "forever".

-- One row per message: its latest status. Written by one upsert whose NOTIFY
-- wakes waiters (channel "status:<uuid>", as backend.notify names it).
CREATE TABLE {schema}.statuses (
    namespace  text COLLATE "C" NOT NULL,
    uuid       text COLLATE "C" NOT NULL,
    status     text NOT NULL,
    queue      text COLLATE "C" NOT NULL,
    task_name  text NOT NULL,
    updated_at bigint NOT NULL,
    expires_at bigint,
    PRIMARY KEY (namespace, uuid)
);

CREATE INDEX statuses_expiry ON {schema}.statuses (expires_at) WHERE expires_at IS NOT NULL;

-- The order results were written in: a family's results come back in it
-- (written_at alone ties within a millisecond).
CREATE SEQUENCE {schema}.result_order;

-- One row per message, whatever its family: a callback's or a triggered
-- run's result names its progenitor, and the family is a WHERE on that
-- column, not a copy of the row per ancestor.
CREATE TABLE {schema}.results (
    namespace       text COLLATE "C" NOT NULL,
    uuid            text COLLATE "C" NOT NULL,
    progenitor_uuid text COLLATE "C",
    result          bytea NOT NULL,
    written_at      bigint NOT NULL,
    write_order     bigint NOT NULL DEFAULT nextval('{schema}.result_order'),
    expires_at      bigint,
    PRIMARY KEY (namespace, uuid)
);

CREATE INDEX results_family ON {schema}.results (namespace, progenitor_uuid, write_order)
    WHERE progenitor_uuid IS NOT NULL;
CREATE INDEX results_expiry ON {schema}.results (expires_at) WHERE expires_at IS NOT NULL;
