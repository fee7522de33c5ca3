//! Hosts and samples in SQLite: the [`SampleStore`] of the SQLite backend.
//!
//! Tables (migration 0005): `hosts` with an integer key `hk`; `entities`,
//! each host's filesystems, groups and worker processes stored once;
//! `journal`, one row per flush of the samples still in open chunks;
//! `chunks`, closed chunks of compressed columns; `rollup_1m`, `rollup_1h`,
//! one row per host and bucket. What goes where is decided by `store::raw`;
//! this file only reads and writes rows.

use std::collections::{BTreeMap, HashMap, HashSet};

use async_trait::async_trait;
use sqlx::{Connection, QueryBuilder, Row as _, Sqlite, SqliteConnection};

use super::{SqliteStore, WAL_LIMIT_BYTES, corrupt, to_i64, to_u32, to_u64};
use crate::model::{HostInfo, TimestampMs, WorkerGroup, now_ms};
use crate::store::chunk::{self, Row};
use crate::store::history_query::choose_tier;
use crate::store::raw::{HostRaw, Plan, Raw, Stored};
use crate::store::rollup::{self, Agg, Tier};
use crate::store::samples::{
    Bucket, CurrentSample, GroupRecord, HistoryAnswer, HistoryQuery, HostBatch, HostRecord, Pruned,
    SampleStore, groups_of,
};
use crate::store::series::{self, Entity, Key};
use crate::store::{Result, StoreError};

/// Rows per multi-row insert (well under SQLite's bound on parameters).
const ROWS_PER_INSERT: usize = 500;
/// Hosts pruned per transaction.
const HOSTS_PER_PRUNE: usize = 200;

fn rollup_table(tier: Tier) -> &'static str {
    match tier {
        Tier::Minute => "rollup_1m",
        _ => "rollup_1h",
    }
}

impl SqliteStore {
    /// Rebuilds the raw tier's memory from the database: hosts, their
    /// entities, the journal past each host's mark, each host's newest
    /// sample. Run at start and after a failed write.
    pub(super) async fn reload(&self) -> Result<()> {
        let mut conn = self.writer.acquire().await?;
        let hosts =
            sqlx::query("SELECT host_id, hk, interval_ms, journal_mark, chunked_to_ms FROM hosts")
                .fetch_all(&mut *conn)
                .await?;
        let mut raw = Raw::new(1);
        let mut marks = HashMap::new();
        let mut max_mark = 0u64;
        for row in &hosts {
            let hk: i64 = row.try_get("hk")?;
            let mark = to_u64(row.try_get("journal_mark")?);
            max_mark = max_mark.max(mark);
            marks.insert(hk, mark);
            let mut host = HostRaw::new(hk, to_u32(row.try_get("interval_ms")?));
            host.chunked_to_ms = row.try_get("chunked_to_ms")?;
            raw.insert_host(row.try_get("host_id")?, host);
        }
        raw.next_journal = max_mark + 1;
        let mut by_hk: HashMap<i64, String> =
            raw.hosts.iter().map(|(id, h)| (h.hk, id.clone())).collect();
        let entities = sqlx::query("SELECT hk, sid, entity FROM entities ORDER BY hk, sid")
            .fetch_all(&mut *conn)
            .await?;
        for row in &entities {
            let hk: i64 = row.try_get("hk")?;
            let sid = to_u32(row.try_get("sid")?);
            let text: String = row.try_get("entity")?;
            let entity: Entity = serde_json::from_str(&text).map_err(|e| corrupt("entities", e))?;
            if let Some(host) = by_hk.get(&hk).and_then(|id| raw.hosts.get_mut(id)) {
                host.dict
                    .restore(sid, entity)
                    .map_err(|e| corrupt("entities", e))?;
            }
        }
        let journal = sqlx::query("SELECT id, data FROM journal ORDER BY id")
            .fetch_all(&mut *conn)
            .await?;
        for row in &journal {
            let id = to_u64(row.try_get("id")?);
            let data: Vec<u8> = row.try_get("data")?;
            if let Err(e) = raw.replay(id, &data, &marks) {
                // A torn row loses what it held, not what follows it.
                tracing::error!(error = %e, "journal row unreadable; skipped");
            }
        }
        for (hk, id) in by_hk.drain() {
            let Some(host) = raw.hosts.get_mut(&id) else {
                continue;
            };
            if host.newest.is_some() {
                continue;
            }
            let last: Option<Vec<u8>> = sqlx::query_scalar(
                "SELECT data FROM chunks WHERE hk = ? ORDER BY end_ms DESC LIMIT 1",
            )
            .bind(hk)
            .fetch_optional(&mut *conn)
            .await?;
            if let Some(data) = last {
                let rows = chunk::decode(&data).map_err(|e| corrupt("chunks", e))?;
                host.newest = rows.into_iter().next_back();
            }
        }
        tracing::debug!(
            hosts = raw.hosts.len(),
            journal_rows = journal.len(),
            "sample store loaded"
        );
        *self.raw() = raw;
        Ok(())
    }

