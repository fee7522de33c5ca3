//! Storage of hosts and samples.
//!
//! - [`sqlite`] — the SQLite store (one file, WAL mode, embedded migrations):
//!   writes, queries and retention.
//! - [`writer`] — one task that owns writing and folds the batches of every
//!   connected agent into shared transactions, answering each caller once
//!   its batch is committed.
//! - [`history`] — the metrics a history query may ask for, and bucket sizes.
//! - [`latest`] — every host's latest state in memory, kept by ingest, read
//!   by the API and the WebSocket instead of queries.

pub mod history;
pub mod latest;
pub mod sqlite;
pub mod writer;

use serde::Serialize;

use crate::model::{Filesystem, GroupStatus, HostInfo, SystemMetrics, TimestampMs, Worker};

pub use latest::{HostState, Latest};
pub use sqlite::SqliteStore;
pub use writer::Writer;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt row in {table}: {reason}")]
    Corrupt { table: &'static str, reason: String },
    #[error("write failed: {0}")]
    Write(String),
    #[error("the store's writer has stopped")]
    WriterGone,
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A host as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct HostRecord {
    #[serde(flatten)]
    pub info: HostInfo,
    pub first_seen_ms: TimestampMs,
    pub last_seen_ms: TimestampMs,
}

/// The newest sample of a host, as stored.
#[derive(Debug, Clone, Serialize)]
pub struct CurrentSample {
    pub host_id: String,
    pub timestamp_ms: TimestampMs,
    #[serde(flatten)]
    pub system: SystemMetrics,
    pub memory_percent: f64,
    pub swap_percent: f64,
}

/// A worker group's state in a host's newest sample.
#[derive(Debug, Clone, Serialize)]
pub struct GroupRecord {
    #[serde(flatten)]
    pub status: GroupStatus,
    pub workers: Vec<Worker>,
}

/// One time bucket of a history query.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    /// Start of the bucket, ms since the epoch.
    pub t: TimestampMs,
    pub avg: f64,
    pub min: f64,
    pub max: f64,
    /// Samples that fell in the bucket.
    pub count: i64,
}

/// Fullest filesystem of a sample, 0 when there is none.
pub fn fullest_filesystem(filesystems: &[Filesystem]) -> f64 {
    filesystems
        .iter()
        .map(Filesystem::used_percent)
        .fold(0.0, f64::max)
}
