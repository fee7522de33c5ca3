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

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::error::Error as _;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize, Serializer};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use super::instance::{AlertState, Transition};
use super::rules::{Severity, duration_str};
use crate::model::{TimestampMs, now_ms};

/// Transitions waiting for the dispatcher.
const QUEUE_CAPACITY: usize = 1024;
/// Messages waiting for one receiver (which may be retrying).
const RECEIVER_QUEUE_CAPACITY: usize = 256;
/// No retry waits longer than this, whatever the backoff says.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// One `[[alerts.webhooks]]` entry.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Shown in logs and test results; `webhooks[<index>]` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// An http or https URL.
    pub url: String,
    /// One extra request header, `Name: value`, e.g. for a token.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "redacted_header"
    )]
    pub header: Option<String>,
    /// The least severity this receiver hears about.
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
}

fn default_min_severity() -> Severity {
    Severity::Warning
}

/// Header values usually carry a token: never print or serialize them.
fn redacted_header<S: Serializer>(header: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match header {
        Some(h) => s.serialize_str(&redact(h)),
        None => s.serialize_none(),
    }
}

fn redact(header: &str) -> String {
    match header.split_once(':') {
        Some((name, _)) => format!("{}: <redacted>", name.trim()),
        None => "<redacted>".to_owned(),
    }
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("header", &self.header.as_deref().map(redact))
            .field("min_severity", &self.min_severity)
            .finish()
    }
}

impl WebhookConfig {
    /// How logs and errors name the entry at `index`.
    fn label(&self, index: usize) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None => format!("webhooks[{index}]"),
        }
    }

    /// Checks the entry at `index` of `[[alerts.webhooks]]`.
    pub fn validate(&self, index: usize) -> Result<(), NotifyConfigError> {
        self.receiver(index).map(drop)
    }

    fn receiver(&self, index: usize) -> Result<Receiver, NotifyConfigError> {
        let fail = |key, reason| NotifyConfigError::Webhook {
            webhook: match &self.name {
                Some(name) => format!("[{index}] ({name:?})"),
                None => format!("[{index}]"),
            },
            key,
            reason,
        };
        if self.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            return Err(fail("name", "must not be empty".to_owned()));
        }
        let url = parse_url(&self.url).map_err(|r| fail("url", r))?;
        let header = match &self.header {
            Some(h) => Some(parse_header(h).map_err(|r| fail("header", r))?),
            None => None,
        };
        Ok(Receiver {
            label: self.label(index),
            url,
            header,
            min_severity: self.min_severity,
        })
    }
}

/// Checks every webhook entry, and that names are unique.
pub fn validate_webhooks(webhooks: &[WebhookConfig]) -> Result<(), NotifyConfigError> {
    for (i, w) in webhooks.iter().enumerate() {
        w.validate(i)?;
        if let Some(name) = &w.name
            && webhooks[..i].iter().any(|o| o.name.as_ref() == Some(name))
        {
            return Err(NotifyConfigError::Webhook {
                webhook: format!("[{i}] ({name:?})"),
                key: "name",
                reason: "is used by an earlier webhook".to_owned(),
            });
        }
    }
    Ok(())
}

fn parse_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("is not a URL ({e})"))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(format!("must be an http or https URL, not {other}")),
    }
}

fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), String> {
    let Some((name, value)) = text.split_once(':') else {
        return Err(
            "must look like `Name: value`, e.g. `Authorization: Bearer <token>`".to_owned(),
        );
    };
    let (name, value) = (name.trim(), value.trim());
    let name = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("`{name}` is not a valid header name"))?;
    if [CONTENT_TYPE, CONTENT_LENGTH, HOST].contains(&name) {
        return Err(format!(
            "`{name}` is set by fleetwatch and cannot be replaced"
        ));
    }
    if value.is_empty() {
        return Err(format!("`{name}` has an empty value"));
    }
    let mut value = HeaderValue::from_str(value)
        .map_err(|_| format!("`{name}` has a value with characters not allowed in a header"))?;
    value.set_sensitive(true);
    Ok((name, value))
}

