//! The SQLite store: one file in WAL mode, migrations embedded in the
//! binary.
//!
//! - [`samples`] — hosts and samples: the raw tier's chunks and journal,
//!   the rollup tiers, history and retention.
//! - [`checkpoint`] — the background task that checkpoints the WAL.
//! - [`inspect`] — a host's stored samples read from a database file.
//! - [`legacy`] — moves samples stored by the first schema (a row per
//!   value) into chunks on the first start after an upgrade.
//! - [`probe`] — the write probe behind `/health`.
//!
//! Two pools: `writer`, one connection that only the sample writer uses,
//! so that readers never hold up a commit (nor a commit the readers); and
//! `pool` for everything else.

mod agent_tokens;
mod alerts;
mod api_tokens;
pub mod checkpoint;
mod gaps;
pub mod inspect;
mod legacy;
mod probe;
mod samples;
mod secrets;
mod sessions;
#[cfg(test)]
mod tests;
mod users;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::raw::Raw;
use super::rollup::Retention;
use super::{Result, StoreError};

/// How much an acknowledged sample must survive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// Every commit is on disk before it is acknowledged: survives a power
    /// loss (`synchronous = FULL`).
    #[default]
    Full,
    /// Commits survive the aggregator being killed but not a power loss
    /// (`synchronous = NORMAL`): faster on slow disks.
    Normal,
}

/// The write-ahead log is truncated by the writer between two flushes once
/// it is larger than this, so it stays bounded under any load.
pub const WAL_LIMIT_BYTES: u64 = 64 << 20;

/// How the store keeps what it is given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SqliteOptions {
    pub durability: Durability,
    pub retention: Retention,
}

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    writer: SqlitePool,
    /// The database file, for the WAL's size; `None` in memory.
    path: Option<PathBuf>,
    raw: Arc<Mutex<Raw>>,
    retention: Retention,
    /// Why the sample writer's last flush failed; `None` once one succeeds.
    flush_failure: Arc<Mutex<Option<String>>>,
    /// The write probe's last answer, and one probe at a time.
    probe: Arc<tokio::sync::Mutex<probe::ProbeState>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and migrates it.
    pub async fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, SqliteOptions::default()).await
    }

    pub async fn open_with(path: &Path, options: SqliteOptions) -> Result<Self> {
        let SqliteOptions {
            durability,
            retention,
        } = options;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match durability {
                Durability::Full => SqliteSynchronous::Full,
                Durability::Normal => SqliteSynchronous::Normal,
            })
            .busy_timeout(Duration::from_secs(10))
            // Commits never run a checkpoint themselves (its fsync stalled
            // the commit, and every ack behind it); `checkpoint` runs in the
            // background and the writer truncates the log past a limit.
            .pragma("wal_autocheckpoint", "0");
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        Self::start(pool, writer, Some(path.to_owned()), retention).await
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
        Self::start(pool.clone(), pool, None, Retention::default()).await
    }

    async fn start(
        pool: SqlitePool,
        writer: SqlitePool,
        path: Option<PathBuf>,
        retention: Retention,
    ) -> Result<Self> {
        let store = Self {
            pool,
            writer,
            path,
            raw: Arc::new(Mutex::new(Raw::default())),
            retention,
            flush_failure: Arc::default(),
            probe: Arc::default(),
        };
        legacy::convert(&store).await?;
        store.reload().await?;
        Ok(store)
    }

    /// The raw tier's state. Never held across an await.
    fn raw(&self) -> MutexGuard<'_, Raw> {
        // A panic while holding the lock leaves the state as consistent as
        // any single step; the next failed write reloads it anyway.
        self.raw.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Copies committed WAL pages into the database file without blocking
    /// writers or readers. Called every second by a background task.
    pub async fn checkpoint(&self) -> Result<()> {
        sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Size of the write-ahead log on disk, 0 in memory.
    pub fn wal_bytes(&self) -> u64 {
        self.path
            .as_ref()
            .and_then(|p| {
                let mut wal = p.as_os_str().to_owned();
                wal.push("-wal");
                std::fs::metadata(wal).ok()
            })
            .map_or(0, |m| m.len())
    }

    /// The underlying pool, for the query families in this module's
    /// children (users, tokens, alerts); nothing outside the store holds it.
    fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes both pools, checkpointing the log into the database file.
    pub async fn close(&self) {
        let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.writer)
            .await;
        self.writer.close().await;
        self.pool.close().await;
    }
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

fn corrupt(table: &'static str, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        table,
        reason: reason.to_string(),
    }
}
