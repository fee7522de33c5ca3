//! The write probe behind `/health`: whether the database takes a write now.
//!
//! A `SELECT 1` answers on a full disk, so the probe commits a one-row write
//! on the sample writer's own connection (the one a wedge would hold). That
//! small write can still fit in log pages SQLite reuses while a sample flush
//! cannot, so the probe also fails while the writer's last flush failed and
//! none has succeeded since. Probes are anonymous and each is a durable
//! commit, so one result serves every caller for [`PROBE_CACHE`].

use std::time::{Duration, Instant};

use super::SqliteStore;
use crate::model::now_ms;

/// How long one probe's answer is reused.
const PROBE_CACHE: Duration = Duration::from_secs(1);
/// A probe that takes longer than this reports the writer as stuck.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The last probe's time and answer.
#[derive(Debug, Default)]
pub(super) struct ProbeState {
    last: Option<(Instant, Result<(), String>)>,
}

impl SqliteStore {
    /// Records the outcome of a sample flush for the probe.
    pub(super) fn note_flush(&self, outcome: Result<(), String>) {
        *self.flush_failure.lock().unwrap_or_else(|e| e.into_inner()) = outcome.err();
    }

    /// Why the database cannot take a write now, if it cannot.
    pub(super) async fn probe(&self) -> Result<(), String> {
        let mut state = self.probe.lock().await;
        if let Some((at, answer)) = &state.last
            && at.elapsed() < PROBE_CACHE
        {
            return answer.clone();
        }
        let answer = self.probe_now().await;
        if let Err(reason) = &answer {
            tracing::warn!(reason = %reason, "database write probe failed");
        }
        state.last = Some((Instant::now(), answer.clone()));
        answer
    }

    async fn probe_now(&self) -> Result<(), String> {
        let write = async {
            let mut conn = self.writer.acquire().await?;
            let result = sqlx::query(
                "INSERT INTO health_probe (id, at_ms) VALUES (1, ?) \
                 ON CONFLICT (id) DO UPDATE SET at_ms = excluded.at_ms",
            )
            .bind(now_ms())
            .execute(&mut *conn)
            .await;
            if result.is_err() {
                // Like a failed flush: never keep a connection that failed.
                conn.close_on_drop();
            }
            result.map(|_| ())
        };
        match tokio::time::timeout(PROBE_TIMEOUT, write).await {
            Err(_) => {
                return Err(format!(
                    "a one-row write did not finish in {} s",
                    PROBE_TIMEOUT.as_secs()
                ));
            }
            Ok(Err(e)) => return Err(format!("a one-row write failed: {e}")),
            Ok(Ok(())) => {}
        }
        let failure = self
            .flush_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match failure {
            Some(reason) => Err(format!("the last sample write failed: {reason}")),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn probe_writes_and_reports_a_failed_flush() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("fw.db")).await.unwrap();
        assert_eq!(store.probe_now().await, Ok(()));
        let written: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM health_probe")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(written, 1);

        store.note_flush(Err("database or disk is full".to_owned()));
        let reason = store.probe_now().await.unwrap_err();
        assert!(reason.contains("disk is full"), "{reason}");
        store.note_flush(Ok(()));
        assert_eq!(store.probe_now().await, Ok(()));

        // A read-only database refuses the write itself.
        sqlx::query("PRAGMA query_only = ON")
            .execute(&store.writer)
            .await
            .unwrap();
        let reason = store.probe_now().await.unwrap_err();
        assert!(reason.contains("one-row write failed"), "{reason}");
        store.close().await;
    }
}
