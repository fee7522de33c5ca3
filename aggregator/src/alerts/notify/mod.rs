//! Webhook notifications: alert transitions POSTed as JSON to the configured
//! receivers, with retries, one queue per receiver and repeat reminders.
//!
//! ```toml
//! [[alerts.webhooks]]
//! name = "pager"                              # optional, used in logs
//! url = "https://hooks.example.com/fleetwatch"
//! header = "Authorization: Bearer s3cret"     # optional
//! min_severity = "critical"                   # "warning" (default) or "critical"
//!
//! [alerts.notify]
//! repeat_interval = "4h"   # re-send alerts still firing; "0s" turns it off
//! timeout = "5s"           # per HTTP attempt
//! max_attempts = 5         # retries on connection errors, 5xx and 429
//! retry_backoff = "500ms"  # first retry delay, doubled each time, jittered
//! ```
//!
//! [`Notifier::notify`] never waits: it puts the transition on a bounded
//! queue and drops it (counted, logged) when the queue is full. A dispatcher
//! task tracks firing alerts for the repeat interval and fans each message
//! out to one queue per receiver, so a receiver that is down only delays
//! itself.
//!
//! - [`config`] — `[[alerts.webhooks]]` and `[alerts.notify]` as written,
//!   and their validation.
//! - [`payload`] — the JSON body a receiver gets.
//! - `dispatch` — the task that tracks firing alerts for repeats and fans
//!   messages out to the receivers' queues.
//! - `delivery` — one task per receiver: HTTP POSTs with retries.
//! - this file — [`Notifier`], the handle, and the state its tasks share.

pub mod config;
mod delivery;
mod dispatch;
pub mod payload;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, warn};

pub use config::{NotifyConfigError, NotifySettings, WebhookConfig, validate_webhooks};
pub use payload::{NotifyState, WebhookPayload};

use config::Receiver;
use delivery::deliver_loop;
use dispatch::Dispatcher;

use super::instance::Transition;

/// Transitions waiting for the dispatcher.
const QUEUE_CAPACITY: usize = 1024;
/// Messages waiting for one receiver (which may be retrying).
const RECEIVER_QUEUE_CAPACITY: usize = 256;

/// Delivery counters since start (test notifications not included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NotifyStats {
    /// Messages a receiver accepted (one per receiver).
    pub sent: u64,
    /// Messages given up on after the last attempt.
    pub failed: u64,
    /// Messages dropped because a queue was full.
    pub dropped: u64,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

struct Shared {
    /// `None` only if the HTTP client could not be built (logged at start).
    client: Option<reqwest::Client>,
    receivers: Vec<Arc<Receiver>>,
    max_attempts: u32,
    retry_backoff: Duration,
    /// Without the trailing slash.
    dashboard_url: Option<String>,
    counters: Counters,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

/// Handle to the notification tasks; cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    /// `None` when no webhook is configured.
    tx: Option<mpsc::Sender<Transition>>,
    shared: Arc<Shared>,
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier")
            .field("receivers", &self.receiver_names())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Notifier {
    /// Starts the tasks that deliver to `webhooks` (which should have been
    /// validated: an invalid entry is logged and left out). They run until
    /// `shutdown` is cancelled or every handle is dropped. Needs a Tokio
    /// runtime.
    pub fn spawn(
        webhooks: Vec<WebhookConfig>,
        settings: NotifySettings,
        dashboard_url: Option<String>,
        shutdown: CancellationToken,
    ) -> Notifier {
        let receivers: Vec<Arc<Receiver>> = webhooks
            .iter()
            .enumerate()
            .filter_map(|(i, w)| match w.receiver(i) {
                Ok(r) => Some(Arc::new(r)),
                Err(e) => {
                    error!(error = %e, "webhook left out");
                    None
                }
            })
            .collect();
        let client = match reqwest::Client::builder()
            .timeout(settings.timeout)
            .user_agent(concat!("fleetwatch/", env!("CARGO_PKG_VERSION")))
            .build()
        {
            Ok(c) => Some(c),
            Err(e) => {
                error!(error = %e, "cannot build the HTTP client: no webhook will be sent");
                None
            }
        };
        let shared = Arc::new(Shared {
            client,
            receivers,
            max_attempts: settings.max_attempts.max(1),
            retry_backoff: settings.retry_backoff,
            dashboard_url: dashboard_url
                .map(|u| u.trim_end_matches('/').to_owned())
                .filter(|u| !u.is_empty()),
            counters: Counters::default(),
            shutdown,
            tasks: TaskTracker::new(),
        });
        let tx = (!shared.receivers.is_empty()).then(|| {
            let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
            let queues = shared
                .receivers
                .iter()
                .map(|r| {
                    let (qtx, qrx) = mpsc::channel(RECEIVER_QUEUE_CAPACITY);
                    shared
                        .tasks
                        .spawn(deliver_loop(shared.clone(), r.clone(), qrx));
                    (r.clone(), qtx)
                })
                .collect();
            let dispatcher = Dispatcher {
                shared: shared.clone(),
                repeat_interval: settings.repeat_interval,
                queues,
                firing: HashMap::new(),
            };
            shared.tasks.spawn(dispatcher.run(rx));
            tx
        });
        shared.tasks.close();
        Notifier { tx, shared }
    }

    /// Queues `t` for the webhooks if its `notify` is set. Never waits: when
    /// the queue is full the transition is dropped and counted.
    pub fn notify(&self, t: &Transition) {
        let Some(tx) = &self.tx else { return };
        if !t.notify {
            return;
        }
        match tx.try_send(t.clone()) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(t)) => {
                self.shared
                    .dropped(&t.rule, &t.host_id, "notification queue");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                debug!(rule = %t.rule, host = %t.host_id, "notifier stopped: not sent");
            }
        }
    }

    /// Sends a test notification to every webhook (retrying like any other)
    /// and returns each one's name and outcome.
    pub async fn send_test(&self) -> Vec<(String, Result<(), String>)> {
        let payload = WebhookPayload::test(self.shared.dashboard_url.as_deref());
        let shared = &self.shared;
        let sends = shared.receivers.iter().map(|r| {
            let payload = &payload;
            async move {
                let outcome = shared.deliver(r, payload).await.map_err(|e| e.to_string());
                (r.label.clone(), outcome)
            }
        });
        futures_util::future::join_all(sends).await
    }

    /// The names of the webhooks in use, as logs and `send_test` show them.
    pub fn receiver_names(&self) -> Vec<String> {
        self.shared
            .receivers
            .iter()
            .map(|r| r.label.clone())
            .collect()
    }

    pub fn stats(&self) -> NotifyStats {
        let c = &self.shared.counters;
        NotifyStats {
            sent: c.sent.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
        }
    }

    /// Resolves once the tasks have stopped (after shutdown).
    pub async fn stopped(&self) {
        self.shared.tasks.wait().await;
    }
}

impl Shared {
    fn dropped(&self, rule: &str, host: &str, queue: &str) {
        let n = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        // Log the first drops and then every so often, not each of a flood.
        if n.is_power_of_two() || n.is_multiple_of(1000) {
            warn!(
                queue,
                dropped = n,
                rule,
                host,
                "queue full: notification dropped"
            );
        }
    }
}
