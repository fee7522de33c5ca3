-- Hosts, and their samples as wide rows: one row per host sample with a
-- column per system metric; filesystems, worker processes and worker groups
-- as child rows keyed by the same (host_id, ts_ms). Every key starts with
-- host_id, so per-host range scans (queries and retention) use the key.

CREATE TABLE hosts (
    host_id            TEXT    NOT NULL PRIMARY KEY,
    hostname           TEXT    NOT NULL,
    os                 TEXT    NOT NULL,
    kernel             TEXT    NOT NULL,
    cpu_count          INTEGER NOT NULL,
    memory_total_bytes INTEGER NOT NULL,
    agent_version      TEXT    NOT NULL,
    interval_ms        INTEGER NOT NULL,
    worker_groups      TEXT    NOT NULL, -- JSON [{name, min_alive}]
    first_seen_ms      INTEGER NOT NULL,
    last_seen_ms       INTEGER NOT NULL  -- timestamp of the newest stored sample, or of the hello
);

CREATE TABLE host_samples (
    host_id                  TEXT    NOT NULL,
    ts_ms                    INTEGER NOT NULL,
    cpu_percent              REAL    NOT NULL,
    cpu_per_core             TEXT    NOT NULL, -- JSON array of percentages
    load1                    REAL    NOT NULL,
    load5                    REAL    NOT NULL,
    load15                   REAL    NOT NULL,
    memory_total_bytes       INTEGER NOT NULL,
    memory_used_bytes        INTEGER NOT NULL,
    memory_available_bytes   INTEGER NOT NULL,
    memory_percent           REAL    NOT NULL,
    swap_total_bytes         INTEGER NOT NULL,
    swap_used_bytes          INTEGER NOT NULL,
    swap_percent             REAL    NOT NULL,
    disk_used_percent_max    REAL    NOT NULL, -- fullest filesystem
    disk_read_bytes_per_sec  REAL    NOT NULL,
    disk_write_bytes_per_sec REAL    NOT NULL,
    net_rx_bytes_per_sec     REAL    NOT NULL,
    net_tx_bytes_per_sec     REAL    NOT NULL,
    uptime_secs              INTEGER NOT NULL,
    process_count            INTEGER NOT NULL,
    PRIMARY KEY (host_id, ts_ms)
) WITHOUT ROWID;

CREATE TABLE fs_samples (
    host_id         TEXT    NOT NULL,
    ts_ms           INTEGER NOT NULL,
    mount_point     TEXT    NOT NULL,
    fs_type         TEXT    NOT NULL,
    device          TEXT    NOT NULL,
    total_bytes     INTEGER NOT NULL,
    available_bytes INTEGER NOT NULL,
    used_percent    REAL    NOT NULL,
    PRIMARY KEY (host_id, ts_ms, mount_point)
) WITHOUT ROWID;

CREATE TABLE worker_samples (
    host_id         TEXT    NOT NULL,
    ts_ms           INTEGER NOT NULL,
    pid             INTEGER NOT NULL,
    grp             TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    cmdline         TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    cpu_percent     REAL    NOT NULL,
    rss_bytes       INTEGER NOT NULL,
    threads         INTEGER NOT NULL,
    start_time_secs INTEGER NOT NULL,
    PRIMARY KEY (host_id, ts_ms, pid)
) WITHOUT ROWID;

CREATE TABLE group_samples (
    host_id   TEXT    NOT NULL,
    ts_ms     INTEGER NOT NULL,
    grp       TEXT    NOT NULL,
    min_alive INTEGER NOT NULL,
    alive     INTEGER NOT NULL,
    restarts  INTEGER NOT NULL,
    PRIMARY KEY (host_id, ts_ms, grp)
) WITHOUT ROWID;