/// `[alerts.notify]`: settings shared by all webhooks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifySettings {
    /// Re-send alerts still firing this often; zero turns repeats off.
    #[serde(with = "duration_str")]
    pub repeat_interval: Duration,
    /// Limit on one HTTP attempt, connecting included.
    #[serde(with = "duration_str")]
    pub timeout: Duration,
    /// Attempts per message, the first included.
    pub max_attempts: u32,
    /// Delay before the first retry; doubled for each later one.
    #[serde(with = "duration_str")]
    pub retry_backoff: Duration,
}

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            repeat_interval: Duration::from_secs(4 * 3600),
            timeout: Duration::from_secs(5),
            max_attempts: 5,
            retry_backoff: Duration::from_millis(500),
        }
    }
}

impl NotifySettings {
    pub fn validate(&self) -> Result<(), NotifyConfigError> {
        let fail = |key, reason: &str| {
            Err(NotifyConfigError::Settings {
                key,
                reason: reason.to_owned(),
            })
        };
        if self.timeout.is_zero() {
            return fail("timeout", "must be more than 0s");
        }
        if !(1..=10).contains(&self.max_attempts) {
            return fail("max_attempts", "must be between 1 and 10");
        }
        if self.retry_backoff > MAX_BACKOFF {
            return fail("retry_backoff", "must be at most 1m");
        }
        Ok(())
    }
}

/// A notification config error, naming the entry and the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyConfigError {
    #[error("alerts.webhooks{webhook}: `{key}` {reason}")]
    Webhook {
        /// `[index]`, plus the name when there is one.
        webhook: String,
        key: &'static str,
        reason: String,
    },
    #[error("alerts.notify: `{key}` {reason}")]
    Settings { key: &'static str, reason: String },
}

/// Whether a notification reports an alert firing or its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyState {
    Firing,
    Resolved,
}

/// The JSON body POSTed to a webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookPayload {
    pub host_id: String,
    pub rule: String,
    pub severity: Severity,
    pub state: NotifyState,
    /// Mount point or pool name; empty for host-wide rules.
    pub scope: String,
    pub value: f64,
    pub threshold: f64,
    pub peak: f64,
    pub message: String,
    pub started_at_ms: TimestampMs,
    /// When the transition happened (for repeats: the original one).
    pub at_ms: TimestampMs,
    pub previous_severity: Option<Severity>,
    /// The host on the dashboard, when a dashboard URL is known.
    pub link: Option<String>,
    /// Sent by `--test-webhook` or the test API, not by an alert.
    pub test: bool,
    /// A reminder that the alert is still firing (`repeat_interval`).
    pub repeat: bool,
}

impl WebhookPayload {
    fn new(t: &Transition, state: NotifyState, dashboard: Option<&str>, repeat: bool) -> Self {
        Self {
            host_id: t.host_id.clone(),
            rule: t.rule.clone(),
            severity: t.severity,
            state,
            scope: t.scope.clone(),
            value: t.value,
            threshold: t.threshold,
            peak: t.peak,
            message: t.message.clone(),
            started_at_ms: t.started_at_ms,
            at_ms: t.at_ms,
            previous_severity: t.previous_severity,
            link: dashboard.map(|d| format!("{d}/#/host/{}", encode_component(&t.host_id))),
            test: false,
            repeat,
        }
    }

    fn test(dashboard: Option<&str>) -> Self {
        let now = now_ms();
        Self {
            host_id: "test".to_owned(),
            rule: "test".to_owned(),
            severity: Severity::Critical,
            state: NotifyState::Firing,
            scope: String::new(),
            value: 0.0,
            threshold: 0.0,
            peak: 0.0,
            message: "fleetwatch test notification".to_owned(),
            started_at_ms: now,
            at_ms: now,
            previous_severity: None,
            link: dashboard.map(|d| format!("{d}/")),
            test: true,
            repeat: false,
        }
    }
}

/// Like JavaScript's `encodeURIComponent`, which the dashboard's links use.
fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

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

