//! The alert service: the one task that owns the [`Engine`], fed every
//! stored sample by ingest through the [`Intake`] (which never makes ingest
//! wait; see there for what happens when the engine falls behind) and a
//! tick every second. Each transition is
//! recorded in the alert history, published on the hub (so the WebSocket
//! pushes it the moment it happens), and handed to the notifier when it is
//! worth telling someone. The API reads rules, active alerts and silences
//! through the same handle.

use crate::store::SampleStore;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::alert_history::AlertHistory;
use super::engine::Engine;
use super::instance::{AlertInstance, AlertState, Transition};
use super::intake::{Input, Intake};
use super::notify::Notifier;
use super::rules::Rule;
use super::silence::{Silence, SilenceError};
use crate::hub::{Hub, HubEvent};
use crate::model::{AlertEvent, HostInfo, Sample, TimestampMs, now_ms};
use crate::store::{SqliteStore, StoreError};

/// How often host silence is evaluated.
const TICK: Duration = Duration::from_secs(1);
/// Inputs waiting for the engine in order before they are conflated to the
/// newest per host.
const QUEUE: usize = 4096;
/// How often conflation is logged, at most.
const CONFLATION_LOG_EVERY: Duration = Duration::from_secs(10);

/// How the alert types become the event the hub carries; the event type
/// is the model's so that the hub needs nothing from alerting.
impl AlertEvent {
    pub(crate) fn from_transition(t: &Transition) -> Self {
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

/// Handle to the alert service; cheap to clone.
#[derive(Clone)]
pub struct Alerts {
    engine: Arc<Mutex<Engine>>,
    history: AlertHistory,
    intake: Arc<Intake>,
}

/// What the service needs to run.
pub struct Parts {
    pub rules: Vec<Rule>,
    pub store: SqliteStore,
    pub hub: Hub,
    pub notifier: Notifier,
    /// After start, how long stored hosts get to reconnect before they can
    /// be offline (`[alerts] restart_grace`).
    pub restart_grace: std::time::Duration,
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
        Self::start_with(parts, QUEUE, shutdown, tasks).await
    }

    /// [`Alerts::start`] with `queue` inputs kept in order before conflation.
    async fn start_with(
        parts: Parts,
        queue: usize,
        shutdown: CancellationToken,
        tasks: &tokio_util::task::TaskTracker,
    ) -> Result<Self, AlertsError> {
        let history = AlertHistory::new(Arc::new(parts.store.clone()));
        let now = now_ms();
        let mut engine = Engine::new(parts.rules);
        for silence in history.store().silences(now).await? {
            engine.silence(silence, now)?;
        }
        // Hosts that never come back must still be reported offline, but
        // those that reconnect in their grace must not page anyone.
        for host in parts.store.hosts().await? {
            engine.host_restored(&host.info, host.last_seen_ms, now, parts.restart_grace);
        }
        let ended = engine.restore(history.open().await?, now);
        let alerts = Self {
            engine: Arc::new(Mutex::new(engine)),
            history,
            intake: Arc::new(Intake::new(queue)),
        };
        let runner = Runner {
            alerts: alerts.clone(),
            hub: parts.hub,
            notifier: parts.notifier,
        };
        runner.handle(ended).await;
        tasks.spawn(runner.run(shutdown));
        Ok(alerts)
    }

    /// Hands a stored sample to the engine; never waits.
    pub fn observe(&self, host: Arc<HostInfo>, sample: Arc<Sample>) {
        self.intake.push(Input::Sample(host, sample));
    }

    /// An agent connected; never waits.
    pub fn hello(&self, host: Arc<HostInfo>) {
        self.intake.push(Input::Hello(host));
    }

    /// Ingest received something from `host_id` at `at_ms` (call it before
    /// the batch is stored): the `offline` rule counts the host as heard
    /// from then, however far behind storage or the engine are.
    pub fn heard(&self, host_id: &str, at_ms: TimestampMs) {
        self.intake.heard(host_id, at_ms);
    }

    /// Samples not evaluated because newer ones of their host replaced
    /// them while the engine was behind, since start.
    pub fn conflated(&self) -> u64 {
        self.intake.conflated()
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
    async fn run(self, shutdown: CancellationToken) {
        let intake = self.alerts.intake.clone();
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut logged = (Instant::now(), 0_u64);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticker.tick() => {
                    let heard = intake.take_heard();
                    let transitions = {
                        let mut engine = self.alerts.engine();
                        for (host_id, at_ms) in &heard {
                            engine.heard(host_id, *at_ms);
                        }
                        engine.tick(now_ms())
                    };
                    self.handle(transitions).await;
                }
                () = intake.ready() => {
                    for input in intake.take() {
                        if shutdown.is_cancelled() {
                            return;
                        }
                        let transitions = match input {
                            Input::Sample(host, sample) => {
                                self.alerts.engine().observe(&host, &sample, now_ms())
                            }
                            Input::Hello(host) => {
                                self.alerts.engine().host_seen(&host, now_ms());
                                continue;
                            }
                        };
                        self.handle(transitions).await;
                    }
                    let conflated = intake.conflated();
                    if conflated > logged.1 && logged.0.elapsed() >= CONFLATION_LOG_EVERY {
                        tracing::warn!(
                            conflated = conflated - logged.1,
                            total = conflated,
                            "alert engine behind: evaluated only the newest pending sample of \
                             some hosts"
                        );
                        logged = (Instant::now(), conflated);
                    }
                }
            }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::alerts::config::builtin_rules;
    use crate::alerts::fixtures::{cpu, host};
    use crate::alerts::rules::{Comparison, Metric};
    use crate::alerts::threshold::Threshold;

    /// CPU at or over 90 % fires at once.
    fn cpu_rule() -> Rule {
        let mut rule = builtin_rules().remove(0);
        rule.name = "hot".into();
        rule.metric = Metric::CpuPercent;
        rule.comparison = Comparison::Ge;
        rule.warning = None;
        rule.critical = Some(Threshold::Value(90.0));
        rule.for_duration = Duration::ZERO;
        rule
    }

    fn at(ts: TimestampMs, percent: f64) -> Arc<Sample> {
        let mut s = cpu(percent);
        s.timestamp_ms = ts;
        Arc::new(s)
    }

    #[tokio::test]
    async fn a_far_behind_engine_costs_ingest_nothing_and_sees_each_hosts_newest_sample() {
        let shutdown = CancellationToken::new();
        let hub = Hub::new();
        let mut events = hub.subscribe();
        let parts = Parts {
            rules: vec![cpu_rule()],
            store: SqliteStore::in_memory().await.unwrap(),
            hub,
            notifier: Notifier::spawn(Vec::new(), Default::default(), None, shutdown.clone()),
            restart_grace: Duration::ZERO,
        };
        let tasks = tokio_util::task::TaskTracker::new();
        let alerts = Alerts::start_with(parts, 16, shutdown.clone(), &tasks)
            .await
            .unwrap();
        // A current-thread runtime: the service cannot run while this loop
        // pushes, as if it were far behind. Every call returns at once.
        let early = Arc::new(host("a-spiked-early"));
        let late = Arc::new(host("b-spikes-last"));
        for i in 0..10_000 {
            let ts = i * 1000;
            alerts.observe(early.clone(), at(ts, if i == 100 { 99.0 } else { 10.0 }));
            alerts.observe(late.clone(), at(ts, if i == 9_999 { 99.0 } else { 10.0 }));
            assert!(alerts.intake.len() <= 16 + 2, "memory stays bounded");
        }
        // 16 kept in order, one per host kept in the map.
        assert_eq!(alerts.conflated(), 20_000 - 16 - 2);

        let fired = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let event = events.recv().await.unwrap();
                if let HubEvent::Alert { alert } = &event.event {
                    return alert.clone();
                }
            }
        })
        .await
        .expect("an alert within 5 s");
        assert_eq!(
            (fired.host_id.as_str(), fired.state),
            ("id-b-spikes-last", AlertState::Firing),
            "the newest sample of each host is evaluated"
        );
        // The early host was evaluated first (by host id): its spike was
        // conflated away and its newest sample is calm.
        let active: Vec<String> = alerts.active().into_iter().map(|a| a.host_id).collect();
        assert_eq!(active, ["id-b-spikes-last"]);
        assert!(alerts.intake.is_empty());
        shutdown.cancel();
    }
}
