//! The dispatcher task: tracks firing alerts for repeat reminders and fans
//! each message out to the queue of every receiver whose `min_severity` it
//! reaches, so a receiver that is down only delays itself.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::debug;

use super::Shared;
use super::config::Receiver;
use super::payload::{NotifyState, WebhookPayload};
use crate::alerts::instance::{AlertState, Transition};
use crate::alerts::rules::Severity;

/// Firing alerts are tracked by rule, host and scope.
pub(super) type Key = (String, String, String);

pub(super) struct Firing {
    transition: Transition,
    /// The highest severity it fired at, so a receiver told about it hears
    /// of its de-escalation and resolution too.
    max_severity: Severity,
    next_repeat: Option<Instant>,
}

/// The state of the dispatcher task; [`Dispatcher::run`] is the task.
pub(super) struct Dispatcher {
    pub(super) shared: Arc<Shared>,
    pub(super) repeat_interval: Duration,
    pub(super) queues: Vec<(Arc<Receiver>, mpsc::Sender<Arc<WebhookPayload>>)>,
    pub(super) firing: HashMap<Key, Firing>,
}

impl Dispatcher {
    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<Transition>) {
        loop {
            let next_repeat = self.firing.values().filter_map(|f| f.next_repeat).min();
            tokio::select! {
                biased;
                () = self.shared.shutdown.cancelled() => break,
                t = rx.recv() => match t {
                    Some(t) => self.transition(t),
                    None => break,
                },
                () = sleep_until(next_repeat) => self.repeat_due(),
            }
        }
        debug!(queued = rx.len(), "notification dispatcher stopped");
    }

    fn transition(&mut self, t: Transition) {
        let key = (t.rule.clone(), t.host_id.clone(), t.scope.clone());
        let (state, reach) = match t.to {
            AlertState::Firing => {
                let max = self
                    .firing
                    .get(&key)
                    .map_or(t.severity, |f| f.max_severity.max(t.severity));
                let reach = t
                    .previous_severity
                    .map_or(t.severity, |p| p.max(t.severity));
                let next_repeat = (!self.repeat_interval.is_zero())
                    .then(|| Instant::now() + self.repeat_interval);
                self.firing.insert(
                    key,
                    Firing {
                        transition: t.clone(),
                        max_severity: max,
                        next_repeat,
                    },
                );
                (NotifyState::Firing, reach)
            }
            AlertState::Resolved => {
                let max = self.firing.remove(&key).map(|f| f.max_severity);
                (
                    NotifyState::Resolved,
                    max.map_or(t.severity, |m| m.max(t.severity)),
                )
            }
            AlertState::Inactive | AlertState::Pending => {
                self.firing.remove(&key);
                debug!(rule = %t.rule, host = %t.host_id, to = ?t.to, "not a notifiable transition");
                return;
            }
        };
        let payload = WebhookPayload::new(&t, state, self.shared.dashboard_url.as_deref(), false);
        self.fan_out(payload, reach);
    }

    fn repeat_due(&mut self) {
        let now = Instant::now();
        let mut due = Vec::new();
        for f in self.firing.values_mut() {
            if f.next_repeat.is_some_and(|at| at <= now) {
                f.next_repeat = Some(now + self.repeat_interval);
                due.push(f.transition.clone());
            }
        }
        for t in due {
            debug!(rule = %t.rule, host = %t.host_id, scope = %t.scope, "repeating firing alert");
            let payload = WebhookPayload::new(
                &t,
                NotifyState::Firing,
                self.shared.dashboard_url.as_deref(),
                true,
            );
            self.fan_out(payload, t.severity);
        }
    }

    /// Queues `payload` for each receiver whose minimum `reach` meets.
    fn fan_out(&self, payload: WebhookPayload, reach: Severity) {
        let payload = Arc::new(payload);
        for (r, queue) in &self.queues {
            if reach < r.min_severity {
                continue;
            }
            if let Err(mpsc::error::TrySendError::Full(p)) = queue.try_send(payload.clone()) {
                self.shared.dropped(&p.rule, &p.host_id, &r.label);
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