/// A validated webhook.
struct Receiver {
    label: String,
    url: Url,
    header: Option<(HeaderName, HeaderValue)>,
    min_severity: Severity,
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

/// Firing alerts are tracked by rule, host and scope.
type Key = (String, String, String);

struct Firing {
    transition: Transition,
    /// The highest severity it fired at, so a receiver told about it hears
    /// of its de-escalation and resolution too.
    max_severity: Severity,
    next_repeat: Option<Instant>,
}

struct Dispatcher {
    shared: Arc<Shared>,
    repeat_interval: Duration,
    queues: Vec<(Arc<Receiver>, mpsc::Sender<Arc<WebhookPayload>>)>,
    firing: HashMap<Key, Firing>,
}

impl Dispatcher {
    async fn run(mut self, mut rx: mpsc::Receiver<Transition>) {
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

/// Delivers one receiver's messages in order until shutdown.
async fn deliver_loop(
    shared: Arc<Shared>,
    r: Arc<Receiver>,
    mut rx: mpsc::Receiver<Arc<WebhookPayload>>,
) {
    loop {
        let payload = tokio::select! {
            biased;
            () = shared.shutdown.cancelled() => break,
            p = rx.recv() => match p {
                Some(p) => p,
                None => break,
            },
        };
        match shared.deliver(&r, &payload).await {
            Ok(()) => {
                shared.counters.sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(DeliveryError::Cancelled) => {
                info!(receiver = %r.label, rule = %payload.rule, host = %payload.host_id,
                    "shutting down: notification in flight abandoned");
                break;
            }
            Err(e) => {
                shared.counters.failed.fetch_add(1, Ordering::Relaxed);
                error!(receiver = %r.label, rule = %payload.rule, host = %payload.host_id,
                    error = %e, "notification not delivered");
            }
        }
    }
    if !rx.is_empty() {
        info!(receiver = %r.label, queued = rx.len(), "shutting down: queued notifications dropped");
    }
}

#[derive(Debug, thiserror::Error)]
enum DeliveryError {
    #[error("shutting down")]
    Cancelled,
    #[error("no HTTP client (see the error logged at start)")]
    NoClient,
    #[error("gave up after {attempts} attempt(s): {last}")]
    Failed { attempts: u32, last: AttemptError },
}

#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error("receiver answered {0}")]
    Status(StatusCode),
    #[error("{0}")]
    Request(String),
}

impl AttemptError {
    fn retryable(&self) -> bool {
        match self {
            Self::Status(s) => s.is_server_error() || *s == StatusCode::TOO_MANY_REQUESTS,
            Self::Request(_) => true,
        }
    }

    /// The error and its causes, without the URL (which may hold a secret).
    fn request(e: reqwest::Error) -> Self {
        let e = e.without_url();
        let mut text = if e.is_timeout() {
            "timed out".to_owned()
        } else {
            e.to_string()
        };
        let mut source = e.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        Self::Request(text)
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

    /// POSTs `payload` to `r`, retrying with backoff, until accepted, a
    /// permanent failure, the last attempt or shutdown.
    async fn deliver(&self, r: &Receiver, payload: &WebhookPayload) -> Result<(), DeliveryError> {
        let Some(client) = &self.client else {
            return Err(DeliveryError::NoClient);
        };
        let mut attempt = 1;
        loop {
            let outcome = tokio::select! {
                biased;
                () = self.shutdown.cancelled() => return Err(DeliveryError::Cancelled),
                o = post(client, r, payload) => o,
            };
            let err = match outcome {
                Ok(()) => {
                    debug!(receiver = %r.label, attempt, rule = %payload.rule,
                        host = %payload.host_id, "notification delivered");
                    return Ok(());
                }
                Err(e) => e,
            };
            let retry = err.retryable() && attempt < self.max_attempts;
            warn!(receiver = %r.label, attempt, max_attempts = self.max_attempts, retry,
                error = %err, rule = %payload.rule, "webhook attempt failed");
            if !retry {
                return Err(DeliveryError::Failed {
                    attempts: attempt,
                    last: err,
                });
            }
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => return Err(DeliveryError::Cancelled),
                () = tokio::time::sleep(backoff(self.retry_backoff, attempt)) => {}
            }
            attempt += 1;
        }
    }
}

async fn post(
    client: &reqwest::Client,
    r: &Receiver,
    payload: &WebhookPayload,
) -> Result<(), AttemptError> {
    let mut request = client.post(r.url.clone()).json(payload);
    if let Some((name, value)) = &r.header {
        request = request.header(name, value);
    }
    let response = request.send().await.map_err(AttemptError::request)?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(AttemptError::Status(status))
    }
}

/// The wait after failed attempt `attempt` (1-based): `base` doubled per
/// attempt, then spread by ±25% so receivers coming back are not hit by
/// every aggregator at once.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let doubled = base.saturating_mul(1 << attempt.saturating_sub(1).min(16));
    let delay = doubled.min(MAX_BACKOFF);
    // A fresh RandomState is randomly keyed: enough randomness for jitter.
    let random = RandomState::new().hash_one(attempt);
    let fraction = (random >> 11) as f64 / (1u64 << 53) as f64;
    delay.mul_f64(0.75 + 0.5 * fraction)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::AtomicU64;

