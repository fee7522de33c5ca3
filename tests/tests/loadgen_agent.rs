//! The load generator's simulated agent against a real aggregator started
//! in this process: every sample it sends is acknowledged and timed, its
//! backfill lands on the grid before the live samples, and a refused token
//! is an error that says so.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Result;
use fleetwatch_tests::Aggregator;
use fleetwatch_tests::loadgen::agent::{self, Counters, Run, SentLog};
use fleetwatch_tests::loadgen::backfill;
use fleetwatch_tests::loadgen::host::SimHost;
use fleetwatch_tests::loadgen::latency::Latencies;

fn run(agg: &Aggregator, token: &str, for_: Duration) -> Run {
    Run {
        url: agg.grpc_url(),
        token: token.to_owned(),
        interval: Duration::from_millis(200),
        agents: 1,
        spread: false,
        stop_at: Instant::now() + for_,
    }
}

#[tokio::test]
async fn streams_backfills_and_every_sample_is_acked() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agg = Aggregator::start(&dir.path().join("fw.db")).await?;
    let mut host = SimHost::new(1, 0, 20, 0.2);
    let id = host.host_id.clone();

    let filled = backfill::backfill(
        &mut host,
        &run(&agg, &agg.agent_token, Duration::ZERO),
        Duration::from_secs(60),
    )
    .await?;
    assert_eq!(
        filled.samples,
        60 * 5 - 2,
        "one minute at 200 ms, to 2 intervals ago"
    );
    assert_eq!(filled.batches, 1);

    let counters = Arc::new(Counters::default());
    let acks = Arc::new(Latencies::new(Instant::now()));
    let sent = Arc::new(SentLog::new(std::slice::from_ref(&id), true));
    let live = Arc::new(run(&agg, &agg.agent_token, Duration::from_millis(1500)));
    agent::stream(host, 0, live, counters.clone(), acks.clone(), sent).await?;
    let (n_sent, n_acked) = (
        counters.sent.load(Ordering::Relaxed),
        counters.acked.load(Ordering::Relaxed),
    );
    assert!(n_sent >= 5, "about 7 samples in 1.5 s, sent {n_sent}");
    assert_eq!(n_acked, n_sent);
    assert_eq!(acks.summary().count, n_sent);

    // The aggregator has the host, with its newest sample on the grid.
    let current = agg
        .get_ok(&format!("/api/metrics/current?host={id}"))
        .await?;
    let ts = current[0]["timestamp_ms"].as_i64().unwrap_or_default();
    assert_eq!(ts % 200, 0, "{current}");
    agg.stop().await
}

#[tokio::test]
async fn a_refused_token_is_an_error() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agg = Aggregator::start(&dir.path().join("fw.db")).await?;
    let host = SimHost::new(1, 0, 0, 0.2);
    let wrong = format!("fwa_{}", "x".repeat(40));
    let result = agent::stream(
        host,
        0,
        Arc::new(run(&agg, &wrong, Duration::from_millis(500))),
        Arc::default(),
        Arc::new(Latencies::new(Instant::now())),
        Arc::new(SentLog::new(&[], false)),
    )
    .await;
    let error = format!("{:#}", result.err().ok_or(anyhow::anyhow!("it streamed"))?);
    assert!(error.to_lowercase().contains("token"), "{error}");
    agg.stop().await
}
