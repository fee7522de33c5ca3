//! The alert service: the one task that owns the [`Engine`], fed every
//! stored sample by ingest and a tick every second. Each transition is
//! recorded in the alert history, published on the hub (so the WebSocket
//! pushes it the moment it happens), and handed to the notifier when it is
//! worth telling someone. The API reads rules, active alerts and silences
//! through the same handle.

use crate::store::SampleStore;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::engine::Engine;
use super::history::AlertHistory;
use super::instance::{AlertInstance, AlertState, Transition};
use super::notify::Notifier;
use super::rules::{Rule, Severity};
use super::silence::{Silence, SilenceError};
use crate::hub::{Hub, HubEvent};
use crate::model::{HostInfo, Sample, TimestampMs, now_ms};
use crate::store::{SqliteStore, StoreError};

/// How often host silence is evaluated.
const TICK: Duration = Duration::from_secs(1);
/// Samples waiting for the engine before ingest waits too.
const QUEUE: usize = 4096;

/// An alert change as the page and the WebSocket show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertEvent {
    pub rule: String,
    pub host_id: String,
    pub scope: String,
    pub severity: Severity,
    /// `pending`, `firing` or `resolved` (a pending alert whose condition
    /// went away reads as resolved).
    pub state: AlertState,
    pub value: f64,
    pub threshold: f64,
    pub peak: f64,
    pub started_at_ms: TimestampMs,
    pub ended_at_ms: Option<TimestampMs>,
    pub message: String,
    pub silenced: bool,
}

impl AlertEvent {
    fn from_transition(t: &Transition) -> Self {
        let ended = matches!(t.to, AlertState::Resolved | AlertState::Inactive);
        Self {
            rule: t.rule.clone(),
            host_id: t.host_id.clone(),
            scope: t.scope.clone(),
            severity: t.severity,
            state: if ended { AlertState::Resolved } else { t.to },
            value: t.value,
            threshold: t.threshold,
            peak: t.peak,
            started_at_ms: t.started_at_ms,
            ended_at_ms: ended.then_some(t.at_ms),
            message: t.message.clone(),
            silenced: t.silenced,
        }
    }

    pub fn from_instance(a: &AlertInstance) -> Self {
        Self {
            rule: a.rule.clone(),
            host_id: a.host_id.clone(),
            scope: a.scope.clone(),
            severity: a.severity,
            state: a.state,
            value: a.value,
            threshold: a.threshold,
            peak: a.peak,
            started_at_ms: a.started_at_ms,
            ended_at_ms: None,
            message: String::new(),
            silenced: a.silenced,
        }
    }
}

enum Input {
    Hello(Arc<HostInfo>),
    Sample(Arc<HostInfo>, Arc<Sample>),
}

/// Handle to the alert service; cheap to clone.
#[derive(Clone)]
pub struct Alerts {
    engine: Arc<Mutex<Engine>>,
    history: AlertHistory,
    tx: mpsc::Sender<Input>,
}

/// What the service needs to run.
pub struct Parts {
    pub rules: Vec<Rule>,
    pub store: SqliteStore,
    pub hub: Hub,
    pub notifier: Notifier,
}

#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Silence(#[from] SilenceError),
}

impl Alerts {
    /// Restores firing alerts, silences and known hosts from the database,
    /// then starts the service task on `tasks`.
    pub async fn start(
        parts: Parts,
        shutdown: CancellationToken,
        tasks: &tokio_util::task::TaskTracker,
    ) -> Result<Self, AlertsError> {
        let history = AlertHistory::new(Arc::new(parts.store.clone()));
        let now = now_ms();
        let mut engine = Engine::new(parts.rules);
        for silence in history.store().silences(now).await? {
            engine.silence(silence, now)?;
        }
        // Hosts that never come back must still be reported offline.
        for host in parts.store.hosts().await? {
            engine.host_seen(&host.info, host.last_seen_ms);
        }
        let ended = engine.restore(history.open().await?, now);
        let (tx, rx) = mpsc::channel(QUEUE);
        let alerts = Self {
            engine: Arc::new(Mutex::new(engine)),
            history,
            tx,
        };
        let runner = Runner {
            alerts: alerts.clone(),
            hub: parts.hub,
            notifier: parts.notifier,
        };
        runner.handle(ended).await;
        tasks.spawn(runner.run(rx, shutdown));
        Ok(alerts)
    }

    /// Hands a stored sample to the engine. Waits only if the engine is
    /// thousands of samples behind.
    pub async fn observe(&self, host: Arc<HostInfo>, sample: Arc<Sample>) {
        let _ = self.tx.send(Input::Sample(host, sample)).await;
    }

    /// An agent connected.
    pub async fn hello(&self, host: Arc<HostInfo>) {
        let _ = self.tx.send(Input::Hello(host)).await;
    }

    fn engine(&self) -> MutexGuard<'_, Engine> {
        // A panic while holding the lock leaves the engine as consistent as
        // any single step; keep serving.
        self.engine.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn rules(&self) -> Vec<Rule> {
        self.engine().rules().to_vec()
    }

    /// Alerts pending or firing now.
    pub fn active(&self) -> Vec<AlertInstance> {
        self.engine().active(now_ms())
    }

    pub fn silences(&self) -> Vec<Silence> {
        self.engine().silences(now_ms())
    }

    /// Adds a silence and stores it; returns it with its id.
    pub async fn silence(&self, mut silence: Silence) -> Result<Silence, AlertsError> {
        let now = now_ms();
        silence.id = 0;
        let id = self.engine().silence(silence.clone(), now)?;
        silence.id = id;
        self.history.store().save_silence(&silence, now).await?;
        Ok(silence)
    }

    pub async fn unsilence(&self, id: u64) -> Result<bool, AlertsError> {
        let known = self.engine().unsilence(id);
        let stored = self.history.store().delete_silence(id).await?;
        Ok(known || stored)
    }
}

struct Runner {
    alerts: Alerts,
    hub: Hub,
    notifier: Notifier,
}

impl Runner {
    async fn run(self, mut rx: mpsc::Receiver<Input>, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let transitions = tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticker.tick() => self.alerts.engine().tick(now_ms()),
                input = rx.recv() => match input {
                    Some(Input::Sample(host, sample)) => {
                        self.alerts.engine().observe(&host, &sample, now_ms())
                    }
                    Some(Input::Hello(host)) => {
                        self.alerts.engine().host_seen(&host, now_ms());
                        continue;
                    }
                    None => return,
                },
            };
            self.handle(transitions).await;
        }
    }

    /// Records, publishes and notifies each transition, in order.
    async fn handle(&self, transitions: Vec<Transition>) {
        for t in transitions {
            if let Err(e) = self.alerts.history.record(&t).await {
                tracing::error!(error = %e, rule = %t.rule, host = %t.host_id, "cannot record alert");
            }
            tracing::info!(
                rule = %t.rule, host = %t.host_id, scope = %t.scope,
                from = ?t.from, to = ?t.to, severity = ?t.severity, value = t.value,
                silenced = t.silenced, "alert {}", t.message
            );
            if t.notify {
                self.notifier.notify(&t);
            }
            self.hub.publish(HubEvent::Alert {
                alert: AlertEvent::from_transition(&t),
            });
        }
    }
}
