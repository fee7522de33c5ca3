//! End-to-end: real agents stream to a real aggregator, and what they sent
//! comes out of the REST API and the database.

use std::time::Duration;

use anyhow::Result;
use fleetwatch_tests::{Agent, Aggregator, Workers, wait_for};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);

fn host_ids(hosts: &Value) -> Vec<String> {
    hosts
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|h| h["host_id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn samples_from_two_agents_reach_the_api() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agg = Aggregator::start(&dir.path().join("fw.db")).await?;
    let url = agg.grpc_url();
    let alpha = Agent::start(
        &agg,
        &[
            "--aggregator",
            &url,
            "--interval",
            "200ms",
            "--host-id",
            "alpha",
        ],
    )?;
    let beta = Agent::start(
        &agg,
        &[
            "--aggregator",
            &url,
            "--interval",
            "200ms",
            "--host-id",
            "beta",
        ],
    )?;

    let current = wait_for("both hosts' current samples", WAIT, || async {
        let body = agg.get_ok("/api/metrics/current").await.ok()?;
        (host_ids(&body) == ["alpha", "beta"]).then_some(body)
    })
    .await?;
    for sample in current.as_array().into_iter().flatten() {
        assert!(sample["memory_total_bytes"].as_u64() > Some(0), "{sample}");
        assert!(sample["process_count"].as_u64() > Some(1), "{sample}");
        assert!(
            sample["cpu_per_core"]
                .as_array()
                .is_some_and(|c| !c.is_empty())
        );
        let cpu = sample["cpu_percent"].as_f64().unwrap_or(-1.0);
        assert!((0.0..=100.0).contains(&cpu), "{sample}");
    }

    let hosts = agg.get_ok("/api/hosts").await?;
    assert_eq!(host_ids(&hosts), ["alpha", "beta"]);
    for host in hosts.as_array().into_iter().flatten() {
        assert_eq!(host["online"], true, "{host}");
        assert_eq!(host["interval_ms"], 200);
        assert!(host["last_seen_ms"].as_i64() >= host["first_seen_ms"].as_i64());
    }
    let one = agg.get_ok("/api/metrics/current?host=beta").await?;
    assert_eq!(host_ids(&one), ["beta"]);
    let health = agg.get_ok("/health").await?;
    assert_eq!(health["agents_connected"], 2);
    assert_eq!(health["database"], "ok");

    // An agent that stops shows as offline.
    alpha.stop().await?;
    wait_for("alpha offline", WAIT, || async {
        let hosts = agg.get_ok("/api/hosts").await.ok()?;
        let alpha = hosts.as_array()?.iter().find(|h| h["host_id"] == "alpha")?;
        (alpha["online"] == false && alpha["status"] == "offline").then_some(())
    })
    .await?;
    beta.stop().await?;
    agg.stop().await
}

/// The workers of `group` on `host` as the API reports them.
async fn group_status(agg: &Aggregator, host: &str, group: &str) -> Option<Value> {
    let status = agg
        .get_ok(&format!("/api/workers/status?host={host}"))
        .await
        .ok()?;
    status[0]["groups"]
        .as_array()?
        .iter()
        .find(|g| g["name"] == group)
        .cloned()
}

#[tokio::test]
async fn worker_group_counts_deaths_and_restarts() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agg = Aggregator::start(&dir.path().join("fw.db")).await?;
    let mut workers = Workers::new(&Workers::unique_tag(1));
    let mut pids = Vec::new();
    for _ in 0..3 {
        pids.push(workers.spawn()?);
    }
    let spec = format!("queue={}:3", workers.regex());
    let agent = Agent::start(
        &agg,
        &[
            "--aggregator",
            &agg.grpc_url(),
            "--interval",
            "200ms",
            "--host-id",
            "w1",
            "--worker",
            &spec,
            "--worker",
            "missing=^no-such-worker-anywhere$:1",
        ],
    )?;

    let group = wait_for("3 workers alive", WAIT, || async {
        let g = group_status(&agg, "w1", "queue").await?;
        (g["alive"] == 3).then_some(g)
    })
    .await?;
    assert_eq!(group["min_alive"], 3);
    assert_eq!(group["met"], true);
    assert_eq!(group["restarts"], 0);
    let listed: Vec<u64> = group["workers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w["pid"].as_u64())
        .collect();
    assert_eq!(listed.len(), 3);
    for pid in &pids {
        assert!(listed.contains(&u64::from(*pid)), "{pid} in {listed:?}");
    }
    let w = &group["workers"][0];
    assert_eq!(w["name"], "sleep");
    assert_eq!(w["cmdline"], format!("sleep {}", workers.tag));
    assert_eq!(w["state"], "sleeping");
    assert!(w["rss_bytes"].as_u64() > Some(0));
    assert_eq!(w["threads"], 1);

    // A declared group with no process at all is reported, with 0 alive.
    let missing = group_status(&agg, "w1", "missing").await;
    assert_eq!(missing.as_ref().map(|g| g["alive"].clone()), Some(0.into()));
    assert_eq!(missing.map(|g| g["met"].clone()), Some(false.into()));

    let killed = workers.kill_one()?;
    let group = wait_for("2 workers alive", WAIT, || async {
        let g = group_status(&agg, "w1", "queue").await?;
        (g["alive"] == 2).then_some(g)
    })
    .await?;
    assert_eq!(group["met"], false);
    assert!(
        !group["workers"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|w| w["pid"] == killed)
    );

    workers.spawn()?;
    let group = wait_for("replacement counted as a restart", WAIT, || async {
        let g = group_status(&agg, "w1", "queue").await?;
        (g["alive"] == 3).then_some(g)
    })
    .await?;
    assert_eq!(group["restarts"], 1);
    assert_eq!(group["met"], true);

    agent.stop().await?;
    agg.stop().await
}

#[tokio::test]
async fn aggregator_restart_loses_and_duplicates_nothing() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("fw.db");
    let agg = Aggregator::start(&db).await?;
    let (grpc, http) = (agg.grpc, agg.http);
    let mut workers = Workers::new(&Workers::unique_tag(2));
    workers.spawn()?;
    let spec = format!("queue={}:1", workers.regex());
    let agent = Agent::start(
        &agg,
        &[
            "--aggregator",
            &agg.grpc_url(),
            "--interval",
            "100ms",
            "--host-id",
            "restarter",
            "--worker",
            &spec,
        ],
    )?;
    let pool = agg.db().await?;
    wait_for("first samples stored", WAIT, || async {
        let (n, _) = fleetwatch_tests::stored_counts(&pool, "restarter")
            .await
            .ok()?;
        (n >= 5).then_some(())
    })
    .await?;
    pool.close().await;

    let token = agg.agent_token.clone();
    agg.stop().await?;
    let down_at = fleetwatch_tests::now_ms();
    // The agent keeps sampling while the aggregator is away.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let config = fleetwatch_aggregator::Config {
        agent_token: Some(token),
        ..Default::default()
    };
    let agg = Aggregator::start_with(&db, grpc, http, config).await?;
    let up_at = fleetwatch_tests::now_ms();

    let pool = agg.db().await?;
    wait_for("samples after the restart", WAIT, || async {
        let stored = fleetwatch_tests::stored_samples(&pool, "restarter")
            .await
            .ok()?;
        (stored.last()?.timestamp_ms > up_at + 500).then_some(())
    })
    .await?;
    agent.stop().await?;

    let stamps: Vec<i64> = fleetwatch_tests::stored_samples(&pool, "restarter")
        .await?
        .iter()
        .map(|s| s.timestamp_ms)
        .collect();
    let during: Vec<&i64> = stamps
        .iter()
        .filter(|t| (down_at..up_at).contains(t))
        .collect();
    assert!(
        during.len() >= 10,
        "samples taken while the aggregator was down were resent: {} of ~15",
        during.len()
    );
    // Every interval has its sample: no gap much wider than the interval.
    let widest = stamps.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    assert!(widest < 400, "widest gap {widest} ms in {stamps:?}");
    // One worker row per sample: nothing stored twice.
    let (samples, worker_rows) = fleetwatch_tests::stored_counts(&pool, "restarter").await?;
    assert_eq!(samples as usize, stamps.len());
    assert_eq!(worker_rows, samples);
    let mut distinct = stamps.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), stamps.len(), "a timestamp stored twice");
    pool.close().await;
    agg.stop().await
}
