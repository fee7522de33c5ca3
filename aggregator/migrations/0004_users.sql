-- Dashboard and API access: people sign in with a password (stored as an
-- Argon2id PHC string) and get a session; scripts use API tokens. Session
-- ids and API tokens are random secrets of which only the SHA-256 is kept.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'read')),
    created_ms    INTEGER NOT NULL
);

CREATE TABLE sessions (
    secret_sha256 TEXT    PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_ms    INTEGER NOT NULL,
    expires_ms    INTEGER NOT NULL
);

CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expiry ON sessions (expires_ms);

CREATE TABLE api_tokens (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL UNIQUE,
    secret_sha256 TEXT    NOT NULL UNIQUE,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'read')),
    created_ms    INTEGER NOT NULL,
    revoked_ms    INTEGER,
    last_used_ms  INTEGER
);
