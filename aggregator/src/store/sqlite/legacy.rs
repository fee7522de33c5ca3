//! Upgrade from the first schema, which stored a row per value
//! (`host_samples`, `fs_samples`, `worker_samples`, `group_samples`): on
//! the first start after the upgrade every stored sample is moved into
//! chunks and rollups, host by host and hour by hour, each slice in its
//! own transaction that also deletes the rows it moved (so an interrupted
//! upgrade resumes where it stopped). The old tables are dropped at the end.

use std::collections::BTreeMap;

use sqlx::{Connection, Row as _};

use super::samples::write_plan_for_upgrade;
use super::{SqliteStore, corrupt, to_u32, to_u64};
use crate::model::{Filesystem, GroupStatus, Sample, SystemMetrics, TimestampMs, Worker};
use crate::store::Result;
use crate::store::chunk::Row;
use crate::store::raw::{self, Plan};
use crate::store::series::{self, Dictionary, Entity};

/// Samples of one host moved per transaction.
const SLICE: i64 = 3600;

pub(super) async fn convert(store: &SqliteStore) -> Result<()> {
    let mut conn = store.writer.acquire().await?;
    let exists: Option<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'host_samples'",
    )
    .fetch_optional(&mut *conn)
    .await?;
    if exists.is_none() {
        return Ok(());
    }
    let hosts = sqlx::query("SELECT host_id, hk, interval_ms FROM hosts ORDER BY hk")
        .fetch_all(&mut *conn)
        .await?;
    let mut moved = 0usize;
    for host in &hosts {
        let host_id: String = host.try_get("host_id")?;
        let hk: i64 = host.try_get("hk")?;
        let interval_ms = to_u32(host.try_get("interval_ms")?);
        let mut dict = Dictionary::default();
        let entities = sqlx::query("SELECT sid, entity FROM entities WHERE hk = ? ORDER BY sid")
            .bind(hk)
            .fetch_all(&mut *conn)
            .await?;
        for row in &entities {
            let entity: Entity = serde_json::from_str(&row.try_get::<String, _>("entity")?)
                .map_err(|e| corrupt("entities", e))?;
            dict.restore(to_u32(row.try_get("sid")?), entity)
                .map_err(|e| corrupt("entities", e))?;
        }
        loop {
            let samples = read_slice(&mut conn, &host_id).await?;
            let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
                break;
            };
            let (from, to) = (first.timestamp_ms, last.timestamp_ms);
            let mut plan = Plan::default();
            let mut windows: BTreeMap<TimestampMs, Vec<Row>> = BTreeMap::new();
            let span = raw::span_ms(interval_ms);
            for sample in &samples {
                let mut new = Vec::new();
                let values = series::flatten(sample, &mut dict, &mut new);
                plan.entities
                    .extend(new.into_iter().map(|(sid, e)| (hk, sid, e)));
                windows
                    .entry(raw::window_start(hk, span, sample.timestamp_ms))
                    .or_default()
                    .push(Row {
                        ts: sample.timestamp_ms,
                        values,
                    });
            }
            for rows in windows.into_values() {
                raw::push_chunk(&mut plan, hk, rows);
            }
            plan.marks.push((hk, 0, to));
            let mut tx = conn.begin().await?;
            write_plan_for_upgrade(&mut tx, &plan).await?;
            for table in [
                "fs_samples",
                "worker_samples",
                "group_samples",
                "host_samples",
            ] {
                // Audited: `table` is one of four constant names.
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM {table} WHERE host_id = ? AND ts_ms >= ? AND ts_ms <= ?"
                )))
                .bind(&host_id)
                .bind(from)
                .bind(to)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            moved += samples.len();
        }
    }
    let mut tx = conn.begin().await?;
    for table in [
        "fs_samples",
        "worker_samples",
        "group_samples",
        "host_samples",
    ] {
        // Audited: `table` is one of four constant names.
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE {table}")))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    tracing::info!(
        samples = moved,
        hosts = hosts.len(),
        "moved samples of the previous schema into chunks"
    );
    Ok(())
}

