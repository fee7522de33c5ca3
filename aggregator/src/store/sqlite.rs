//! The SQLite store: one file in WAL mode, migrations embedded in the
//! binary, wide rows, idempotent on (host, timestamp).

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};

use super::history::Metric;
use super::{Bucket, CurrentSample, GroupRecord, HostRecord, Result, StoreError};
use crate::model::{
    Filesystem, GroupStatus, HostInfo, Sample, SystemMetrics, TimestampMs, Worker, WorkerGroup,
};

/// One agent's batch, as handed to [`SqliteStore::write_batches`].
#[derive(Debug, Clone)]
pub struct HostBatch {
    pub host_id: String,
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and migrates it.
    pub async fn open(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            // Commits never run a checkpoint themselves (its fsync stalled
            // the commit, and every ack behind it, by hundreds of ms);
            // `checkpoint` runs in the background instead.
            .pragma("wal_autocheckpoint", "0");
        Self::with_options(options).await
    }

    /// Copies committed WAL pages into the database file without blocking
    /// writers or readers. Called every second by a background task.
    pub async fn checkpoint(&self) -> Result<()> {
        sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// An in-memory database, for tests.
    pub async fn in_memory() -> Result<Self> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?;
        // One connection: every connection to :memory: is its own database.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool })
    }

