//! What of an alert's life is history: firing opens a row, a change while
//! firing updates it, resolution closes it; pending comings and goings are
//! not kept. The rows and the silences live in the store
//! ([`AlertStore`]); this turns transitions into its writes and its open
//! rows back into the instances the engine restores after a restart.

use std::sync::Arc;

use super::instance::{AlertInstance, AlertState, Transition};
use crate::store::Result;
use crate::store::alerts::{AlertChange, AlertStore};

#[derive(Clone)]
pub struct AlertHistory {
    store: Arc<dyn AlertStore>,
}

impl std::fmt::Debug for AlertHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertHistory").finish_non_exhaustive()
    }
}

impl AlertHistory {
    pub fn new(store: Arc<dyn AlertStore>) -> Self {
        Self { store }
    }

    /// Where the rows and the silences are kept.
    pub fn store(&self) -> &dyn AlertStore {
        self.store.as_ref()
    }

    /// Records a transition. Returns the row's id when one was written.
    pub async fn record(&self, t: &Transition) -> Result<Option<i64>> {
        let change = AlertChange {
            rule: &t.rule,
            host_id: &t.host_id,
            scope: &t.scope,
            severity: t.severity,
            value: t.value,
            threshold: t.threshold,
            peak: t.peak,
            started_at_ms: t.started_at_ms,
            at_ms: t.at_ms,
            silenced: t.silenced,
            message: &t.message,
        };
        match (t.from, t.to) {
            (AlertState::Firing, AlertState::Firing) => self.store.update_alert(&change).await,
            (_, AlertState::Firing) => Ok(Some(self.store.open_alert(&change).await?)),
            (AlertState::Firing, _) => self.store.resolve_alert(&change).await,
            _ => Ok(None),
        }
    }

    /// The alerts still firing, for the engine to take back after a restart.
    pub async fn open(&self) -> Result<Vec<AlertInstance>> {
        Ok(self
            .store
            .open_alerts()
            .await?
            .into_iter()
            .map(|rec| AlertInstance {
                rule: rec.rule,
                host_id: rec.host_id,
                scope: rec.scope,
                state: AlertState::Firing,
                severity: rec.severity,
                value: rec.value,
                threshold: rec.threshold,
                peak: rec.peak,
                started_at_ms: rec.started_at_ms,
                silenced: rec.silenced,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::Severity;
    use crate::store::SqliteStore;
    use crate::store::alerts::AlertFilter;

    fn change(from: AlertState, to: AlertState, severity: Severity, at_ms: i64) -> Transition {
        Transition {
            rule: "cpu".into(),
            host_id: "web-1".into(),
            scope: String::new(),
            from,
            to,
            severity,
            previous_severity: None,
            value: 95.0,
            threshold: 90.0,
            peak: 95.0,
            started_at_ms: 1_000,
            at_ms,
            silenced: false,
            notify: true,
            message: "CPU 95% >= 90% on web-1".into(),
        }
    }

    #[tokio::test]
    async fn only_firing_is_history_and_open_rows_come_back_as_instances() {
        use AlertState::{Firing, Inactive, Pending, Resolved};
        let store = SqliteStore::in_memory().await.unwrap();
        let history = AlertHistory::new(Arc::new(store.clone()));
        let warning = Severity::Warning;
        assert_eq!(
            history
                .record(&change(Inactive, Pending, warning, 1_000))
                .await
                .unwrap(),
            None,
            "pending is not history"
        );
        assert!(history.open().await.unwrap().is_empty());

        let id = history
            .record(&change(Pending, Firing, warning, 2_000))
            .await
            .unwrap()
            .unwrap();
        let escalated = change(Firing, Firing, Severity::Critical, 3_000);
        assert_eq!(history.record(&escalated).await.unwrap(), Some(id));
        let open = history.open().await.unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(
            (open[0].state, open[0].severity, open[0].started_at_ms),
            (Firing, Severity::Critical, 1_000)
        );

        let resolved = change(Firing, Resolved, Severity::Critical, 4_000);
        assert_eq!(history.record(&resolved).await.unwrap(), Some(id));
        assert!(history.open().await.unwrap().is_empty());
        let filter = AlertFilter {
            limit: 10,
            ..AlertFilter::default()
        };
        let rows = history.store().alerts(&filter).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].state, rows[0].ended_at_ms),
            (Resolved, Some(4_000))
        );
        assert_eq!(
            history
                .record(&change(Pending, Inactive, warning, 5_000))
                .await
                .unwrap(),
            None
        );
    }
}
