//! Background pruning: each tier of samples past its retention (see
//! `store::Retention`), hosts silent for longer than the raw samples are
//! kept from the latest state in memory, and resolved alerts past the alert
//! history's. (The write-ahead log's checkpoints are the store's:
//! `store::sqlite::checkpoint`.)

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::model::now_ms;
use crate::store::{AlertStore, Latest, SampleStore, SqliteStore};

/// How often old samples are pruned.
const EVERY: Duration = Duration::from_secs(60);

/// Prunes once a minute until `shutdown`: hosts silent for longer than
/// `retention` from the latest state, each tier of samples past its own
/// retention, and resolved alerts past `alert_retention`.
pub async fn run(
    store: SqliteStore,
    latest: Latest,
    retention: Duration,
    alert_retention: Duration,
    shutdown: CancellationToken,
) {
    let keep_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    let keep_alerts_ms = i64::try_from(alert_retention.as_millis()).unwrap_or(i64::MAX);
    let mut ticker = tokio::time::interval(EVERY);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let before_ms = now_ms().saturating_sub(keep_ms);
        latest.prune(before_ms);
        match store.prune(now_ms()).await {
            Ok(p) if p == Default::default() => {}
            Ok(p) => tracing::info!(
                chunks = p.chunks,
                minute_rows = p.minute_rows,
                hour_rows = p.hour_rows,
                "pruned history past retention"
            ),
            Err(e) => tracing::warn!(error = %e, "pruning failed; will retry"),
        }
        match store
            .prune_resolved(now_ms().saturating_sub(keep_alerts_ms))
            .await
        {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "pruned resolved alerts past retention"),
            Err(e) => tracing::warn!(error = %e, "pruning alert history failed; will retry"),
        }
    }
}
