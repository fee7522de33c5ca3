//! End-to-end, through the real gRPC interface: what the aggregator does
//! with the agent spool's markings. Backfilled samples are stored but never
//! evaluated as live; dropped ranges become gaps served by `/api/gaps`; an
//! oversized list is cut, never a reason to refuse the host's batch.

use std::time::Duration;

use anyhow::{Result, ensure};
use fleetwatch_proto as wire;
use fleetwatch_tests::{Aggregator, RawStream, now_ms, sample, stored_samples, wait_for};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);

async fn firing(agg: &Aggregator, host: &str) -> Result<Vec<Value>> {
    let body = agg
        .get_ok(&format!("/api/alerts?state=firing&host={host}"))
        .await?;
    Ok(body.as_array().cloned().unwrap_or_default())
}

#[tokio::test]
async fn backfilled_samples_are_stored_but_fire_no_alert() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agg = Aggregator::start(&dir.path().join("fw.db")).await?;
    // `sample` has 1 of the 2 workers its group needs: the worker_pool rule
    // fires on the first live sample.
    let now = now_ms();
    let mut old = RawStream::hello(&agg, "backfilled").await?;
    old.send(wire::Batch {
        seq: 1,
        samples: (0..10)
            .map(|i| sample(now - 60_000 + i * 1000, 99.0))
            .collect(),
        backfill: true,
        ..Default::default()
    })
    .await?;
    // The same samples live, from another host, sent after: once its alert
    // fires, the engine has seen everything sent before it.
    let mut live = RawStream::hello(&agg, "live").await?;
    live.send(wire::Batch {
        seq: 1,
        samples: (0..10)
            .map(|i| sample(now - 60_000 + i * 1000, 99.0))
            .collect(),
        ..Default::default()
    })
    .await?;
    wait_for("the live host's alert", WAIT, || async {
        (!firing(&agg, "live").await.ok()?.is_empty()).then_some(())
    })
    .await?;
    let alerts = firing(&agg, "backfilled").await?;
    ensure!(alerts.is_empty(), "backfill fired {alerts:?}");
    let pool = agg.db().await?;
    ensure!(stored_samples(&pool, "backfilled").await?.len() == 10);
    pool.close().await;

    // Live samples of the backfilled host still alert.
    old.send(wire::Batch {
        seq: 2,
        samples: vec![sample(now_ms(), 99.0)],
        ..Default::default()
    })
    .await?;
    wait_for("the alert once samples are live", WAIT, || async {
        (!firing(&agg, "backfilled").await.ok()?.is_empty()).then_some(())
    })
    .await?;
    agg.stop().await
}

#[tokio::test]
async fn dropped_ranges_are_kept_and_served_as_gaps() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agg = Aggregator::start(&dir.path().join("fw.db")).await?;
    let now = now_ms();
    let range = wire::DroppedRange {
        from_ms: now - 50_000,
        to_ms: now - 40_000,
        samples: 11,
    };
    let mut stream = RawStream::hello(&agg, "gappy").await?;
    // Reported twice, as an agent does until a batch carrying it is acked.
    for seq in 1..=2 {
        stream
            .send(wire::Batch {
                seq,
                samples: vec![sample(now - 1000 * i64::try_from(seq)?, 10.0)],
                dropped: vec![range],
                ..Default::default()
            })
            .await?;
    }
    let gaps = agg.get_ok("/api/gaps?host=gappy&from=-1h").await?;
    let list = gaps.as_array().cloned().unwrap_or_default();
    ensure!(list.len() == 1, "{gaps}");
    ensure!(list[0]["from_ms"] == range.from_ms && list[0]["to_ms"] == range.to_ms);
    ensure!(list[0]["samples"] == 11 && list[0]["host_id"] == "gappy");
    // Outside the window, or another host: nothing.
    let other = agg.get_ok("/api/gaps?host=other").await?;
    ensure!(other.as_array().is_some_and(Vec::is_empty), "{other}");
    let (status, body) = agg.get("/api/gaps?host=gappy&from=now&to=-1h").await?;
    ensure!(
        status == 400 && body["error"].is_string(),
        "{status} {body}"
    );
    let (status, body) = agg.get("/api/gaps?host=%3Cb%3E").await?;
    ensure!(status == 400, "{status} {body}");

    // A backwards range is refused naming the field.
    let refused = stream
        .send(wire::Batch {
            seq: 3,
            samples: vec![sample(now, 10.0)],
            dropped: vec![wire::DroppedRange {
                from_ms: now,
                to_ms: now - 1,
                samples: 1,
            }],
            ..Default::default()
        })
        .await;
    let status = refused.err().map(|s| s.message().to_owned());
    ensure!(
        status
            .as_deref()
            .is_some_and(|m| m.contains("batch.dropped[0]")),
        "{status:?}"
    );
    agg.stop().await
}

#[tokio::test]
async fn an_oversized_worker_list_does_not_silence_the_host() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agg = Aggregator::start(&dir.path().join("fw.db")).await?;
    let mut s = sample(now_ms(), 42.0);
    let template = s.workers[0].clone();
    s.workers = (0..3000)
        .map(|pid| wire::Worker {
            pid: 10_000 + pid,
            ..template.clone()
        })
        .collect();
    s.groups[0].alive = 3000;
    let mut stream = RawStream::hello(&agg, "prefork").await?;
    stream
        .send(wire::Batch {
            seq: 1,
            samples: vec![s],
            ..Default::default()
        })
        .await?;
    let pool = agg.db().await?;
    let stored = stored_samples(&pool, "prefork").await?;
    ensure!(stored.len() == 1);
    ensure!(stored[0].system.cpu_percent == 42.0);
    ensure!(!stored[0].workers.is_empty() && stored[0].workers.len() <= 1024);
    pool.close().await;
    agg.stop().await
}
