//! Alert history and silences as stored: the [`AlertStore`] trait and its
//! records. Each firing of an alert instance (rule × host × scope) is a
//! row, updated while it fires and closed when it resolves; at most one row
//! per instance is open. Which transitions are history is `alerts`'s call.

use serde::Serialize;

use super::Result;
use crate::model::{AlertState, Severity, Silence, TimestampMs};

/// One row of alert history, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AlertRecord {
    pub id: i64,
    pub rule: String,
    pub host_id: String,
    pub scope: String,
    pub severity: Severity,
    pub state: AlertState,
    pub value: f64,
    pub threshold: f64,
    pub peak: f64,
    pub started_at_ms: TimestampMs,
    pub fired_at_ms: TimestampMs,
    pub ended_at_ms: Option<TimestampMs>,
    pub silenced: bool,
    pub message: String,
}

/// What `GET /api/alerts` filters on.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    /// `Some(Firing)`, `Some(Resolved)`, or `None` for all.
    pub state: Option<AlertState>,
    pub host: Option<String>,
    pub severity: Option<Severity>,
    pub limit: i64,
}

/// One alert instance as it is at `at_ms`, for writing its row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlertChange<'a> {
    pub rule: &'a str,
    pub host_id: &'a str,
    pub scope: &'a str,
    pub severity: Severity,
    pub value: f64,
    pub threshold: f64,
    pub peak: f64,
    pub started_at_ms: TimestampMs,
    pub at_ms: TimestampMs,
    pub silenced: bool,
    pub message: &'a str,
}

/// Alert history rows and silences.
#[async_trait::async_trait]
pub trait AlertStore: Send + Sync {
    /// Opens a row for an instance that starts firing (fired at `at_ms`);
    /// an instance whose row is somehow still open has that row replaced.
    async fn open_alert(&self, change: &AlertChange<'_>) -> Result<i64>;

    /// Updates the open row of a firing instance (severity, value,
    /// threshold, peak, message, silenced); `None` when none is open.
    async fn update_alert(&self, change: &AlertChange<'_>) -> Result<Option<i64>>;

    /// Closes the open row of an instance as resolved at `at_ms`; `None`
    /// when none is open.
    async fn resolve_alert(&self, change: &AlertChange<'_>) -> Result<Option<i64>>;

    /// Rows still open (firing).
    async fn open_alerts(&self) -> Result<Vec<AlertRecord>>;

    /// History, newest first.
    async fn alerts(&self, filter: &AlertFilter) -> Result<Vec<AlertRecord>>;

    /// Deletes resolved rows that ended before `before_ms`; returns how many.
    async fn prune_resolved(&self, before_ms: TimestampMs) -> Result<u64>;

    /// Stores a silence under its id, replacing one with the same id.
    async fn save_silence(&self, silence: &Silence, now_ms: TimestampMs) -> Result<()>;

    /// Whether a silence with this id was there to delete.
    async fn delete_silence(&self, id: u64) -> Result<bool>;

    /// Silences that have not expired by `now_ms`, by id.
    async fn silences(&self, now_ms: TimestampMs) -> Result<Vec<Silence>>;
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn change<'a>(host_id: &'a str, severity: Severity, value: f64, at_ms: i64) -> AlertChange<'a> {
        AlertChange {
            rule: "cpu",
            host_id,
            scope: "",
            severity,
            value,
            threshold: 90.0,
            peak: value,
            started_at_ms: 1_000,
            at_ms,
            silenced: false,
            message: "CPU high",
        }
    }

    fn filter(state: Option<AlertState>) -> AlertFilter {
        AlertFilter {
            state,
            limit: 100,
            ..AlertFilter::default()
        }
    }

    /// What every backend must do; run on each one.
    pub(crate) async fn exercise_alerts(store: &dyn AlertStore) {
        let warn = change("web-1", Severity::Warning, 91.0, 2_000);
        assert_eq!(store.update_alert(&warn).await.unwrap(), None, "not open");
        let id = store.open_alert(&warn).await.unwrap();
        // Re-opening an open instance keeps its row.
        assert_eq!(store.open_alert(&warn).await.unwrap(), id);
        let worse = AlertChange {
            peak: 97.0,
            ..change("web-1", Severity::Critical, 97.0, 3_000)
        };
        assert_eq!(store.update_alert(&worse).await.unwrap(), Some(id));
        let other = store
            .open_alert(&change("web-2", Severity::Warning, 92.0, 4_000))
            .await
            .unwrap();

        let open = store.open_alerts().await.unwrap();
        assert_eq!(open.len(), 2);
        let row = open.iter().find(|r| r.id == id).unwrap();
        assert_eq!(
            (
                row.severity,
                row.state,
                row.peak,
                row.fired_at_ms,
                row.ended_at_ms
            ),
            (Severity::Critical, AlertState::Firing, 97.0, 2_000, None)
        );

        let resolved = change("web-1", Severity::Critical, 10.0, 5_000);
        assert_eq!(store.resolve_alert(&resolved).await.unwrap(), Some(id));
        assert_eq!(store.resolve_alert(&resolved).await.unwrap(), None);
        // Firing again after resolving is a new row.
        let again = store
            .open_alert(&change("web-1", Severity::Warning, 93.0, 6_000))
            .await
            .unwrap();
        assert_ne!(again, id);

        let all = store.alerts(&filter(None)).await.unwrap();
        let ids: Vec<_> = all.iter().map(|r| r.id).collect();
        assert_eq!(ids, [again, other, id], "newest first");
        let done = store
            .alerts(&filter(Some(AlertState::Resolved)))
            .await
            .unwrap();
        assert_eq!(done.len(), 1);
        assert_eq!((done[0].ended_at_ms, done[0].value), (Some(5_000), 10.0));
        let narrow = AlertFilter {
            host: Some("web-1".into()),
            severity: Some(Severity::Warning),
            ..filter(Some(AlertState::Firing))
        };
        let ids: Vec<_> = store
            .alerts(&narrow)
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, [again]);
        let one = AlertFilter {
            limit: 1,
            ..filter(None)
        };
        assert_eq!(store.alerts(&one).await.unwrap().len(), 1);

        assert_eq!(
            store.prune_resolved(5_000).await.unwrap(),
            0,
            "ended at 5000"
        );
        assert_eq!(store.prune_resolved(5_001).await.unwrap(), 1);
        assert_eq!(
            store.alerts(&filter(None)).await.unwrap().len(),
            2,
            "open stay"
        );

        let silence = |id, expires_at_ms| Silence {
            id,
            rule: Some("cpu".into()),
            host: None,
            pool: Some("web".into()),
            expires_at_ms,
            comment: "deploy".into(),
        };
        store.save_silence(&silence(2, 10_000), 1).await.unwrap();
        store.save_silence(&silence(1, 500), 1).await.unwrap();
        store.save_silence(&silence(3, 20_000), 1).await.unwrap();
        store.save_silence(&silence(3, 30_000), 2).await.unwrap();
        assert_eq!(
            store.silences(1_000).await.unwrap(),
            [silence(2, 10_000), silence(3, 30_000)],
            "unexpired, by id, replaced by id"
        );
        assert!(store.delete_silence(2).await.unwrap());
        assert!(!store.delete_silence(2).await.unwrap());
        assert_eq!(store.silences(1_000).await.unwrap(), [silence(3, 30_000)]);
    }

    #[tokio::test]
    async fn sqlite_keeps_alerts_and_silences() {
        let store = crate::store::SqliteStore::in_memory().await.unwrap();
        exercise_alerts(&store).await;
    }
}
