//! WebSocket clients on the aggregator's `/ws`, as dashboards are: each
//! reads the snapshot, then every live message, and for each
//! `{"type":"sample","host_id":..,"timestamp_ms":..}` looks up when the load
//! generator sent that (host, timestamp) to time sample → client. Stalled
//! clients, as a hostile or frozen browser tab: each subscribes to every
//! host (up to the aggregator's limit) and never reads. And one snapshot on
//! its own: how long it takes and how big it is.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use serde::Deserialize;
use tokio_tungstenite::tungstenite::Message;

use super::agent::SentLog;
use super::files::human;
use super::latency::Latencies;

/// Longest a connection may take to deliver its snapshot.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(60);

/// The fields of a live message the clients read; the rest is skipped.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    host_id: Option<Cow<'a, str>>,
    #[serde(default)]
    timestamp_ms: Option<i64>,
}

/// What all clients saw together.
#[derive(Debug)]
pub struct WsStats {
    /// Sample → client latencies.
    pub latency: Latencies,
    /// Connect → snapshot received, one per connection.
    pub connect: Latencies,
    pub connected: AtomicU64,
    pub failed: AtomicU64,
    pub messages: AtomicU64,
    pub bytes: AtomicU64,
    /// Samples whose send time was no longer (or never) in the log.
    pub unmatched: AtomicU64,
    /// `resync` messages: the client fell behind the hub.
    pub resyncs: AtomicU64,
}

impl WsStats {
    pub fn new(start: Instant) -> Self {
        Self {
            latency: Latencies::new(start),
            connect: Latencies::new(start),
            connected: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            messages: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            unmatched: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
        }
    }
}

impl WsStats {
    /// Its rows of the final table; `errors` are the clients' failures.
    pub fn details(&self, errors: &[String]) -> Vec<(String, String)> {
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        let mut rows = vec![(
            "ws clients connected / failed".to_owned(),
            format!("{} / {}", load(&self.connected), load(&self.failed)),
        )];
        if let Some(first) = errors.first() {
            rows.push(("ws first error".to_owned(), first.clone()));
        }
        rows.extend([
            (
                "ws messages, bytes".to_owned(),
                format!("{}, {}", load(&self.messages), human(load(&self.bytes))),
            ),
            (
                "ws sample → client p50 / p99 / max".to_owned(),
                self.latency.summary().to_string(),
            ),
            (
                "ws samples unmatched, resyncs".to_owned(),
                format!("{}, {}", load(&self.unmatched), load(&self.resyncs)),
            ),
            (
                "ws connect → snapshot p50 / p99 / max".to_owned(),
                self.connect.summary().to_string(),
            ),
        ]);
        rows
    }
}

/// One client on `url` (`ws://127.0.0.1:PORT/ws`) until `stop_at`.
pub async fn client(
    url: String,
    sent: Arc<SentLog>,
    stats: Arc<WsStats>,
    stop_at: Instant,
) -> Result<()> {
    let result = read_until(&url, &sent, &stats, stop_at).await;
    if result.is_err() {
        stats.failed.fetch_add(1, Ordering::Relaxed);
    }
    result
}

