//! The notifier end to end: real HTTP receivers started by the test.

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

use reqwest::StatusCode;
use tokio::time::Instant;

use super::*;
use crate::alerts::instance::AlertState;
use crate::alerts::rules::Severity;

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

fn spawn(webhooks: Vec<WebhookConfig>, settings: NotifySettings) -> (Notifier, CancellationToken) {
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
