-- One row that `/health` rewrites to prove the database takes a write: a
-- full disk or a wedged writer shows there, not only in the ingest log.
CREATE TABLE health_probe (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    at_ms INTEGER NOT NULL
);
