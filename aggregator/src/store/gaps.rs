//! Gaps an agent reported in its own samples: time ranges its spool
//! dropped (past its size or age bound during a long outage) and will never
//! send. The [`GapStore`] trait and its record; ingest writes them, the API
//! (`GET /api/gaps`) reads them, so a hole in a chart has a reason.

use serde::Serialize;

use super::Result;
use crate::model::TimestampMs;

/// Samples of one host from `from_ms` to `to_ms` (inclusive) that its
/// agent dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Gap {
    pub host_id: String,
    pub from_ms: TimestampMs,
    pub to_ms: TimestampMs,
    /// How many samples the agent dropped in the range.
    pub samples: u64,
    /// When the aggregator first heard of it.
    pub reported_ms: TimestampMs,
}

/// Reported gaps, keyed by host first. An agent repeats a range until a
/// batch carrying it is acknowledged, so inserting is idempotent on
/// (host, from, to).
#[async_trait::async_trait]
pub trait GapStore: Send + Sync {
    /// Records gaps (all of one host); returns how many were new.
    async fn insert_gaps(&self, gaps: &[Gap]) -> Result<u64>;

    /// The gaps of `host_id` (every host when `None`) that overlap
    /// `from..=to`, oldest first.
    async fn gaps(
        &self,
        host_id: Option<&str>,
        from: TimestampMs,
        to: TimestampMs,
    ) -> Result<Vec<Gap>>;
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn gap(host: &str, from_ms: i64, to_ms: i64, samples: u64) -> Gap {
        Gap {
            host_id: host.to_owned(),
            from_ms,
            to_ms,
            samples,
            reported_ms: 5000,
        }
    }

    /// What every backend must do; run on each one.
    pub(crate) async fn exercise_gaps<S: GapStore>(store: &S) {
        let gaps: &dyn GapStore = store;
        let a1 = gap("a", 1000, 1900, 10);
        let a2 = gap("a", 3000, 3500, 6);
        let b1 = gap("b", 1000, 2000, 11);
        assert_eq!(
            gaps.insert_gaps(&[a1.clone(), a2.clone()]).await.unwrap(),
            2
        );
        assert_eq!(
            gaps.insert_gaps(std::slice::from_ref(&b1)).await.unwrap(),
            1
        );
        // A repeated report changes nothing.
        let mut again = a1.clone();
        again.reported_ms = 9999;
        assert_eq!(gaps.insert_gaps(&[again]).await.unwrap(), 0);

        assert_eq!(
            gaps.gaps(Some("a"), 0, i64::MAX).await.unwrap(),
            [a1.clone(), a2.clone()]
        );
        // Overlap, not containment: a range that ends inside counts.
        assert_eq!(
            gaps.gaps(Some("a"), 1900, 2500).await.unwrap(),
            std::slice::from_ref(&a1)
        );
        assert_eq!(gaps.gaps(Some("a"), 1901, 2999).await.unwrap(), []);
        assert_eq!(gaps.gaps(Some("c"), 0, i64::MAX).await.unwrap(), []);
        assert_eq!(
            gaps.gaps(None, 0, 1500).await.unwrap(),
            [a1, b1],
            "every host, oldest first"
        );
        assert_eq!(gaps.insert_gaps(&[]).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn sqlite_keeps_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::SqliteStore::open(&dir.path().join("fw.db"))
            .await
            .unwrap();
        exercise_gaps(&store).await;
    }
}
