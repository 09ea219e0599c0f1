-- Unique jobs: the message holding each unique key of a queue, until
-- expires_at (NULL: no window). A key whose holder is no longer in messages
-- is free, whatever its row says; a submit takes it over (queue.sql,
-- submit_unique).
--
-- Same conventions as 0001: a namespace column, "C" collation on keys,
-- bigint milliseconds of the database clock.

CREATE TABLE {schema}.unique_keys (
    namespace  text COLLATE "C" NOT NULL,
    queue      text COLLATE "C" NOT NULL,
    key        text COLLATE "C" NOT NULL,
    uuid       text COLLATE "C" NOT NULL,
    expires_at bigint,
    PRIMARY KEY (namespace, queue, key)
);