    async fn with_options(options: SqliteConnectOptions) -> Result<Self> {
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool })
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Records a host as it introduces itself; keeps its first-seen time.
    pub async fn upsert_host(&self, host: &HostInfo, now_ms: TimestampMs) -> Result<()> {
        let groups =
            serde_json::to_string(&host.worker_groups).map_err(|e| StoreError::Corrupt {
                table: "hosts",
                reason: e.to_string(),
            })?;
        sqlx::query(
            "INSERT INTO hosts (host_id, hostname, os, kernel, cpu_count, memory_total_bytes,
                agent_version, interval_ms, worker_groups, first_seen_ms, last_seen_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (host_id) DO UPDATE SET
                hostname = excluded.hostname, os = excluded.os, kernel = excluded.kernel,
                cpu_count = excluded.cpu_count, memory_total_bytes = excluded.memory_total_bytes,
                agent_version = excluded.agent_version, interval_ms = excluded.interval_ms,
                worker_groups = excluded.worker_groups,
                last_seen_ms = MAX(hosts.last_seen_ms, excluded.last_seen_ms)",
        )
        .bind(&host.host_id)
        .bind(&host.hostname)
        .bind(&host.os)
        .bind(&host.kernel)
        .bind(host.cpu_count)
        .bind(to_i64(host.memory_total_bytes))
        .bind(&host.agent_version)
        .bind(host.interval_ms)
        .bind(groups)
        .bind(now_ms)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stores many agents' batches in one transaction. Returns, per batch and
    /// sample, whether the sample was new: a sample whose (host, timestamp)
    /// is already stored is skipped whole, so a resent batch stores nothing twice.
    pub async fn write_batches(&self, batches: &[HostBatch]) -> Result<Vec<Vec<bool>>> {
        let mut tx = self.pool.begin().await?;
        let mut stored = Vec::with_capacity(batches.len());
        for batch in batches {
            let mut new = Vec::with_capacity(batch.samples.len());
            let mut newest = None;
            for sample in &batch.samples {
                new.push(insert_sample(&mut tx, &batch.host_id, sample).await?);
                newest = newest.max(Some(sample.timestamp_ms));
            }
            if let Some(ts) = newest {
                sqlx::query(
                    "UPDATE hosts SET last_seen_ms = MAX(last_seen_ms, ?) WHERE host_id = ?",
                )
                .bind(ts)
                .bind(&batch.host_id)
                .execute(&mut *tx)
                .await?;
            }
            stored.push(new);
        }
        tx.commit().await?;
        Ok(stored)
    }

    pub async fn hosts(&self) -> Result<Vec<HostRecord>> {
        let rows = sqlx::query("SELECT * FROM hosts ORDER BY host_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(host_from_row).collect()
    }

    pub async fn host(&self, host_id: &str) -> Result<Option<HostRecord>> {
        let row = sqlx::query("SELECT * FROM hosts WHERE host_id = ?")
            .bind(host_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(host_from_row).transpose()
    }

    /// The newest sample of every host, or of one.
    pub async fn current(&self, host_id: Option<&str>) -> Result<Vec<CurrentSample>> {
        let rows = sqlx::query(
            "SELECT s.* FROM host_samples s
             JOIN (SELECT host_id, MAX(ts_ms) AS ts_ms FROM host_samples
                   WHERE ?1 IS NULL OR host_id = ?1 GROUP BY host_id) newest
             ON s.host_id = newest.host_id AND s.ts_ms = newest.ts_ms
             ORDER BY s.host_id",
        )
        .bind(host_id)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let host_id: String = row.try_get("host_id")?;
            let ts: i64 = row.try_get("ts_ms")?;
            let filesystems = self.filesystems(&host_id, ts).await?;
            out.push(current_from_row(row, filesystems)?);
        }
        Ok(out)
    }

    async fn filesystems(&self, host_id: &str, ts: TimestampMs) -> Result<Vec<Filesystem>> {
        let rows = sqlx::query(
            "SELECT mount_point, fs_type, device, total_bytes, available_bytes FROM fs_samples
             WHERE host_id = ? AND ts_ms = ? ORDER BY mount_point",
        )
        .bind(host_id)
        .bind(ts)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Filesystem {
                    mount_point: r.try_get("mount_point")?,
                    fs_type: r.try_get("fs_type")?,
                    device: r.try_get("device")?,
                    total_bytes: to_u64(r.try_get("total_bytes")?),
                    available_bytes: to_u64(r.try_get("available_bytes")?),
                    used_bytes: 0,
                })
                .map(|fs: Filesystem| Filesystem {
                    // The schema keeps no `used_bytes`: total − available
                    // is the nearest figure it holds.
                    used_bytes: fs.total_bytes.saturating_sub(fs.available_bytes),
                    ..fs
                })
            })
            .collect()
    }

    /// The worker groups of a host's newest sample, with their workers.
    /// `None` when the host has sent no sample yet.
    pub async fn worker_groups(
        &self,
        host_id: &str,
    ) -> Result<Option<(TimestampMs, Vec<GroupRecord>)>> {
        let ts: Option<i64> =
            sqlx::query_scalar("SELECT MAX(ts_ms) FROM host_samples WHERE host_id = ?")
                .bind(host_id)
                .fetch_one(&self.pool)
                .await?;
        let Some(ts) = ts else { return Ok(None) };
        let groups = sqlx::query(
            "SELECT grp, min_alive, alive, restarts FROM group_samples
             WHERE host_id = ? AND ts_ms = ? ORDER BY grp",
        )
        .bind(host_id)
        .bind(ts)
        .fetch_all(&self.pool)
        .await?;
        let mut by_group: BTreeMap<String, GroupRecord> = BTreeMap::new();
        for row in &groups {
            let name: String = row.try_get("grp")?;
            by_group.insert(
                name.clone(),
                GroupRecord {
                    status: GroupStatus {
                        name,
                        min_alive: to_u32(row.try_get("min_alive")?),
                        alive: to_u32(row.try_get("alive")?),
                        restarts: to_u64(row.try_get("restarts")?),
                    },
                    workers: Vec::new(),
                },
            );
        }
        let workers = sqlx::query(
            "SELECT * FROM worker_samples WHERE host_id = ? AND ts_ms = ? ORDER BY grp, pid",
        )
        .bind(host_id)
        .bind(ts)
        .fetch_all(&self.pool)
        .await?;
        for row in &workers {
            let worker = worker_from_row(row)?;
            if let Some(group) = by_group.get_mut(&worker.group) {
                group.workers.push(worker);
            }
        }
        Ok(Some((ts, by_group.into_values().collect())))
    }

    /// Buckets of `step_ms` (aligned to multiples of the step since the
    /// epoch) with avg, min and max of `metric` over `[from_ms, to_ms)`.
    pub async fn history(
        &self,
        host_id: &str,
        metric: &Metric,
        from_ms: TimestampMs,
        to_ms: TimestampMs,
        step_ms: i64,
    ) -> Result<Vec<Bucket>> {
        // Column names come only from the fixed list in `history::COLUMNS`.
        let (sql, key) = match metric {
            Metric::Column(column) => (
                format!(
                    "SELECT ts_ms / ?1 AS b, AVG({column}) AS avg,
                        MIN(CAST({column} AS REAL)) AS min, MAX(CAST({column} AS REAL)) AS max,
                        COUNT(*) AS n
                     FROM host_samples WHERE host_id = ?2 AND ts_ms >= ?3 AND ts_ms < ?4
                     GROUP BY b ORDER BY b"
                ),
                None,
            ),
            Metric::Filesystem(mount) => (
                "SELECT ts_ms / ?1 AS b, AVG(used_percent) AS avg, MIN(used_percent) AS min,
                    MAX(used_percent) AS max, COUNT(*) AS n
                 FROM fs_samples WHERE host_id = ?2 AND ts_ms >= ?3 AND ts_ms < ?4
                    AND mount_point = ?5
                 GROUP BY b ORDER BY b"
                    .to_owned(),
                Some(mount.as_str()),
            ),
            Metric::GroupAlive(group) => (
                "SELECT ts_ms / ?1 AS b, AVG(alive) AS avg, MIN(CAST(alive AS REAL)) AS min,
                    MAX(CAST(alive AS REAL)) AS max, COUNT(*) AS n
                 FROM group_samples WHERE host_id = ?2 AND ts_ms >= ?3 AND ts_ms < ?4
                    AND grp = ?5
                 GROUP BY b ORDER BY b"
                    .to_owned(),
                Some(group.as_str()),
            ),
        };
        // Audited: the only interpolation is a column from `history::COLUMNS`.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(step_ms)
            .bind(host_id)
            .bind(from_ms)
            .bind(to_ms);
        if let Some(key) = key {
            query = query.bind(key);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let b: i64 = r.try_get("b")?;
                Ok(Bucket {
                    t: b * step_ms,
                    avg: r.try_get("avg")?,
                    min: r.try_get("min")?,
                    max: r.try_get("max")?,
                    count: r.try_get("n")?,
                })
            })
            .collect()
    }

    /// Deletes every sample older than `before_ms`, host by host so that
    /// each delete is a range of the primary key. Returns host rows deleted.
    pub async fn prune(&self, before_ms: TimestampMs) -> Result<u64> {
        let hosts: Vec<String> = sqlx::query_scalar("SELECT host_id FROM hosts")
            .fetch_all(&self.pool)
            .await?;
        let mut deleted = 0;
        for host in hosts {
            let mut tx = self.pool.begin().await?;
            for sql in [
                "DELETE FROM fs_samples WHERE host_id = ? AND ts_ms < ?",
                "DELETE FROM worker_samples WHERE host_id = ? AND ts_ms < ?",
                "DELETE FROM group_samples WHERE host_id = ? AND ts_ms < ?",
            ] {
                sqlx::query(sql)
                    .bind(&host)
                    .bind(before_ms)
                    .execute(&mut *tx)
                    .await?;
            }
            deleted += sqlx::query("DELETE FROM host_samples WHERE host_id = ? AND ts_ms < ?")
                .bind(&host)
                .bind(before_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
        }
        Ok(deleted)
    }

    /// The underlying pool, for the parts of the aggregator that keep their
    /// own tables (alert history).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// Inserts one sample; false when (host, timestamp) was already stored.
async fn insert_sample(
    tx: &mut Transaction<'_, Sqlite>,
    host_id: &str,
    sample: &Sample,
) -> Result<bool> {
    let s = &sample.system;
    let ts = sample.timestamp_ms;
    let per_core = serde_json::to_string(&s.cpu_per_core).map_err(|e| StoreError::Corrupt {
        table: "host_samples",
        reason: e.to_string(),
    })?;
    let inserted = sqlx::query(
        "INSERT OR IGNORE INTO host_samples (host_id, ts_ms, cpu_percent, cpu_per_core, load1,
            load5, load15, memory_total_bytes, memory_used_bytes, memory_available_bytes,
            memory_percent, swap_total_bytes, swap_used_bytes, swap_percent,
            disk_used_percent_max, disk_read_bytes_per_sec, disk_write_bytes_per_sec,
            net_rx_bytes_per_sec, net_tx_bytes_per_sec, uptime_secs, process_count)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(host_id)
    .bind(ts)
    .bind(s.cpu_percent)
    .bind(per_core)
    .bind(s.load1)
    .bind(s.load5)
    .bind(s.load15)
    .bind(to_i64(s.memory_total_bytes))
    .bind(to_i64(s.memory_used_bytes))
    .bind(to_i64(s.memory_available_bytes))
    .bind(s.memory_percent())
    .bind(to_i64(s.swap_total_bytes))
    .bind(to_i64(s.swap_used_bytes))
    .bind(s.swap_percent())
    .bind(super::fullest_filesystem(&s.filesystems))
    .bind(s.disk_read_bytes_per_sec)
    .bind(s.disk_write_bytes_per_sec)
    .bind(s.net_rx_bytes_per_sec)
    .bind(s.net_tx_bytes_per_sec)
    .bind(to_i64(s.uptime_secs))
    .bind(s.process_count)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1;
    if !inserted {
        return Ok(false);
    }
    for fs in &s.filesystems {
        sqlx::query(
            "INSERT OR IGNORE INTO fs_samples (host_id, ts_ms, mount_point, fs_type, device,
                total_bytes, available_bytes, used_percent) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(host_id)
        .bind(ts)
        .bind(&fs.mount_point)
        .bind(&fs.fs_type)
        .bind(&fs.device)
        .bind(to_i64(fs.total_bytes))
        .bind(to_i64(fs.available_bytes))
        .bind(fs.used_percent())
        .execute(&mut **tx)
        .await?;
    }
    for w in &sample.workers {
        sqlx::query(
            "INSERT OR IGNORE INTO worker_samples (host_id, ts_ms, pid, grp, name, cmdline, state,
                cpu_percent, rss_bytes, threads, start_time_secs)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(host_id)
        .bind(ts)
        .bind(w.pid)
        .bind(&w.group)
        .bind(&w.name)
        .bind(&w.cmdline)
        .bind(&w.state)
        .bind(w.cpu_percent)
        .bind(to_i64(w.rss_bytes))
        .bind(w.threads)
        .bind(w.start_time_secs)
        .execute(&mut **tx)
        .await?;
    }
    for g in &sample.groups {
        sqlx::query(
            "INSERT OR IGNORE INTO group_samples (host_id, ts_ms, grp, min_alive, alive, restarts)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(host_id)
        .bind(ts)
        .bind(&g.name)
        .bind(g.min_alive)
        .bind(g.alive)
        .bind(to_i64(g.restarts))
        .execute(&mut **tx)
        .await?;
    }
    Ok(true)
}

fn host_from_row(row: &SqliteRow) -> Result<HostRecord> {
    let groups: String = row.try_get("worker_groups")?;
    let worker_groups: Vec<WorkerGroupRow> =
        serde_json::from_str(&groups).map_err(|e| StoreError::Corrupt {
            table: "hosts",
            reason: format!("worker_groups: {e}"),
        })?;
    Ok(HostRecord {
        info: HostInfo {
            host_id: row.try_get("host_id")?,
            hostname: row.try_get("hostname")?,
            os: row.try_get("os")?,
            kernel: row.try_get("kernel")?,
            cpu_count: to_u32(row.try_get("cpu_count")?),
            memory_total_bytes: to_u64(row.try_get("memory_total_bytes")?),
            agent_version: row.try_get("agent_version")?,
            interval_ms: to_u32(row.try_get("interval_ms")?),
            worker_groups: worker_groups
                .into_iter()
                .map(|g| WorkerGroup {
                    name: g.name,
                    min_alive: g.min_alive,
                })
                .collect(),
        },
        first_seen_ms: row.try_get("first_seen_ms")?,
        last_seen_ms: row.try_get("last_seen_ms")?,
    })
}

#[derive(serde::Deserialize)]
struct WorkerGroupRow {
    name: String,
    min_alive: u32,
}

fn current_from_row(row: &SqliteRow, filesystems: Vec<Filesystem>) -> Result<CurrentSample> {
    let per_core: String = row.try_get("cpu_per_core")?;
    let cpu_per_core: Vec<f64> =
        serde_json::from_str(&per_core).map_err(|e| StoreError::Corrupt {
            table: "host_samples",
            reason: format!("cpu_per_core: {e}"),
        })?;
    Ok(CurrentSample {
        host_id: row.try_get("host_id")?,
        timestamp_ms: row.try_get("ts_ms")?,
        memory_percent: row.try_get("memory_percent")?,
        swap_percent: row.try_get("swap_percent")?,
        system: SystemMetrics {
            cpu_percent: row.try_get("cpu_percent")?,
            cpu_per_core,
            // Not in the schema (yet): read back as 0 and none.
            cpu_iowait_percent: 0.0,
            cpu_steal_percent: 0.0,
            interfaces: Vec::new(),
            load1: row.try_get("load1")?,
            load5: row.try_get("load5")?,
            load15: row.try_get("load15")?,
            memory_total_bytes: to_u64(row.try_get("memory_total_bytes")?),
            memory_used_bytes: to_u64(row.try_get("memory_used_bytes")?),
            memory_available_bytes: to_u64(row.try_get("memory_available_bytes")?),
            swap_total_bytes: to_u64(row.try_get("swap_total_bytes")?),
            swap_used_bytes: to_u64(row.try_get("swap_used_bytes")?),
            filesystems,
            disk_read_bytes_per_sec: row.try_get("disk_read_bytes_per_sec")?,
            disk_write_bytes_per_sec: row.try_get("disk_write_bytes_per_sec")?,
            net_rx_bytes_per_sec: row.try_get("net_rx_bytes_per_sec")?,
            net_tx_bytes_per_sec: row.try_get("net_tx_bytes_per_sec")?,
            uptime_secs: to_u64(row.try_get("uptime_secs")?),
            process_count: to_u32(row.try_get("process_count")?),
        },
    })
}

fn worker_from_row(row: &SqliteRow) -> Result<Worker> {
    Ok(Worker {
        group: row.try_get("grp")?,
        pid: to_u32(row.try_get("pid")?),
        name: row.try_get("name")?,
        cmdline: row.try_get("cmdline")?,
        state: row.try_get("state")?,
        cpu_percent: row.try_get("cpu_percent")?,
        rss_bytes: to_u64(row.try_get("rss_bytes")?),
        threads: to_u32(row.try_get("threads")?),
        start_time_secs: row.try_get("start_time_secs")?,
    })
}

/// SQLite integers are i64; byte counts beyond i64::MAX are clamped.
fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_u32(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{GroupStatus, Worker};

    fn host(id: &str) -> HostInfo {
        HostInfo {
            host_id: id.to_owned(),
            hostname: id.to_owned(),
            os: String::new(),
            kernel: String::new(),
            cpu_count: 1,
            memory_total_bytes: 100,
            agent_version: "t".to_owned(),
            interval_ms: 1000,
            worker_groups: vec![WorkerGroup {
                name: "g".to_owned(),
                min_alive: 1,
            }],
        }
    }

    fn sample(ts: i64, cpu: f64) -> Sample {
        Sample {
            timestamp_ms: ts,
            system: SystemMetrics {
                cpu_percent: cpu,
                cpu_per_core: vec![cpu],
                cpu_iowait_percent: 0.0,
                cpu_steal_percent: 0.0,
                interfaces: Vec::new(),
                load1: 0.0,
                load5: 0.0,
                load15: 0.0,
                memory_total_bytes: 100,
                memory_used_bytes: 50,
                memory_available_bytes: 50,
                swap_total_bytes: 0,
                swap_used_bytes: 0,
                filesystems: vec![Filesystem {
                    mount_point: "/".to_owned(),
                    fs_type: "ext4".to_owned(),
                    device: "d".to_owned(),
                    total_bytes: 10,
                    available_bytes: 1,
                    used_bytes: 9,
                }],
                disk_read_bytes_per_sec: 0.0,
                disk_write_bytes_per_sec: 0.0,
                net_rx_bytes_per_sec: 0.0,
                net_tx_bytes_per_sec: 0.0,
                uptime_secs: 1,
                process_count: 1,
            },
            workers: vec![Worker {
                group: "g".to_owned(),
                pid: 1,
                name: "w".to_owned(),
                cmdline: "w".to_owned(),
                state: "running".to_owned(),
                cpu_percent: 0.0,
                rss_bytes: 1,
                threads: 1,
                start_time_secs: 0,
            }],
            groups: vec![GroupStatus {
                name: "g".to_owned(),
                min_alive: 1,
                alive: 1,
                restarts: 0,
            }],
        }
    }

    async fn count(store: &SqliteStore, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(store.pool())
            .await
            .expect("count")
    }

    #[tokio::test]
    async fn resent_samples_are_stored_once() {
        let store = SqliteStore::in_memory().await.expect("store");
        store.upsert_host(&host("a"), 1).await.expect("host");
        let batch = HostBatch {
            host_id: "a".to_owned(),
            samples: vec![sample(1000, 1.0), sample(2000, 2.0)],
        };
        let first = store
            .write_batches(std::slice::from_ref(&batch))
            .await
            .expect("write");
        assert_eq!(first, vec![vec![true, true]]);
        let mut again = batch.clone();
        again.samples.push(sample(3000, 3.0));
        let second = store.write_batches(&[again]).await.expect("write");
        assert_eq!(second, vec![vec![false, false, true]]);
        for table in [
            "host_samples",
            "fs_samples",
            "worker_samples",
            "group_samples",
        ] {
            assert_eq!(count(&store, table).await, 3, "{table}");
        }
        let hosts = store.hosts().await.expect("hosts");
        assert_eq!(hosts[0].last_seen_ms, 3000);
        let current = store.current(Some("a")).await.expect("current");
        assert_eq!(current[0].timestamp_ms, 3000);
        assert_eq!(current[0].system.filesystems[0].used_bytes, 9);
        assert_eq!(current[0].memory_percent, 50.0);
    }

    #[tokio::test]
    async fn prune_deletes_only_what_is_past_retention() {
        let store = SqliteStore::in_memory().await.expect("store");
        store.upsert_host(&host("a"), 1).await.expect("host");
        let batch = HostBatch {
            host_id: "a".to_owned(),
            samples: (1..=10).map(|i| sample(i * 1000, 1.0)).collect(),
        };
        store.write_batches(&[batch]).await.expect("write");
        assert_eq!(store.prune(4000).await.expect("prune"), 3);
        for table in [
            "host_samples",
            "fs_samples",
            "worker_samples",
            "group_samples",
        ] {
            assert_eq!(count(&store, table).await, 7, "{table}");
        }
        let (ts, groups) = store
            .worker_groups("a")
            .await
            .expect("groups")
            .expect("some");
        assert_eq!(ts, 10_000);
        assert_eq!(groups[0].workers.len(), 1);
    }
}
