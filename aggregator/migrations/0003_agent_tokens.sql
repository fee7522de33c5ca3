-- Agent tokens: the credentials agents stream samples with. Only the
-- SHA-256 of each secret is stored. A token with a host_id may stream only
-- as that host; one without may enroll any number of hosts.
CREATE TABLE agent_tokens (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE,
    secret_sha256 TEXT    NOT NULL UNIQUE,
    host_id       TEXT,
    created_ms    INTEGER NOT NULL,
    revoked_ms    INTEGER,
    last_used_ms  INTEGER
);

-- Which token registered each host id first, and so owns it: another token
-- cannot stream as that host until an operator reassigns it.
CREATE TABLE host_owners (
    host_id  TEXT    PRIMARY KEY,
    token_id INTEGER NOT NULL REFERENCES agent_tokens (id),
    since_ms INTEGER NOT NULL
);