    use axum::extract::State;
    use axum::http::HeaderMap;
    use axum::routing::post;
    use axum::{Json, Router};
    use serde_json::{Value, json};

    use super::*;

    /// A webhook receiver started by the test, recording what it accepts.
    #[derive(Clone, Default)]
    struct Hook {
        received: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
        attempts: Arc<AtomicU64>,
        /// Answer 500 to this many attempts first.
        fail_first: u64,
        /// Answer this to every attempt.
        always: Option<StatusCode>,
        /// Never answer.
        hang: bool,
    }

    impl Hook {
        async fn start(self) -> (String, Hook) {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let app = Router::new()
                .route("/hook", post(receive))
                .with_state(self.clone());
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            (format!("http://{addr}/hook"), self)
        }

        fn bodies(&self) -> Vec<Value> {
            let received = self.received.lock().unwrap();
            received.iter().map(|(_, b)| b.clone()).collect()
        }

        fn attempts(&self) -> u64 {
            self.attempts.load(Ordering::SeqCst)
        }
    }

    async fn receive(
        State(hook): State<Hook>,
        headers: HeaderMap,
        Json(body): Json<Value>,
    ) -> axum::http::StatusCode {
        let n = hook.attempts.fetch_add(1, Ordering::SeqCst) + 1;
        if hook.hang {
            std::future::pending::<()>().await;
        }
        if let Some(status) = hook.always {
            return axum::http::StatusCode::from_u16(status.as_u16()).unwrap();
        }
        if n <= hook.fail_first {
            return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
        }
        hook.received.lock().unwrap().push((headers, body));
        axum::http::StatusCode::NO_CONTENT
    }

    /// A URL nothing listens on.
    fn dead_url() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        format!("http://{addr}/hook")
    }

    fn webhook(url: &str) -> WebhookConfig {
        WebhookConfig {
            name: None,
            url: url.to_owned(),
            header: None,
            min_severity: Severity::Warning,
        }
    }

    fn fast() -> NotifySettings {
        NotifySettings {
            repeat_interval: Duration::ZERO,
            timeout: Duration::from_secs(5),
            max_attempts: 5,
            retry_backoff: Duration::from_millis(20),
        }
    }

    fn spawn(
        webhooks: Vec<WebhookConfig>,
        settings: NotifySettings,
    ) -> (Notifier, CancellationToken) {
        let shutdown = CancellationToken::new();
        let n = Notifier::spawn(webhooks, settings, None, shutdown.clone());
        (n, shutdown)
    }

    fn transition(rule: &str, to: AlertState, severity: Severity) -> Transition {
        Transition {
            rule: rule.to_owned(),
            host_id: "web-1".to_owned(),
            scope: String::new(),
            from: if to == AlertState::Firing {
                AlertState::Pending
            } else {
                AlertState::Firing
            },
            to,
            severity,
            previous_severity: None,
            value: 95.5,
            threshold: 90.0,
            peak: 97.0,
            started_at_ms: 1_000,
            at_ms: 61_000,
            silenced: false,
            notify: true,
            message: format!("{rule} on web-1"),
        }
    }