/// The oldest [`SLICE`] samples of a host still in the old tables.
async fn read_slice(conn: &mut sqlx::SqliteConnection, host_id: &str) -> Result<Vec<Sample>> {
    let rows = sqlx::query("SELECT * FROM host_samples WHERE host_id = ? ORDER BY ts_ms LIMIT ?")
        .bind(host_id)
        .bind(SLICE)
        .fetch_all(&mut *conn)
        .await?;
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return Ok(Vec::new());
    };
    let from: i64 = first.try_get("ts_ms")?;
    let to: i64 = last.try_get("ts_ms")?;
    let mut samples: BTreeMap<i64, Sample> = BTreeMap::new();
    for row in &rows {
        let per_core: String = row.try_get("cpu_per_core")?;
        let cpu_per_core: Vec<f64> =
            serde_json::from_str(&per_core).map_err(|e| corrupt("host_samples", e))?;
        let ts: i64 = row.try_get("ts_ms")?;
        samples.insert(
            ts,
            Sample {
                timestamp_ms: ts,
                system: SystemMetrics {
                    cpu_percent: row.try_get("cpu_percent")?,
                    cpu_per_core,
                    // The first schema kept neither; its cpu_percent is kept as it was.
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
                    filesystems: Vec::new(),
                    disk_read_bytes_per_sec: row.try_get("disk_read_bytes_per_sec")?,
                    disk_write_bytes_per_sec: row.try_get("disk_write_bytes_per_sec")?,
                    net_rx_bytes_per_sec: row.try_get("net_rx_bytes_per_sec")?,
                    net_tx_bytes_per_sec: row.try_get("net_tx_bytes_per_sec")?,
                    uptime_secs: to_u64(row.try_get("uptime_secs")?),
                    process_count: to_u32(row.try_get("process_count")?),
                },
                workers: Vec::new(),
                groups: Vec::new(),
            },
        );
    }
    let range = |sql: &'static str| {
        sqlx::query(sql)
            .bind(host_id.to_owned())
            .bind(from)
            .bind(to)
    };
    for row in range("SELECT * FROM fs_samples WHERE host_id = ? AND ts_ms BETWEEN ? AND ?")
        .fetch_all(&mut *conn)
        .await?
    {
        if let Some(s) = samples.get_mut(&row.try_get::<i64, _>("ts_ms")?) {
            let total_bytes = to_u64(row.try_get("total_bytes")?);
            let available_bytes = to_u64(row.try_get("available_bytes")?);
            s.system.filesystems.push(Filesystem {
                mount_point: row.try_get("mount_point")?,
                fs_type: row.try_get("fs_type")?,
                device: row.try_get("device")?,
                total_bytes,
                available_bytes,
                // The first schema kept no used bytes: as its agents read it.
                used_bytes: total_bytes.saturating_sub(available_bytes),
            });
        }
    }
    for row in range("SELECT * FROM worker_samples WHERE host_id = ? AND ts_ms BETWEEN ? AND ?")
        .fetch_all(&mut *conn)
        .await?
    {
        if let Some(s) = samples.get_mut(&row.try_get::<i64, _>("ts_ms")?) {
            s.workers.push(Worker {
                group: row.try_get("grp")?,
                pid: to_u32(row.try_get("pid")?),
                name: row.try_get("name")?,
                cmdline: row.try_get("cmdline")?,
                state: row.try_get("state")?,
                cpu_percent: row.try_get("cpu_percent")?,
                rss_bytes: to_u64(row.try_get("rss_bytes")?),
                threads: to_u32(row.try_get("threads")?),
                start_time_secs: row.try_get("start_time_secs")?,
            });
        }
    }
    for row in range("SELECT * FROM group_samples WHERE host_id = ? AND ts_ms BETWEEN ? AND ?")
        .fetch_all(&mut *conn)
        .await?
    {
        if let Some(s) = samples.get_mut(&row.try_get::<i64, _>("ts_ms")?) {
            s.groups.push(GroupStatus {
                name: row.try_get("grp")?,
                min_alive: to_u32(row.try_get("min_alive")?),
                alive: to_u32(row.try_get("alive")?),
                restarts: to_u64(row.try_get("restarts")?),
            });
        }
    }
    Ok(samples.into_values().collect())
}
