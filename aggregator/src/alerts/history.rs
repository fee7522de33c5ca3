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
