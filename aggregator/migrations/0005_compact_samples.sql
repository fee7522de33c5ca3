-- Compact sample storage (issue 10). Hosts get an integer key `hk`, which
-- every table that grows with the fleet starts with. Raw samples are kept
-- as chunks of compressed columns (`chunks`); the samples of each host's
-- open chunk are made durable by one `journal` row per flush until the
-- chunk is written; `journal_mark` is the last journal row all of whose
-- samples of the host are in chunks, and `chunked_to_ms` the newest sample
-- in a chunk. Rollups: one row per host and minute or hour. The samples
-- of the first schema are moved into chunks by the aggregator on its first
-- start (store/sqlite/legacy.rs), which then drops the old tables.

ALTER TABLE hosts ADD COLUMN hk INTEGER;
UPDATE hosts SET hk = rowid;
CREATE UNIQUE INDEX hosts_hk ON hosts (hk);
ALTER TABLE hosts ADD COLUMN journal_mark INTEGER NOT NULL DEFAULT 0;
ALTER TABLE hosts ADD COLUMN chunked_to_ms INTEGER;

-- Filesystems, worker groups, worker processes (command line, start time)
-- and process states, stored once per host and referenced by `sid`.
CREATE TABLE entities (
    hk     INTEGER NOT NULL,
    sid    INTEGER NOT NULL,
    entity TEXT    NOT NULL, -- JSON {"kind": ..., ...}
    PRIMARY KEY (hk, sid)
) WITHOUT ROWID;

CREATE TABLE journal (
    id   INTEGER PRIMARY KEY,
    data BLOB    NOT NULL
);

CREATE TABLE chunks (
    id       INTEGER PRIMARY KEY,
    hk       INTEGER NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms   INTEGER NOT NULL,
    n        INTEGER NOT NULL,
    data     BLOB    NOT NULL
);
CREATE INDEX chunks_host_end ON chunks (hk, end_ms);

CREATE TABLE rollup_1m (
    hk        INTEGER NOT NULL,
    bucket_ms INTEGER NOT NULL,
    data      BLOB    NOT NULL,
    PRIMARY KEY (hk, bucket_ms)
);

CREATE TABLE rollup_1h (
    hk        INTEGER NOT NULL,
    bucket_ms INTEGER NOT NULL,
    data      BLOB    NOT NULL,
    PRIMARY KEY (hk, bucket_ms)
);