    /// Polls `cond` until it holds, failing after a generous deadline.
    async fn wait_for(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn rules(bodies: &[Value]) -> Vec<(String, String)> {
        bodies
            .iter()
            .map(|b| {
                let s = |k: &str| b[k].as_str().unwrap_or_default().to_owned();
                (s("rule"), s("state"))
            })
            .collect()
    }

    #[tokio::test]
    async fn firing_and_resolved_arrive_with_fields_and_header() {
        let (url, hook) = Hook::default().start().await;
        let mut config = webhook(&url);
        config.header = Some("Authorization: Bearer xyz".to_owned());
        let shutdown = CancellationToken::new();
        let dash = Some("http://dash.example:8080/".to_owned());
        let n = Notifier::spawn(vec![config], fast(), dash, shutdown.clone());

        let mut firing = transition("cpu", AlertState::Firing, Severity::Critical);
        firing.host_id = "web 1".to_owned();
        firing.previous_severity = Some(Severity::Warning);
        n.notify(&firing);
        let mut resolved = transition("cpu", AlertState::Resolved, Severity::Critical);
        resolved.host_id = "web 1".to_owned();
        n.notify(&resolved);
        wait_for("two notifications", || hook.bodies().len() == 2).await;

        let received = hook.received.lock().unwrap().clone();
        let (headers, body) = &received[0];
        assert_eq!(headers["authorization"], "Bearer xyz");
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(
            *body,
            json!({
                "host_id": "web 1", "rule": "cpu", "severity": "critical",
                "state": "firing", "scope": "", "value": 95.5, "threshold": 90.0,
                "peak": 97.0, "message": "cpu on web-1", "started_at_ms": 1000,
                "at_ms": 61000, "previous_severity": "warning",
                "link": "http://dash.example:8080/#/host/web%201",
                "test": false, "repeat": false
            })
        );
        assert_eq!(received[1].1["state"], "resolved");
        assert_eq!(received[1].1["previous_severity"], Value::Null);
        wait_for("stats", || n.stats().sent == 2).await;
        assert_eq!(
            n.stats(),
            NotifyStats {
                sent: 2,
                failed: 0,
                dropped: 0
            }
        );
        shutdown.cancel();
    }

    #[tokio::test]
    async fn link_is_null_without_a_dashboard_url() {
        let (url, hook) = Hook::default().start().await;
        let (n, _shutdown) = spawn(vec![webhook(&url)], fast());
        n.notify(&transition("cpu", AlertState::Firing, Severity::Warning));
        wait_for("the notification", || hook.bodies().len() == 1).await;
        assert_eq!(hook.bodies()[0]["link"], Value::Null);
    }

    #[tokio::test]
    async fn server_errors_are_retried_until_accepted() {
        let hook = Hook {
            fail_first: 2,
            ..Hook::default()
        };
        let (url, hook) = hook.start().await;
        let (n, _shutdown) = spawn(vec![webhook(&url)], fast());
        n.notify(&transition("cpu", AlertState::Firing, Severity::Critical));
        wait_for("the notification", || hook.bodies().len() == 1).await;
        assert_eq!(hook.attempts(), 3);
        wait_for("stats", || n.stats().sent == 1).await;
        assert_eq!(n.stats().failed, 0);
    }

    #[tokio::test]
    async fn client_errors_are_not_retried() {
        let hook = Hook {
            always: Some(StatusCode::BAD_REQUEST),
            ..Hook::default()
        };
        let (url, hook) = hook.start().await;
        let (n, _shutdown) = spawn(vec![webhook(&url)], fast());
        n.notify(&transition("cpu", AlertState::Firing, Severity::Critical));
        wait_for("the failure", || n.stats().failed == 1).await;
        assert_eq!(hook.attempts(), 1);
    }

    #[tokio::test]
    async fn too_many_requests_is_retried_up_to_max_attempts() {
        let hook = Hook {
            always: Some(StatusCode::TOO_MANY_REQUESTS),
            ..Hook::default()
        };
        let (url, hook) = hook.start().await;
        let settings = NotifySettings {
            max_attempts: 3,
            ..fast()
        };
        let (n, _shutdown) = spawn(vec![webhook(&url)], settings);
        n.notify(&transition("cpu", AlertState::Firing, Severity::Critical));
        wait_for("the failure", || n.stats().failed == 1).await;
        assert_eq!(hook.attempts(), 3);
    }

    #[tokio::test]
    async fn min_severity_filters_per_receiver() {
        let (all_url, all) = Hook::default().start().await;
        let (crit_url, crit) = Hook::default().start().await;
        let mut critical_only = webhook(&crit_url);
        critical_only.min_severity = Severity::Critical;
        let (n, _shutdown) = spawn(vec![webhook(&all_url), critical_only], fast());

        n.notify(&transition("memory", AlertState::Firing, Severity::Warning));
        n.notify(&transition(
            "memory",
            AlertState::Resolved,
            Severity::Warning,
        ));
        // Escalates, de-escalates, resolves: a receiver told of the critical
        // alert hears the rest of its story.
        n.notify(&transition("disk", AlertState::Firing, Severity::Warning));
        let mut up = transition("disk", AlertState::Firing, Severity::Critical);
        up.previous_severity = Some(Severity::Warning);
        n.notify(&up);
        let mut down = transition("disk", AlertState::Firing, Severity::Warning);
        down.previous_severity = Some(Severity::Critical);
        n.notify(&down);
        n.notify(&transition("disk", AlertState::Resolved, Severity::Warning));
        n.notify(&transition("cpu", AlertState::Firing, Severity::Critical));

        wait_for("all at the catch-all", || all.bodies().len() == 7).await;
        wait_for("the last at critical-only", || {
            rules(&crit.bodies())
                .last()
                .is_some_and(|(r, _)| r == "cpu")
        })
        .await;
        // Each receiver gets its messages in order, so nothing else can come.
        let got = rules(&crit.bodies());
        let want = [
            ("disk", "firing"),
            ("disk", "firing"),
            ("disk", "resolved"),
            ("cpu", "firing"),
        ]
        .map(|(r, s)| (r.to_owned(), s.to_owned()));
        assert_eq!(got, want);
        assert_eq!(crit.bodies()[0]["severity"], "critical");
    }

    #[tokio::test]
    async fn transitions_without_notify_are_not_sent() {
        let (url, hook) = Hook::default().start().await;
        let (n, _shutdown) = spawn(vec![webhook(&url)], fast());
        let mut quiet = transition("silenced", AlertState::Firing, Severity::Critical);
        quiet.notify = false;
        quiet.silenced = true;
        n.notify(&quiet);
        n.notify(&transition(
            "marker",
            AlertState::Firing,
            Severity::Critical,
        ));
        wait_for("the marker", || !hook.bodies().is_empty()).await;
        assert_eq!(
            rules(&hook.bodies()),
            [("marker".to_owned(), "firing".to_owned())]
        );
    }

    #[tokio::test]
    async fn notify_never_blocks_and_counts_drops() {
        let hook = Hook {
            hang: true,
            ..Hook::default()
        };
        let (url, hook) = hook.start().await;
        let settings = NotifySettings {
            timeout: Duration::from_millis(200),
            ..fast()
        };
        let (n, shutdown) = spawn(vec![webhook(&url)], settings);
        let t = transition("cpu", AlertState::Firing, Severity::Critical);
        let started = std::time::Instant::now();
        for _ in 0..5000 {
            n.notify(&t);
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        // The single-threaded test runtime ran nothing else meanwhile.
        assert_eq!(n.stats().dropped, 5000 - QUEUE_CAPACITY as u64);
        wait_for("an attempt", || hook.attempts() >= 1).await;

        // Shutdown abandons the hanging attempt and its retries promptly.
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(2), n.stopped())
            .await
            .unwrap();
        n.notify(&t);
    }

    #[tokio::test]
    async fn repeats_while_firing_and_stops_after_resolution() {
        let (url, hook) = Hook::default().start().await;
        let interval = Duration::from_millis(200);
        let settings = NotifySettings {
            repeat_interval: interval,
            ..fast()
        };
        let (n, _shutdown) = spawn(vec![webhook(&url)], settings);
        n.notify(&transition("cpu", AlertState::Firing, Severity::Critical));
        wait_for("two repeats", || hook.bodies().len() >= 3).await;
        n.notify(&transition("cpu", AlertState::Resolved, Severity::Critical));
        wait_for("the resolution", || {
            hook.bodies().iter().any(|b| b["state"] == "resolved")
        })
        .await;

        let bodies = hook.bodies();
        let (resolution, firing) = bodies.split_last().unwrap();
        assert_eq!(resolution["repeat"], false);
        assert_eq!(firing[0]["repeat"], false);
        for b in &firing[1..] {
            assert_eq!(
                (&b["state"], &b["repeat"], &b["at_ms"]),
                (&json!("firing"), &json!(true), &json!(61000))
            );
        }
        // Nothing is due any more: leave room for several intervals and
        // check that no repeat came.
        tokio::time::sleep(interval * 3).await;
        assert_eq!(hook.bodies().len(), bodies.len());
    }

    #[tokio::test]
    async fn a_dead_receiver_does_not_delay_the_others() {
        let (url, hook) = Hook::default().start().await;
        let settings = NotifySettings {
            retry_backoff: Duration::from_secs(1),
            ..fast()
        };
        let (n, shutdown) = spawn(vec![webhook(&dead_url()), webhook(&url)], settings);
        let started = std::time::Instant::now();
        n.notify(&transition("cpu", AlertState::Firing, Severity::Critical));
        n.notify(&transition("disk", AlertState::Firing, Severity::Critical));
        wait_for("both at the good receiver", || hook.bodies().len() == 2).await;
        // The dead one needs about 15 s to give up; the good one did not wait.
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(n.stats().failed, 0);
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(2), n.stopped())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn send_test_reports_each_receiver() {
        let (url, hook) = Hook::default().start().await;
        let mut good = webhook(&url);
        good.name = Some("good".to_owned());
        let settings = NotifySettings {
            max_attempts: 2,
            ..fast()
        };
        let (n, _shutdown) = spawn(vec![good, webhook(&dead_url())], settings);
        let results = n.send_test().await;
        assert_eq!(results.len(), 2);
        assert_eq!(results[0], ("good".to_owned(), Ok(())));
        assert_eq!(results[1].0, "webhooks[1]");
        let err = results[1].1.as_ref().unwrap_err();
        assert!(err.starts_with("gave up after 2 attempt(s)"), "{err}");

        let bodies = hook.bodies();
        assert_eq!(bodies.len(), 1);
        assert_eq!(
            (
                &bodies[0]["test"],
                &bodies[0]["rule"],
                &bodies[0]["message"]
            ),
            (
                &json!(true),
                &json!("test"),
                &json!("fleetwatch test notification")
            )
        );
        assert_eq!(n.stats(), NotifyStats::default());
    }

    /// The `[alerts]` keys this module owns, as the config nests them.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Section {
        #[serde(default)]
        webhooks: Vec<WebhookConfig>,
        #[serde(default)]
        notify: NotifySettings,
    }

