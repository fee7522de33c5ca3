-- Alert history: one row per firing of one alert instance (rule x host x
-- scope), updated on escalation and closed on resolution. At most one open
-- row per instance.
CREATE TABLE alerts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    rule          TEXT    NOT NULL,
    host_id       TEXT    NOT NULL,
    scope         TEXT    NOT NULL,
    severity      TEXT    NOT NULL,
    state         TEXT    NOT NULL, -- firing | resolved
    value         REAL    NOT NULL,
    threshold     REAL    NOT NULL,
    peak          REAL    NOT NULL,
    started_at_ms INTEGER NOT NULL, -- when the condition first held
    fired_at_ms   INTEGER NOT NULL,
    ended_at_ms   INTEGER,
    silenced      INTEGER NOT NULL,
    message       TEXT    NOT NULL
);

CREATE UNIQUE INDEX alerts_open ON alerts (rule, host_id, scope) WHERE ended_at_ms IS NULL;
CREATE INDEX alerts_fired ON alerts (fired_at_ms);

CREATE TABLE silences (
    id            INTEGER PRIMARY KEY,
    rule          TEXT,
    host          TEXT,
    pool          TEXT,
    expires_at_ms INTEGER NOT NULL,
    comment       TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL
);
