//! Checkpointing SQLite's write-ahead log in the background, once a
//! second, so that commits (and the acks waiting on them) never pay for it:
//! the connection is opened with `wal_autocheckpoint = 0`.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::SqliteStore;

/// How often the WAL is checkpointed.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Checkpoints the database's write-ahead log in the background, so that
/// commits (and the acks waiting on them) never pay for it.
pub async fn run(store: SqliteStore, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(CHECKPOINT_EVERY);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = ticker.tick() => {}
        }
        if let Err(e) = store.checkpoint().await {
            tracing::warn!(error = %e, "WAL checkpoint failed; will retry");
        }
    }
    // One last one, so the database file is whole when we stop.
    let _ = store.checkpoint().await;
}
