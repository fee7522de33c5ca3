//! Storage: the one owner of every query. Nothing outside this module
//! holds a pool or writes SQL; callers use [`SqliteStore`] through its
//! methods (samples and hosts) and the per-family traits below, which a
//! second backend implements too.
//!
//! - [`sqlite`] — the SQLite store (one file, WAL mode, embedded migrations):
//!   writes, queries and retention, and in its children the implementation
//!   of each family's trait.
//! - [`agent_tokens`] — [`AgentTokenStore`]: agent tokens and host ownership.
//! - [`users`] — [`UserStore`]: dashboard users and their password hashes.
//! - [`sessions`] — [`SessionStore`]: dashboard sessions.
//! - [`api_tokens`] — [`ApiTokenStore`]: API tokens for scripts.
//! - [`alerts`] — [`AlertStore`]: alert history and silences.
//! - [`writer`] — one task that owns writing and folds the batches of every
//!   connected agent into shared transactions, answering each caller once
//!   its batch is committed.
//! - [`history`] — the metrics a history query may ask for, and bucket sizes.

pub mod agent_tokens;
pub mod alerts;
pub mod api_tokens;
pub mod history;
pub mod sessions;
pub mod sqlite;
pub mod users;
pub mod writer;

use serde::Serialize;

use crate::model::{Filesystem, GroupStatus, HostInfo, SystemMetrics, TimestampMs, Worker};

pub use agent_tokens::AgentTokenStore;
pub use alerts::AlertStore;
pub use api_tokens::ApiTokenStore;
pub use sessions::SessionStore;
pub use sqlite::SqliteStore;
pub use users::UserStore;
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

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    /// Every `.rs` file under `dir`, recursively.
    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// The store owns every query: a second backend must be able to take
    /// over all of them, so no other module may reach the database itself.
    #[test]
    fn nothing_outside_the_store_touches_the_database() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&src, &mut files);
        assert!(files.len() > 20, "found only {files:?}");
        let offenders: Vec<_> = files
            .iter()
            .filter(|f| !f.starts_with(src.join("store")))
            .filter(|f| {
                let text = std::fs::read_to_string(f).unwrap();
                text.contains("sqlx") || text.contains(".pool()")
            })
            .collect();
        assert!(offenders.is_empty(), "SQL outside store/: {offenders:?}");
    }
}