async fn read_until(url: &str, sent: &SentLog, stats: &WsStats, stop_at: Instant) -> Result<()> {
    let started = Instant::now();
    let (mut ws, _) = tokio::time::timeout(SNAPSHOT_TIMEOUT, tokio_tungstenite::connect_async(url))
        .await
        .context("connect timed out")??;
    stats.connected.fetch_add(1, Ordering::Relaxed);
    let mut snapshot_seen = false;
    let stop = tokio::time::sleep_until(tokio::time::Instant::from_std(stop_at));
    tokio::pin!(stop);
    loop {
        let message = tokio::select! {
            () = &mut stop => break,
            message = ws.next() => message,
        };
        let text = match message {
            None => bail!("the aggregator closed the connection"),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => bail!("closed by the aggregator: {frame:?}"),
            Some(Ok(_)) => continue, // pings are answered by the library
        };
        let received = Instant::now();
        stats.messages.fetch_add(1, Ordering::Relaxed);
        stats.bytes.fetch_add(text.len() as u64, Ordering::Relaxed);
        let head: Head = serde_json::from_str(text.as_str()).context("not a JSON message")?;
        match head.kind.as_ref() {
            "snapshot" if !snapshot_seen => {
                snapshot_seen = true;
                stats.connect.record(received - started);
            }
            "sample" => {
                let (Some(host), Some(ts)) = (head.host_id, head.timestamp_ms) else {
                    bail!("a sample without host_id or timestamp_ms");
                };
                match sent.sent_at(&host, ts) {
                    Some(at) => stats.latency.record(received.saturating_duration_since(at)),
                    None => {
                        stats.unmatched.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            "resync" => {
                stats.resyncs.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
    Ok(())
}

/// How long a stalled client holds its connection before it connects
/// again: longer than the aggregator's 10 s send timeout, so it finds out
/// whether the aggregator gives up on it.
const STALL_HOLD: Duration = Duration::from_secs(12);
/// Most hosts one subscription may name (the aggregator's limit).
const MAX_SUBSCRIBED: usize = 1000;

/// What the stalled clients did.
#[derive(Debug, Default)]
pub struct StalledStats {
    /// Connections opened (each subscribed, then never read).
    pub connections: AtomicU64,
    pub failed: AtomicU64,
}

/// A client on `url` that subscribes to `hosts` and never reads, connecting
/// again every [`STALL_HOLD`], until `stop_at`; connects at least once.
pub async fn stalled(
    url: String,
    hosts: Arc<Vec<String>>,
    stats: Arc<StalledStats>,
    stop_at: Instant,
) -> Result<()> {
    use futures_util::SinkExt;
    let named = &hosts[..hosts.len().min(MAX_SUBSCRIBED)];
    let subscribe = serde_json::json!({ "type": "subscribe", "hosts": named }).to_string();
    while Instant::now() < stop_at {
        let connected =
            tokio::time::timeout(SNAPSHOT_TIMEOUT, tokio_tungstenite::connect_async(&url)).await;
        let mut ws = match connected {
            Ok(Ok((ws, _))) => ws,
            Ok(Err(e)) => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                return Err(e.into());
            }
            Err(_) => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                bail!("a stalled client's connect timed out");
            }
        };
        stats.connections.fetch_add(1, Ordering::Relaxed);
        // The send may fail if the aggregator already gave up: that is fine.
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            ws.send(Message::Text(subscribe.clone().into())),
        )
        .await;
        tokio::time::sleep(STALL_HOLD.min(stop_at.saturating_duration_since(Instant::now()))).await;
        drop(ws);
    }
    Ok(())
}

/// One snapshot as a new dashboard gets it.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    /// From opening the connection to the whole snapshot received.
    pub took: Duration,
    pub bytes: usize,
    pub hosts: usize,
}

/// Connects to `url` and times the snapshot it sends first.
pub async fn snapshot(url: &str) -> Result<Snapshot> {
    let started = Instant::now();
    let (mut ws, _) = tokio::time::timeout(SNAPSHOT_TIMEOUT, tokio_tungstenite::connect_async(url))
        .await
        .context("connect timed out")??;
    let deadline = tokio::time::Instant::from_std(started + SNAPSHOT_TIMEOUT);
    loop {
        let message = tokio::time::timeout_at(deadline, ws.next())
            .await
            .context("no snapshot in time")?;
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => bail!("the aggregator closed the connection before the snapshot"),
        };
        let took = started.elapsed();
        let value: serde_json::Value = serde_json::from_str(text.as_str())?;
        if value["type"] != "snapshot" {
            continue;
        }
        let hosts = value["hosts"].as_array().map_or(0, Vec::len);
        let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
        return Ok(Snapshot {
            took,
            bytes: text.len(),
            hosts,
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn reads_the_head_of_a_live_sample_and_skips_the_rest() {
        let text = r#"{"type":"sample","host_id":"ab12","timestamp_ms":1700000000123,
            "summary":{"cpu_percent":3.5,"groups":[{"name":"q"}]}}"#;
        let head: Head = serde_json::from_str(text).unwrap();
        assert_eq!(head.kind, "sample");
        assert_eq!(head.host_id.as_deref(), Some("ab12"));
        assert_eq!(head.timestamp_ms, Some(1_700_000_000_123));
        let other: Head = serde_json::from_str(r#"{"type":"host_offline"}"#).unwrap();
        assert_eq!((other.kind.as_ref(), other.host_id), ("host_offline", None));
    }
}