    fn check(text: &str) -> Result<Section, String> {
        let s: Section = toml::from_str(text).map_err(|e| e.to_string())?;
        validate_webhooks(&s.webhooks).map_err(|e| e.to_string())?;
        s.notify.validate().map_err(|e| e.to_string())?;
        Ok(s)
    }

    #[test]
    fn a_full_config_parses_with_defaults() {
        let s = check(
            r#"
            [[webhooks]]
            url = "http://localhost:9000/hook"

            [[webhooks]]
            name = "pager"
            url = "https://hooks.example.com/x"
            header = "Authorization: Bearer xyz"
            min_severity = "critical"

            [notify]
            repeat_interval = "1h"
            "#,
        )
        .unwrap();
        assert_eq!(s.webhooks[0].min_severity, Severity::Warning);
        assert_eq!(s.webhooks[1].min_severity, Severity::Critical);
        assert_eq!(s.notify.repeat_interval, Duration::from_secs(3600));
        assert_eq!(s.notify.timeout, Duration::from_secs(5));
        assert_eq!(s.notify.max_attempts, 5);
        let empty = check("").unwrap();
        assert!(empty.webhooks.is_empty());
        assert_eq!(empty.notify, NotifySettings::default());
        assert_eq!(empty.notify.repeat_interval, Duration::from_secs(4 * 3600));
    }