    /// Timestamps already stored in chunks within each host's late range.
    async fn stored_in(
        &self,
        conn: &mut SqliteConnection,
        ranges: &HashMap<i64, (TimestampMs, TimestampMs)>,
    ) -> Result<Stored> {
        let mut out = Stored::new();
        for (hk, (lo, hi)) in ranges {
            let blobs: Vec<Vec<u8>> = sqlx::query_scalar(
                "SELECT data FROM chunks WHERE hk = ? AND end_ms >= ? AND start_ms <= ?",
            )
            .bind(hk)
            .bind(lo)
            .bind(hi)
            .fetch_all(&mut *conn)
            .await?;
            let set: &mut HashSet<TimestampMs> = out.entry(*hk).or_default();
            for blob in blobs {
                for row in chunk::decode(&blob).map_err(|e| corrupt("chunks", e))? {
                    set.insert(row.ts);
                }
            }
        }
        Ok(out)
    }

    /// Plans and commits one flush. On any error the connection is dropped
    /// (so no transaction stays open on it) and the memory state is
    /// rebuilt from what was committed.
    async fn flush(&self, batches: &[HostBatch], now: TimestampMs) -> Result<Vec<Vec<bool>>> {
        let refs: Vec<(&str, &[crate::model::Sample])> = batches
            .iter()
            .map(|b| (b.host_id.as_str(), b.samples.as_slice()))
            .collect();
        let mut conn = self.writer.acquire().await?;
        let result = async {
            let late = self.raw().late_ranges(&refs).map_err(StoreError::from)?;
            let stored = self.stored_in(&mut conn, &late).await?;
            let plan = self
                .raw()
                .plan(&refs, &stored, now)
                .map_err(StoreError::from)?;
            if plan.is_empty() {
                // Nothing to write (upkeep while idle): no transaction, and
                // nothing learnt about whether the database takes writes.
                return Ok::<_, StoreError>((plan.stored, false));
            }
            let encoded = encode_chunks(&plan).await?;
            let mut tx = conn.begin().await?;
            write_plan(&mut tx, &plan, encoded).await?;
            tx.commit().await?;
            Ok((plan.stored, true))
        }
        .await;
        match result {
            Ok((stored, wrote)) => {
                if wrote {
                    self.note_flush(Ok(()));
                }
                if self.wal_bytes() > WAL_LIMIT_BYTES {
                    truncate_wal(&mut conn).await;
                }
                Ok(stored)
            }
            Err(e) => {
                self.note_flush(Err(e.to_string()));
                conn.close_on_drop();
                drop(conn);
                if let Err(reload) = self.reload().await {
                    tracing::error!(error = %reload, "cannot reload the sample store after a failed write");
                }
                Err(e)
            }
        }
    }

