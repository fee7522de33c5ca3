//! The JSON body POSTed to a webhook, built from a transition (or for a
//! test), with a link to the host on the dashboard.

use serde::{Deserialize, Serialize};

use crate::alerts::instance::Transition;
use crate::alerts::rules::Severity;
use crate::model::{TimestampMs, now_ms};

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
    pub(super) fn new(
        t: &Transition,
        state: NotifyState,
        dashboard: Option<&str>,
        repeat: bool,
    ) -> Self {
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

    pub(super) fn test(dashboard: Option<&str>) -> Self {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ids_are_encoded_like_the_dashboard_does() {
        assert_eq!(encode_component("web-1.a_b"), "web-1.a_b");
        assert_eq!(encode_component("a b/c#é"), "a%20b%2Fc%23%C3%A9");
    }
}
