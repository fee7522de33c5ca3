//! Storage: the one owner of every query. Nothing outside this module
//! holds a pool or writes SQL; callers use [`SqliteStore`] through its
//! methods (samples and hosts) and the per-family traits below, which a
//! second backend implements too.
//!
//! - [`samples`] — the [`SampleStore`] trait every backend implements, and
//!   the records it answers with.
//! - [`sqlite`] — the SQLite backend (one file, WAL mode, embedded migrations),
//!   and in its children the implementation of each family's trait.
//! - [`agent_tokens`] — [`AgentTokenStore`]: agent tokens and host ownership.
//! - [`users`] — [`UserStore`]: dashboard users and their password hashes.
//! - [`sessions`] — [`SessionStore`]: dashboard sessions.
//! - [`api_tokens`] — [`ApiTokenStore`]: API tokens for scripts.
//! - [`alerts`] — [`AlertStore`]: alert history and silences.
//! - [`gaps`] — [`GapStore`]: time ranges agents reported they dropped.
//! - [`writer`] — one task that owns writing and folds the batches of every
//!   connected agent into shared transactions, answering each caller once
//!   its batch is committed.
//! - [`raw`] — the raw tier's write path, backend-neutral: open chunks per
//!   host, the journal that makes them durable, which samples are new.
//! - [`series`] — a sample as integers keyed by entity and field, and back;
//!   each host's dictionary of entities (filesystems, workers, groups).
//! - [`chunk`] — consecutive samples of a host as compressed columns.
//! - [`rollup`] — the 1-minute and 1-hour tiers and their retention.
//! - [`history_query`] — the metrics a history query may ask for, bucket sizes,
//!   and which tier serves a query.
//! - [`codec`] — varints and deflate.
//! - [`config`] — the `[storage]` config section.
//! - [`latest`] — every host's latest state in memory, kept by ingest, read
//!   by the API and the WebSocket instead of queries.

pub mod agent_tokens;
pub mod alerts;
pub mod api_tokens;
pub mod chunk;
pub mod codec;
pub mod config;
pub mod gaps;
pub mod history_query;
pub mod latest;
pub mod raw;
pub mod rollup;
pub mod samples;
pub mod series;
pub mod sessions;
pub mod sqlite;
#[cfg(test)]
pub(crate) mod suite;
pub mod users;
pub mod writer;

use crate::model::Filesystem;

pub use agent_tokens::AgentTokenStore;
pub use alerts::AlertStore;
pub use api_tokens::ApiTokenStore;
pub use gaps::{Gap, GapStore};
pub use latest::{HostState, Latest};
pub use rollup::{Retention, Tier};
pub use samples::{
    Bucket, CurrentSample, GroupRecord, HistoryAnswer, HistoryQuery, HostBatch, HostRecord, Pruned,
    SampleStore,
};
pub use sessions::SessionStore;
pub use sqlite::{Durability, SqliteOptions, SqliteStore};
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
