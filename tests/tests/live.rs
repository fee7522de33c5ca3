//! The dashboard's live feed end to end: samples come in over gRPC to a
//! real aggregator, and a WebSocket client gets a snapshot built from the
//! latest state in memory (a summary for every host, worker lists only for
//! the hosts it subscribed to) and live samples in the form its
//! subscription asks for. After a restart that state is loaded from the
//! database.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use fleetwatch_proto as wire;
use fleetwatch_tests::{Aggregator, RawStream, now_ms, sample};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(agg: &Aggregator) -> Result<Ws> {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", agg.http)).await?;
    Ok(ws)
}

/// The next text message whose type is `kind`, skipping others (alerts,
/// pings); fails after 10 s.
async fn next_of(ws: &mut Ws, kind: &str) -> Result<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .with_context(|| format!("no {kind} message within 10 s"))?
            .context("the socket closed")??;
        if let Message::Text(text) = frame {
            let value: Value = serde_json::from_str(text.as_str())?;
            if value["type"] == kind {
                return Ok(value);
            }
        }
    }
}

async fn send(stream: &mut RawStream, seq: u64, ts: i64, cpu: f64) -> Result<()> {
    stream
        .send(wire::Batch {
            seq,
            samples: vec![sample(ts, cpu)],
            ..Default::default()
        })
        .await?;
    Ok(())
}

/// The snapshot's hosts by id.
fn host<'a>(snapshot: &'a Value, id: &str) -> Result<&'a Value> {
    snapshot["hosts"]
        .as_array()
        .and_then(|hosts| hosts.iter().find(|h| h["host_id"] == id))
        .with_context(|| format!("{id} is not in the snapshot {snapshot}"))
}

#[tokio::test]
async fn snapshot_and_live_samples_follow_the_subscription() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("fw.db");
    let agg = Aggregator::start(&db).await?;
    let mut alpha = RawStream::hello(&agg, "alpha").await?;
    let mut beta = RawStream::hello(&agg, "beta").await?;
    let t0 = now_ms() / 1000 * 1000 - 10_000;
    send(&mut alpha, 1, t0, 10.0).await?;
    send(&mut beta, 1, t0, 20.0).await?;

    // Acked means committed, and the latest state is updated before then.
    let mut ws = connect(&agg).await?;
    let snapshot = next_of(&mut ws, "snapshot").await?;
    for (id, cpu) in [("alpha", 10.0), ("beta", 20.0)] {
        let h = host(&snapshot, id)?;
        assert_eq!(h["online"], true, "{h}");
        assert_eq!(h["hostname"], format!("{id}.test"));
        assert_eq!(h["summary"]["timestamp_ms"], t0);
        assert_eq!(h["summary"]["cpu_percent"], cpu);
        assert_eq!(h["summary"]["groups"][0]["alive"], 1);
        assert!(
            h.get("latest").is_none() && h.get("groups").is_none(),
            "{h}"
        );
    }

    ws.send(Message::Text(
        r#"{"type":"subscribe","hosts":["alpha"]}"#.into(),
    ))
    .await?;
    assert_eq!(
        next_of(&mut ws, "subscribed").await?,
        json!({"type": "subscribed", "hosts": ["alpha"]})
    );
    let detail = next_of(&mut ws, "detail").await?;
    assert_eq!(detail["host_id"], "alpha");
    assert_eq!(detail["latest"]["cpu_percent"], 10.0);
    assert_eq!(
        detail["groups"][0]["workers"][0]["cmdline"],
        "worker --queue default"
    );

    send(&mut alpha, 2, t0 + 1000, 30.0).await?;
    send(&mut beta, 2, t0 + 1000, 40.0).await?;
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let msg = next_of(&mut ws, "sample").await?;
        let id = msg["host_id"].as_str().unwrap_or_default().to_owned();
        match id.as_str() {
            "alpha" => {
                assert_eq!(msg["summary"]["cpu_percent"], 30.0);
                assert_eq!(msg["sample"]["system"]["cpu_percent"], 30.0);
                assert_eq!(msg["sample"]["workers"][0]["pid"], 4242);
            }
            "beta" => {
                assert_eq!(msg["summary"]["cpu_percent"], 40.0);
                assert!(msg.get("sample").is_none(), "beta is not subscribed: {msg}");
            }
            other => bail!("a sample of {other}"),
        }
        seen.push(id);
    }
    seen.sort();
    assert_eq!(seen, ["alpha", "beta"]);

    // A sample backfilled after the newest does not replace it.
    send(&mut alpha, 3, t0 - 1000, 99.0).await?;
    let current = agg.get_ok("/api/metrics/current?host=alpha").await?;
    assert_eq!(current[0]["timestamp_ms"], t0 + 1000, "{current}");
    assert_eq!(current[0]["cpu_percent"], 30.0);

    drop((alpha, beta, ws));
    agg.stop().await?;
    let agg = Aggregator::start(&db).await?;
    let mut ws = connect(&agg).await?;
    let snapshot = next_of(&mut ws, "snapshot").await?;
    for (id, cpu) in [("alpha", 30.0), ("beta", 40.0)] {
        let h = host(&snapshot, id)?;
        assert_eq!(h["online"], false, "{h}");
        assert_eq!(h["summary"]["timestamp_ms"], t0 + 1000);
        assert_eq!(h["summary"]["cpu_percent"], cpu);
    }
    drop(ws);
    agg.stop().await
}
