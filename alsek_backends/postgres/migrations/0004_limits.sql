-- Rate and concurrency limits (statements in limits.sql): the state every
-- pool on every host shares, one small row per token bucket or slot group,
-- changed by single-statement upserts (the row lock orders racing workers).
-- Same conventions as 0001: a namespace column, "C" collation on keys,
-- milliseconds of the database clock.

-- A token bucket: its theoretical arrival time, when it would be full again
-- (fractional: an interval of 1000/3 ms is not whole). A row in the past is
-- the same as none.
CREATE TABLE {schema}.rate_buckets (
    namespace text COLLATE "C" NOT NULL,
    bucket    text COLLATE "C" NOT NULL,
    tat       double precision NOT NULL,
    PRIMARY KEY (namespace, bucket)
);

-- The slots of a concurrency group: {holder: end of its lease}. The row goes
-- when its last live holder releases.
CREATE TABLE {schema}.limit_slots (
    namespace text COLLATE "C" NOT NULL,
    grp       text COLLATE "C" NOT NULL,
    holders   jsonb NOT NULL,
    PRIMARY KEY (namespace, grp)
);
