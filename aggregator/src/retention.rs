//! Background pruning of samples older than the retention period.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::model::now_ms;
use crate::store::SqliteStore;

/// How often old samples are pruned.
const EVERY: Duration = Duration::from_secs(60);

pub async fn run(store: SqliteStore, retention: Duration, shutdown: CancellationToken) {
    let keep_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    let mut ticker = tokio::time::interval(EVERY);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        match store.prune(now_ms().saturating_sub(keep_ms)).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "pruned samples past retention"),
            Err(e) => tracing::warn!(error = %e, "pruning failed; will retry"),
        }
    }
}