    fn newest(&self, host_id: &str) -> Option<(Row, crate::model::Sample)> {
        let raw = self.raw();
        let host = raw.hosts.get(host_id)?;
        let row = host.newest.clone()?;
        let sample = series::rebuild(row.ts, &row.values, &host.dict);
        Some((row, sample))
    }
}

impl From<crate::store::raw::RawError> for StoreError {
    fn from(e: crate::store::raw::RawError) -> Self {
        StoreError::Write(e.to_string())
    }
}

/// Chunks are deflated off the async threads: it is the CPU-heavy part.
async fn encode_chunks(plan: &Plan) -> Result<Vec<Vec<u8>>> {
    if plan.chunks.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<Vec<Row>> = plan.chunks.iter().map(|c| c.rows.clone()).collect();
    tokio::task::spawn_blocking(move || rows.iter().map(|r| chunk::encode(r)).collect())
        .await
        .map_err(|e| StoreError::Write(format!("chunk encoder failed: {e}")))
}

async fn write_plan(tx: &mut SqliteConnection, plan: &Plan, encoded: Vec<Vec<u8>>) -> Result<()> {
    for part in plan.entities.chunks(ROWS_PER_INSERT) {
        let mut q =
            QueryBuilder::<Sqlite>::new("INSERT OR IGNORE INTO entities (hk, sid, entity) ");
        let mut texts = Vec::with_capacity(part.len());
        for (_, _, entity) in part {
            texts.push(serde_json::to_string(entity).map_err(|e| corrupt("entities", e))?);
        }
        q.push_values(part.iter().zip(texts), |mut b, ((hk, sid, _), text)| {
            b.push_bind(*hk).push_bind(i64::from(*sid)).push_bind(text);
        });
        q.build().execute(&mut *tx).await?;
    }
    if let Some((id, data)) = &plan.journal {
        sqlx::query("INSERT INTO journal (id, data) VALUES (?, ?)")
            .bind(to_i64(*id))
            .bind(data.as_slice())
            .execute(&mut *tx)
            .await?;
    }
    let chunks: Vec<_> = plan.chunks.iter().zip(encoded).collect();
    for part in chunks.chunks(ROWS_PER_INSERT) {
        let mut q =
            QueryBuilder::<Sqlite>::new("INSERT INTO chunks (hk, start_ms, end_ms, n, data) ");
        q.push_values(part, |mut b, (c, data)| {
            b.push_bind(c.hk)
                .push_bind(c.start_ms)
                .push_bind(c.end_ms)
                .push_bind(c.rows.len() as i64)
                .push_bind(data.clone());
        });
        q.build().execute(&mut *tx).await?;
    }
    // Partials of the same bucket are merged before reading what is stored.
    let mut partials: BTreeMap<(Tier, i64, TimestampMs), rollup::Bucket> = BTreeMap::new();
    for (tier, hk, bucket, aggs) in &plan.rollups {
        rollup::merge(partials.entry((*tier, *hk, *bucket)).or_default(), aggs);
    }
    for ((tier, hk, bucket), mut aggs) in partials {
        let table = rollup_table(tier);
        let stored: Option<Vec<u8>> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT data FROM {table} WHERE hk = ? AND bucket_ms = ?"
        )))
        .bind(hk)
        .bind(bucket)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(stored) = stored {
            let stored = rollup::decode(&stored).map_err(|e| corrupt(table, e))?;
            rollup::merge(&mut aggs, &stored);
        }
        // Audited: `table` is one of two constant names.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {table} (hk, bucket_ms, data) VALUES (?, ?, ?)
             ON CONFLICT (hk, bucket_ms) DO UPDATE SET data = excluded.data"
        )))
        .bind(hk)
        .bind(bucket)
        .bind(rollup::encode(&aggs))
        .execute(&mut *tx)
        .await?;
    }
    for (hk, mark, chunked_to) in &plan.marks {
        sqlx::query(
            "UPDATE hosts SET journal_mark = MAX(journal_mark, ?),
                chunked_to_ms = MAX(COALESCE(chunked_to_ms, 0), ?),
                last_seen_ms = MAX(last_seen_ms, ?)
             WHERE hk = ?",
        )
        .bind(to_i64(*mark))
        .bind(chunked_to)
        .bind(chunked_to)
        .bind(hk)
        .execute(&mut *tx)
        .await?;
    }
    if plan.journal.is_some() || !plan.marks.is_empty() {
        sqlx::query("DELETE FROM journal WHERE id < ?")
            .bind(to_i64(plan.journal_keep_from))
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// Restarts the write-ahead log from its beginning so it stops growing.
/// Runs on the writer's connection between flushes, so no write is under
/// way; readers finish first (busy timeout).
async fn truncate_wal(conn: &mut SqliteConnection) {
    match sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .fetch_one(&mut *conn)
        .await
    {
        Ok(row) => {
            let busy: i64 = row.try_get(0).unwrap_or(1);
            if busy != 0 {
                tracing::warn!("WAL checkpoint could not complete (readers busy); will retry");
            } else {
                tracing::debug!("WAL truncated");
            }
        }
        Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; will retry"),
    }
}

fn host_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<HostRecord> {
    let groups: String = row.try_get("worker_groups")?;
    let worker_groups: Vec<WorkerGroupRow> = serde_json::from_str(&groups)
        .map_err(|e| corrupt("hosts", format!("worker_groups: {e}")))?;
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

/// Folds aggregates into the answer's buckets.
#[derive(Default)]
struct Answer {
    buckets: BTreeMap<TimestampMs, Agg>,
}

impl Answer {
    fn add(&mut self, t: TimestampMs, agg: &Agg) {
        self.buckets
            .entry(t)
            .and_modify(|a| a.add(agg))
            .or_insert(*agg);
    }

    fn add_rows(&mut self, rows: &[Row], keys: &[Key], derived: bool, step: i64) {
        for row in rows {
            let values = if derived {
                series::with_derived(&row.values)
            } else {
                row.values.clone()
            };
            for key in keys {
                if let Ok(i) = values.binary_search_by_key(key, |(k, _)| *k) {
                    self.add(rollup::bucket_of(row.ts, step), &Agg::of(values[i].1));
                }
            }
        }
    }

    fn finish(self, field: u16) -> Vec<Bucket> {
        self.buckets
            .into_iter()
            .filter(|(_, a)| a.count > 0)
            .map(|(t, a)| Bucket {
                t,
                avg: series::value(field, a.sum as f64 / a.count as f64),
                min: series::value(field, a.min as f64),
                max: series::value(field, a.max as f64),
                count: i64::try_from(a.count).unwrap_or(i64::MAX),
            })
            .collect()
    }
}

#[async_trait]
impl SampleStore for SqliteStore {
    async fn upsert_host(&self, host: &HostInfo, now_ms: TimestampMs) -> Result<()> {
        let groups = serde_json::to_string(&host.worker_groups).map_err(|e| corrupt("hosts", e))?;
        let row = sqlx::query(
            "INSERT INTO hosts (host_id, hostname, os, kernel, cpu_count, memory_total_bytes,
                agent_version, interval_ms, worker_groups, first_seen_ms, last_seen_ms, hk)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
                (SELECT COALESCE(MAX(hk), 0) + 1 FROM hosts))
             ON CONFLICT (host_id) DO UPDATE SET
                hostname = excluded.hostname, os = excluded.os, kernel = excluded.kernel,
                cpu_count = excluded.cpu_count, memory_total_bytes = excluded.memory_total_bytes,
                agent_version = excluded.agent_version, interval_ms = excluded.interval_ms,
                worker_groups = excluded.worker_groups,
                last_seen_ms = MAX(hosts.last_seen_ms, excluded.last_seen_ms)
             RETURNING hk, chunked_to_ms",
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
        .fetch_one(&self.pool)
        .await?;
        let hk: i64 = row.try_get("hk")?;
        let chunked_to: Option<i64> = row.try_get("chunked_to_ms")?;
        let mut raw = self.raw();
        match raw.hosts.get_mut(&host.host_id) {
            Some(known) => known.interval_ms = host.interval_ms,
            None => {
                let mut new = HostRaw::new(hk, host.interval_ms);
                new.chunked_to_ms = chunked_to;
                raw.insert_host(host.host_id.clone(), new);
            }
        }
        Ok(())
    }

    async fn write_batches(&self, batches: &[HostBatch]) -> Result<Vec<Vec<bool>>> {
        self.flush(batches, now_ms()).await
    }

    async fn maintain(&self, now_ms: TimestampMs) -> Result<()> {
        self.flush(&[], now_ms).await.map(|_| ())
    }

    async fn hosts(&self) -> Result<Vec<HostRecord>> {
        let rows = sqlx::query("SELECT * FROM hosts ORDER BY host_id")
            .fetch_all(&self.pool)
            .await?;
        let mut hosts = rows.iter().map(host_from_row).collect::<Result<Vec<_>>>()?;
        let raw = self.raw();
        for h in &mut hosts {
            if let Some(newest) = raw
                .hosts
                .get(&h.info.host_id)
                .and_then(|r| r.newest.as_ref())
            {
                h.last_seen_ms = h.last_seen_ms.max(newest.ts);
            }
        }
        Ok(hosts)
    }

    async fn host(&self, host_id: &str) -> Result<Option<HostRecord>> {
        let row = sqlx::query("SELECT * FROM hosts WHERE host_id = ?")
            .bind(host_id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(mut host) = row.as_ref().map(host_from_row).transpose()? else {
            return Ok(None);
        };
        if let Some((row, _)) = self.newest(host_id) {
            host.last_seen_ms = host.last_seen_ms.max(row.ts);
        }
        Ok(Some(host))
    }

    async fn current(&self, host_id: Option<&str>) -> Result<Vec<CurrentSample>> {
        let ids: Vec<String> = match host_id {
            Some(id) => vec![id.to_owned()],
            None => {
                let mut ids: Vec<String> = self.raw().hosts.keys().cloned().collect();
                ids.sort();
                ids
            }
        };
        Ok(ids
            .iter()
            .filter_map(|id| self.newest(id).map(|(_, s)| CurrentSample::of(id, &s)))
            .collect())
    }

    async fn worker_groups(
        &self,
        host_id: &str,
    ) -> Result<Option<(TimestampMs, Vec<GroupRecord>)>> {
        Ok(self
            .newest(host_id)
            .map(|(row, sample)| (row.ts, groups_of(&sample))))
    }

    async fn history(&self, q: &HistoryQuery<'_>) -> Result<HistoryAnswer> {
        let now = now_ms();
        let tier = q
            .tier
            .unwrap_or_else(|| choose_tier(q.from_ms, q.step_ms, now, &self.retention));
        if tier != Tier::Raw && q.step_ms % tier.step_ms() != 0 {
            return Err(StoreError::Query(format!(
                "the {} tier needs a step that is a multiple of {} s",
                tier.name(),
                tier.step_ms() / 1000
            )));
        }
        let (hk, keys, open) = {
            let raw = self.raw();
            let Some(host) = raw.hosts.get(q.host_id) else {
                return Ok(HistoryAnswer {
                    tier,
                    buckets: Vec::new(),
                });
            };
            (
                host.hk,
                q.metric.keys(&host.dict),
                raw.open_rows(q.host_id, q.from_ms, q.to_ms),
            )
        };
        let mut keys = keys;
        keys.sort_unstable();
        let Some(first) = keys.first() else {
            return Ok(HistoryAnswer {
                tier,
                buckets: Vec::new(),
            });
        };
        let field = first.field;
        let derived = q.metric.is_derived();
        let mut answer = Answer::default();
        match tier {
            Tier::Raw => {
                let blobs: Vec<Vec<u8>> = sqlx::query_scalar(
                    "SELECT data FROM chunks WHERE hk = ? AND end_ms >= ? AND start_ms < ?",
                )
                .bind(hk)
                .bind(q.from_ms)
                .bind(q.to_ms)
                .fetch_all(&self.pool)
                .await?;
                for blob in blobs {
                    let rows = chunk::decode(&blob).map_err(|e| corrupt("chunks", e))?;
                    let rows: Vec<Row> = rows
                        .into_iter()
                        .filter(|r| r.ts >= q.from_ms && r.ts < q.to_ms)
                        .collect();
                    answer.add_rows(&rows, &keys, derived, q.step_ms);
                }
            }
            Tier::Minute | Tier::Hour => {
                let table = rollup_table(tier);
                // Audited: `table` is one of two constant names.
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT bucket_ms, data FROM {table}
                     WHERE hk = ? AND bucket_ms >= ? AND bucket_ms < ? ORDER BY bucket_ms"
                )))
                .bind(hk)
                .bind(rollup::bucket_of(q.from_ms, tier.step_ms()))
                .bind(q.to_ms)
                .fetch_all(&self.pool)
                .await?;
                for row in &rows {
                    let bucket_ms: i64 = row.try_get("bucket_ms")?;
                    let data: Vec<u8> = row.try_get("data")?;
                    for (_, agg) in rollup::find(&data, &keys).map_err(|e| corrupt(table, e))? {
                        answer.add(rollup::bucket_of(bucket_ms, q.step_ms), &agg);
                    }
                }
            }
        }
        // Samples not yet in a chunk are in memory.
        answer.add_rows(&open, &keys, derived, q.step_ms);
        Ok(HistoryAnswer {
            tier,
            buckets: answer.finish(field),
        })
    }

    async fn prune(&self, now_ms: TimestampMs) -> Result<Pruned> {
        let retention = &self.retention;
        let cutoff = |tier: Tier| {
            now_ms.saturating_sub(i64::try_from(retention.of(tier).as_millis()).unwrap_or(i64::MAX))
        };
        let hks: Vec<i64> = self.raw().hosts.values().map(|h| h.hk).collect();
        let mut pruned = Pruned::default();
        for part in hks.chunks(HOSTS_PER_PRUNE) {
            let mut conn = self.pool.acquire().await?;
            let mut tx = conn.begin().await?;
            for hk in part {
                pruned.chunks += sqlx::query("DELETE FROM chunks WHERE hk = ? AND end_ms < ?")
                    .bind(hk)
                    .bind(cutoff(Tier::Raw))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                for tier in Tier::ROLLUPS {
                    let table = rollup_table(tier);
                    // Audited: `table` is one of two constant names.
                    let n = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DELETE FROM {table} WHERE hk = ? AND bucket_ms < ?"
                    )))
                    .bind(hk)
                    .bind(cutoff(tier) - tier.step_ms())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    match tier {
                        Tier::Minute => pruned.minute_rows += n,
                        _ => pruned.hour_rows += n,
                    }
                }
            }
            tx.commit().await?;
        }
        Ok(pruned)
    }

    async fn probe_write(&self) -> std::result::Result<(), String> {
        self.probe().await
    }
}

/// Writes a plan made outside the writer (the upgrade from the first
/// schema) in the caller's transaction.
pub(super) async fn write_plan_for_upgrade(tx: &mut SqliteConnection, plan: &Plan) -> Result<()> {
    let encoded = encode_chunks(plan).await?;
    write_plan(tx, plan, encoded).await
}
