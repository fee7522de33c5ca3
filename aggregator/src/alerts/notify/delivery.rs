//! HTTP delivery to one receiver: its queue drained in order, each message
//! POSTed with retries (connection errors, 5xx and 429) and a jittered,
//! doubling backoff, abandoned promptly on shutdown.

use std::collections::hash_map::RandomState;
use std::error::Error as _;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::StatusCode;
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use super::Shared;
use super::config::{MAX_BACKOFF, Receiver};
use super::payload::WebhookPayload;

/// Delivers one receiver's messages in order until shutdown.
pub(super) async fn deliver_loop(
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
pub(super) enum DeliveryError {
    #[error("shutting down")]
    Cancelled,
    #[error("no HTTP client (see the error logged at start)")]
    NoClient,
    #[error("gave up after {attempts} attempt(s): {last}")]
    Failed { attempts: u32, last: AttemptError },
}

#[derive(Debug, thiserror::Error)]
pub(super) enum AttemptError {
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
    /// POSTs `payload` to `r`, retrying with backoff, until accepted, a
    /// permanent failure, the last attempt or shutdown.
    pub(super) async fn deliver(
        &self,
        r: &Receiver,
        payload: &WebhookPayload,
    ) -> Result<(), DeliveryError> {
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
    use super::*;

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
}