    #[test]
    fn invalid_configs_name_the_webhook_and_key() {
        let two = |second: &str| {
            check(&format!(
                "[[webhooks]]\nurl = \"http://a/\"\n[[webhooks]]\n{second}\n"
            ))
            .unwrap_err()
        };
        let cases = [
            (
                two("name = \"pager\"\nurl = \"ftp://a/\""),
                "alerts.webhooks[1] (\"pager\"): `url` must be an http or https URL, not ftp",
            ),
            (
                two("url = \"not a url\""),
                "alerts.webhooks[1]: `url` is not a URL",
            ),
            (
                two("url = \"http://a/\"\nheader = \"Bearer xyz\""),
                "alerts.webhooks[1]: `header` must look like `Name: value`",
            ),
            (
                two("url = \"http://a/\"\nheader = \"Bad Name: x\""),
                "alerts.webhooks[1]: `header` `Bad Name` is not a valid header name",
            ),
            (
                two("url = \"http://a/\"\nheader = \"X-Token:\""),
                "`header` `x-token` has an empty value",
            ),
            (
                two("url = \"http://a/\"\nheader = \"Content-Type: text/plain\""),
                "`header` `content-type` is set by fleetwatch",
            ),
            (
                two("url = \"http://a/\"\nname = \"\""),
                "alerts.webhooks[1] (\"\"): `name` must not be empty",
            ),
            (
                check("[notify]\nmax_attempts = 0").unwrap_err(),
                "alerts.notify: `max_attempts` must be between 1 and 10",
            ),
            (
                check("[notify]\ntimeout = \"0s\"").unwrap_err(),
                "alerts.notify: `timeout` must be more than 0s",
            ),
        ];
        for (err, want) in cases {
            assert!(err.contains(want), "{err:?} lacks {want:?}");
        }
        let dup = "[[webhooks]]\nname = \"a\"\nurl = \"http://a/\"\n\
                   [[webhooks]]\nname = \"a\"\nurl = \"http://b/\"";
        assert_eq!(
            check(dup).unwrap_err(),
            "alerts.webhooks[1] (\"a\"): `name` is used by an earlier webhook"
        );
        // Serde's own errors point at the key.
        for (text, key) in [
            (
                "[[webhooks]]\nurl = \"http://a/\"\nmin_severity = \"info\"",
                "min_severity",
            ),
            ("[[webhooks]]\nurl = \"http://a/\"\nsecret = 1", "secret"),
            ("[[webhooks]]\nname = \"a\"", "url"),
            ("[notify]\nrepeat_interval = \"soon\"", "repeat_interval"),
            ("[notify]\nrepeat = \"1h\"", "repeat"),
        ] {
            let err = check(text).unwrap_err();
            assert!(err.contains(key), "{err:?} lacks {key:?}");
        }
    }

    #[test]
    fn header_values_are_not_shown() {
        let mut w = webhook("http://a/");
        w.header = Some("Authorization: Bearer xyz".to_owned());
        let shown = format!("{w:?} {}", serde_json::to_string(&w).unwrap());
        assert!(!shown.contains("xyz"), "{shown}");
        assert!(shown.contains("Authorization: <redacted>"), "{shown}");
    }

    #[test]
    fn backoff_doubles_with_jitter() {
        let base = Duration::from_millis(500);
        for (attempt, nominal) in [(1, 500), (2, 1000), (3, 2000), (4, 4000)] {
            let d = backoff(base, attempt).as_millis();
            assert!(
                (nominal * 3 / 4..=nominal * 5 / 4).contains(&d),
                "{attempt}: {d}"
            );
        }
        assert!(backoff(base, 30) <= MAX_BACKOFF.mul_f64(1.25));
    }

    #[test]
    fn host_ids_are_encoded_like_the_dashboard_does() {
        assert_eq!(encode_component("web-1.a_b"), "web-1.a_b");
        assert_eq!(encode_component("a b/c#é"), "a%20b%2Fc%23%C3%A9");
    }
}
