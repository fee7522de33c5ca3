-- Ranges of samples an agent reported it dropped (its spool's size or age
-- bound), so a hole in a host's history has a reason. Keyed by host first;
-- an agent may report a range more than once.
CREATE TABLE gaps (
    host_id     TEXT    NOT NULL,
    from_ms     INTEGER NOT NULL,
    to_ms       INTEGER NOT NULL,
    samples     INTEGER NOT NULL,
    reported_ms INTEGER NOT NULL,
    PRIMARY KEY (host_id, from_ms, to_ms)
) WITHOUT ROWID;
