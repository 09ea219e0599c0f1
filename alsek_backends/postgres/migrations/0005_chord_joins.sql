-- Chord joins (alsek_core/chord.py): a chord is known by its callback, a
-- message parked in its queue until the last member settles.
--
-- chord_joins holds each settled member's outcome by index: its primary key
-- counts a member once however often it settles. chord_counts holds how many
-- are recorded: the settle that records one increments it by an upsert,
-- whose row lock lines up concurrent settlers, so exactly one of them reads
-- the full count and releases the callback.
CREATE TABLE {schema}.chord_joins (
    namespace text COLLATE "C" NOT NULL,
    queue     text COLLATE "C" NOT NULL,
    callback  text COLLATE "C" NOT NULL,
    idx       integer NOT NULL,
    data      bytea NOT NULL,
    PRIMARY KEY (namespace, queue, callback, idx)
);

CREATE TABLE {schema}.chord_counts (
    namespace text COLLATE "C" NOT NULL,
    queue     text COLLATE "C" NOT NULL,
    callback  text COLLATE "C" NOT NULL,
    recorded  integer NOT NULL,
    PRIMARY KEY (namespace, queue, callback)
);
