//! Storage of hosts and samples.
//!
//! - [`samples`] — the [`SampleStore`] trait every backend implements, and
//!   the records it answers with.
//! - [`sqlite`] — the SQLite backend (one file, WAL mode, embedded migrations).
//! - [`writer`] — one task that owns writing and folds the batches of every
//!   connected agent into shared transactions, answering each caller once
//!   its batch is committed.
//! - [`raw`] — the raw tier's write path, backend-neutral: open chunks per
//!   host, the journal that makes them durable, which samples are new.
//! - [`series`] — a sample as integers keyed by entity and field, and back;
//!   each host's dictionary of entities (filesystems, workers, groups).
//! - [`chunk`] — consecutive samples of a host as compressed columns.
//! - [`rollup`] — the 1-minute and 1-hour tiers and their retention.
//! - [`history`] — the metrics a history query may ask for, bucket sizes,
//!   and which tier serves a query.
//! - [`codec`] — varints and deflate.
//! - [`config`] — the `[storage]` config section.

pub mod chunk;
pub mod codec;
pub mod config;
pub mod history;
pub mod raw;
pub mod rollup;
pub mod samples;
pub mod series;
pub mod sqlite;
#[cfg(test)]
pub(crate) mod suite;
pub mod writer;

use crate::model::Filesystem;

pub use rollup::{Retention, Tier};
pub use samples::{
    Bucket, CurrentSample, GroupRecord, HistoryAnswer, HistoryQuery, HostBatch, HostRecord, Pruned,
    SampleStore,
};
pub use sqlite::{Durability, SqliteOptions, SqliteStore};
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
    /// A query the store cannot answer as asked (the caller's mistake).
    #[error("{0}")]
    Query(String),
    #[error("the store's writer has stopped")]
    WriterGone,
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Fullest filesystem of a sample, 0 when there is none.
pub fn fullest_filesystem(filesystems: &[Filesystem]) -> f64 {
    filesystems
        .iter()
        .map(Filesystem::used_percent)
        .fold(0.0, f64::max)
}
