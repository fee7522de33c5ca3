//! End-to-end alerting: a real agent watching real worker processes, the
//! aggregator's alert engine, its API, and a real webhook receiver that
//! fails its first attempts.

#![allow(clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use fleetwatch_proto as wire;
use fleetwatch_tests::{
    Agent, Aggregator, RawStream, Workers, aggregator_config, hello_msg, now_ms, sample, wait_for,
};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

/// A body the receiver accepted, with its `X-Token` header.
type Delivery = (Value, Option<String>);

/// A webhook receiver on loopback that answers 500 to its first
/// `failures` requests and records every body it accepts.
#[derive(Clone, Default)]
struct Receiver {
    attempts: Arc<Mutex<u32>>,
    failures: u32,
    accepted: Arc<Mutex<Vec<Delivery>>>,
}

impl Receiver {
    async fn start(failures: u32) -> Result<(Self, SocketAddr)> {
        let receiver = Self {
            failures,
            ..Default::default()
        };
        let app = axum::Router::new()
            .route("/hook", post(Self::handle))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok((receiver, addr))
    }

    async fn handle(
        State(me): State<Self>,
        headers: HeaderMap,
        Json(body): Json<Value>,
    ) -> StatusCode {
        let attempt = {
            let mut attempts = me.attempts.lock().expect("lock");
            *attempts += 1;
            *attempts
        };
        if attempt <= me.failures {
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
        let token = headers
            .get("x-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        me.accepted.lock().expect("lock").push((body, token));
        StatusCode::OK
    }

    fn find(&self, state: &str, rule: &str) -> Option<Delivery> {
        self.accepted
            .lock()
            .expect("lock")
            .iter()
            .find(|(b, _)| b["state"] == state && b["rule"] == rule)
            .cloned()
    }
}

async fn alerts(agg: &Aggregator, query: &str) -> Vec<Value> {
    agg.get_ok(&format!("/api/alerts?{query}"))
        .await
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

#[tokio::test]
async fn short_worker_pool_alerts_through_api_and_webhook_and_resolves() -> Result<()> {
    let (receiver, hook) = Receiver::start(2).await?;
    let config = aggregator_config(&format!(
        "[[alerts.webhooks]]\nurl = \"http://{hook}/hook\"\nheader = \"X-Token: s3cret\"\n"
    ))?;
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("fw.db");
    let any = "127.0.0.1:0".parse()?;
    let agg = Aggregator::start_with(&db, any, any, config.clone()).await?;

    let mut workers = Workers::new(&Workers::unique_tag(11));
    workers.spawn()?;
    workers.spawn()?;
    let spec = format!("pool={}:3", workers.regex());
    let agent = Agent::start(
        &agg,
        &[
            "--aggregator",
            &agg.grpc_url(),
            "--interval",
            "200ms",
            "--host-id",
            "alerting",
            "--worker",
            &spec,
        ],
    )?;

    let firing = wait_for("critical worker_pool alert in the API", WAIT, || async {
        alerts(&agg, "state=firing&host=alerting")
            .await
            .into_iter()
            .find(|a| a["rule"] == "worker_pool" && a["scope"] == "pool")
    })
    .await?;
    assert_eq!(firing["severity"], "critical");
    assert_eq!(firing["value"], 2.0);
    assert_eq!(firing["threshold"], 3.0);
    assert_eq!(firing["state"], "firing");
    assert!(firing["ended_at_ms"].is_null());

    // The receiver failed twice; the third attempt got through.
    let (body, token) = wait_for("firing webhook", WAIT, || async {
        receiver.find("firing", "worker_pool")
    })
    .await?;
    assert!(*receiver.attempts.lock().expect("lock") >= 3);
    assert_eq!(token.as_deref(), Some("s3cret"));
    assert_eq!(body["host_id"], "alerting");
    assert_eq!(body["severity"], "critical");
    assert_eq!(body["value"], 2.0);
    assert_eq!(body["threshold"], 3.0);
    assert!(
        body["link"]
            .as_str()
            .is_some_and(|l| l.contains("alerting")),
        "{body}"
    );

    // A restart of the aggregator does not raise it a second time.
    agent.stop().await?;
    let (grpc, http) = (agg.grpc, agg.http);
    agg.stop().await?;
    let agg = Aggregator::start_with(&db, grpc, http, config).await?;
    let agent = Agent::start(
        &agg,
        &[
            "--aggregator",
            &agg.grpc_url(),
            "--interval",
            "200ms",
            "--host-id",
            "alerting",
            "--worker",
            &spec,
        ],
    )?;
    wait_for("samples after the restart", WAIT, || async {
        let hosts = agg.get_ok("/api/hosts").await.ok()?;
        (hosts[0]["online"] == true).then_some(())
    })
    .await?;
    let all = alerts(&agg, "state=all&host=alerting").await;
    let pool_alerts: Vec<&Value> = all.iter().filter(|a| a["rule"] == "worker_pool").collect();
    assert_eq!(pool_alerts.len(), 1, "{all:?}");
    assert_eq!(pool_alerts[0]["state"], "firing");

    // The third worker resolves it, in the API and at the receiver.
    workers.spawn()?;
    let resolved = wait_for("resolved worker_pool alert", WAIT, || async {
        alerts(&agg, "state=resolved&host=alerting")
            .await
            .into_iter()
            .find(|a| a["rule"] == "worker_pool")
    })
    .await?;
    assert!(resolved["ended_at_ms"].as_i64() >= resolved["fired_at_ms"].as_i64());
    assert!(
        alerts(&agg, "state=firing&host=alerting")
            .await
            .iter()
            .all(|a| a["rule"] != "worker_pool")
    );
    wait_for("resolved webhook", WAIT, || async {
        receiver.find("resolved", "worker_pool")
    })
    .await?;
    agent.stop().await?;
    agg.stop().await
}

#[tokio::test]
async fn a_stopped_agent_is_reported_offline_within_three_intervals() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agg = Aggregator::start(&dir.path().join("fw.db")).await?;
    let interval = Duration::from_millis(300);
    let agent = Agent::start(
        &agg,
        &[
            "--aggregator",
            &agg.grpc_url(),
            "--interval",
            "300ms",
            "--host-id",
            "vanishing",
        ],
    )?;
    wait_for("first sample", WAIT, || async {
        let current = agg
            .get_ok("/api/metrics/current?host=vanishing")
            .await
            .ok()?;
        (current.as_array()?.len() == 1).then_some(())
    })
    .await?;
    agent.stop().await?;
    let stopped = Instant::now();
    let offline = wait_for("offline alert", WAIT, || async {
        alerts(&agg, "state=firing&host=vanishing")
            .await
            .into_iter()
            .find(|a| a["rule"] == "offline")
    })
    .await?;
    let took = stopped.elapsed();
    assert_eq!(offline["severity"], "critical");
    // Three intervals of silence, evaluated once a second; the slack is for
    // the poll loop and a loaded CI machine.
    let limit = interval * 3 + Duration::from_secs(1) + Duration::from_millis(1500);
    assert!(took <= limit, "offline after {took:?}, limit {limit:?}");
    agg.stop().await
}

/// A hello and samples at a 300 ms interval with a worker group that is
/// satisfied, so the only alert the host can raise is `offline`.
fn quiet_hello(host: &str) -> wire::AgentMessage {
    let mut hello = hello_msg(host);
    if let Some(wire::agent_message::Msg::Hello(h)) = &mut hello.msg {
        h.interval_ms = 300;
        for g in &mut h.worker_groups {
            g.min_alive = 1;
        }
    }
    hello
}

fn quiet_batch(seq: u64) -> wire::Batch {
    let mut s = sample(now_ms(), 10.0);
    for g in &mut s.groups {
        g.min_alive = 1;
    }
    wire::Batch {
        seq,
        samples: vec![s],
        ..Default::default()
    }
}

/// Issue 12, item 4: after a restart, a host whose agent reconnects within
/// its grace raises nothing (no alert, no webhook, no history row), while a
/// host that never returns is offline once its grace is over, not before.
#[tokio::test]
async fn an_aggregator_restart_pages_nobody_for_hosts_that_come_back() -> Result<()> {
    let (receiver, hook) = Receiver::start(0).await?;
    let config = aggregator_config(&format!(
        "[alerts]\nrestart_grace = \"2s\"\n[[alerts.webhooks]]\nurl = \"http://{hook}/hook\"\n"
    ))?;
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("fw.db");
    let any = "127.0.0.1:0".parse()?;
    let agg = Aggregator::start_with(&db, any, any, config.clone()).await?;
    for host in ["comes-back", "never-back"] {
        let mut stream = RawStream::open(&agg, quiet_hello(host)).await?;
        stream.send(quiet_batch(1)).await?;
    }
    let (grpc, http) = (agg.grpc, agg.http);
    agg.stop().await?;
    // The outage: longer than three of the hosts' 300 ms intervals, so both
    // are long silent when the aggregator comes back.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let started = Instant::now();
    let agg = Aggregator::start_with(&db, grpc, http, config).await?;
    let mut back = RawStream::open(&agg, quiet_hello("comes-back")).await?;
    // The host that never returns is the control: offline after the grace.
    let mut seq = 1;
    let fired = loop {
        seq += 1;
        back.send(quiet_batch(seq)).await?;
        if let Some(delivery) = receiver.find("firing", "offline") {
            break delivery;
        }
        assert!(
            started.elapsed() < WAIT,
            "no offline webhook for never-back"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(fired.0["host_id"], "never-back", "{}", fired.0);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "offline {:?} after the start, inside the grace",
        started.elapsed()
    );
    // The one that came back keeps streaming past its grace and three
    // intervals more: nothing about it anywhere.
    let until = started + Duration::from_secs(3);
    while Instant::now() < until {
        seq += 1;
        back.send(quiet_batch(seq)).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        alerts(&agg, "state=all&host=comes-back").await,
        Vec::<Value>::new()
    );
    let deliveries = receiver.accepted.lock().expect("lock").clone();
    assert!(
        deliveries.iter().all(|(b, _)| b["host_id"] != "comes-back"),
        "{deliveries:?}"
    );
    let never = alerts(&agg, "state=all&host=never-back").await;
    assert_eq!(never.len(), 1, "{never:?}");
    agg.stop().await
}

#[tokio::test]
async fn rules_and_silences_through_the_api() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agg = Aggregator::start(&dir.path().join("fw.db")).await?;
    let rules = agg.get_ok("/api/alerts/rules").await?;
    let names: Vec<&str> = rules
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str())
        .collect();
    for builtin in [
        "cpu",
        "memory",
        "disk",
        "worker_pool",
        "offline",
        "crash_loop",
    ] {
        assert!(names.contains(&builtin), "{builtin} in {names:?}");
    }

    let client = reqwest::Client::new();
    let body = json!({"host": "web-*", "pool": "queue", "duration": "1h", "comment": "deploy"});
    // Changing anything needs an admin, even on loopback.
    let anonymous = client
        .post(agg.url("/api/silences"))
        .json(&body)
        .send()
        .await?;
    assert_eq!(anonymous.status(), 401);
    let token = agg.admin_token().await?;
    let created = client
        .post(agg.url("/api/silences"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await?;
    assert_eq!(created.status(), 201);
    let silence: Value = created.json().await?;
    let id = silence["id"].as_u64().unwrap_or(0);
    assert!(id > 0);
    let listed = agg.get_ok("/api/silences").await?;
    assert_eq!(listed[0]["comment"], "deploy");

    for (body, mentions) in [
        (json!({"duration": "1h"}), "rule"),
        (json!({"host": "a", "duration": "soon"}), "duration"),
        (json!({"host": "a"}), "duration"),
        (json!({"host": "a", "duration": "1h", "extra": 1}), "extra"),
    ] {
        let response = client
            .post(agg.url("/api/silences"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await?;
        assert_eq!(response.status(), 400, "{body}");
        let error: Value = response.json().await?;
        let message = error["error"].as_str().unwrap_or_default();
        assert!(message.contains(mentions), "{body}: {message}");
    }
    let (status, body) = agg.get("/api/alerts?state=sideways").await?;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap_or_default().contains("state"));

    // Silences survive a restart, and can be deleted once.
    let (grpc, http) = (agg.grpc, agg.http);
    agg.stop().await?;
    let agg = Aggregator::start_on(&dir.path().join("fw.db"), grpc, http).await?;
    let listed = agg.get_ok("/api/silences").await?;
    assert_eq!(listed[0]["id"], id);
    let anonymous = client
        .delete(agg.url(&format!("/api/silences/{id}")))
        .send()
        .await?;
    assert_eq!(anonymous.status(), 401);
    let deleted = client
        .delete(agg.url(&format!("/api/silences/{id}")))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(deleted.status(), 204);
    let again = client
        .delete(agg.url(&format!("/api/silences/{id}")))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(again.status(), 404);
    agg.stop().await
}
