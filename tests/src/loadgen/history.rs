//! History queries during the run, as a user opening one host's charts:
//! `GET /api/metrics/history?host=..&metric=cpu_percent&from=..&to=..` for
//! the last 24 hours and the last 30 days at the default step, timed from
//! request to the whole body read.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::latency::{Latencies, Summary};

/// Longest one query may take before it counts as failed.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// The two windows a user opens most, by name and length in seconds.
pub const WINDOWS: [(&str, i64); 2] = [("24h", 86_400), ("30d", 30 * 86_400)];

/// Latencies per window, and what the answers said.
#[derive(Debug)]
pub struct HistoryReport {
    /// One summary per entry of [`WINDOWS`].
    pub windows: Vec<(&'static str, Summary)>,
    pub failed: u64,
    /// The `tier` the answers named, when the aggregator says which served them.
    pub tiers: BTreeSet<String>,
    /// Buckets in the last answer of each window.
    pub buckets: Vec<usize>,
}

/// Runs `queries` queries per window for `host_id`, spread evenly from
/// `start_at` to `stop_at` (stops early at `stop_at`).
pub async fn run(
    base: &str,
    host_id: &str,
    queries: u32,
    start_at: Instant,
    stop_at: Instant,
) -> HistoryReport {
    let client = reqwest::Client::new();
    let latencies: Vec<Latencies> = WINDOWS.iter().map(|_| Latencies::new(start_at)).collect();
    let mut report = HistoryReport {
        windows: Vec::new(),
        failed: 0,
        tiers: BTreeSet::new(),
        buckets: vec![0; WINDOWS.len()],
    };
    let span = stop_at.saturating_duration_since(start_at);
    let gap = span.mul_f64(0.9) / queries.max(1);
    for i in 0..queries {
        let at = start_at + gap * i;
        if at >= stop_at {
            break;
        }
        tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
        for (w, (_, secs)) in WINDOWS.iter().enumerate() {
            if Instant::now() >= stop_at {
                break;
            }
            let to = crate::now_ms() / 1000;
            let url = format!(
                "{base}/api/metrics/history?host={host_id}&metric=cpu_percent&from={}&to={to}",
                to - secs
            );
            let started = Instant::now();
            match query(&client, &url).await {
                Ok(body) => {
                    latencies[w].record(started.elapsed());
                    if let Some(tier) = body["tier"].as_str() {
                        report.tiers.insert(tier.to_owned());
                    }
                    report.buckets[w] = body["buckets"].as_array().map_or(0, Vec::len);
                }
                Err(e) => {
                    report.failed += 1;
                    if report.failed <= 3 {
                        eprintln!("history query failed: {e:#}");
                    }
                }
            }
        }
    }
    report.windows = WINDOWS
        .iter()
        .zip(&latencies)
        .map(|((name, _), l)| (*name, l.summary()))
        .collect();
    report
}

impl HistoryReport {
    /// Its rows of the final table.
    pub fn details(&self) -> Vec<(String, String)> {
        let mut rows: Vec<(String, String)> = self
            .windows
            .iter()
            .zip(&self.buckets)
            .map(|((window, summary), buckets)| {
                (
                    format!("history {window} p50 / p99 / max"),
                    format!("{summary}, {buckets} buckets"),
                )
            })
            .collect();
        rows.push(("history failed".to_owned(), self.failed.to_string()));
        if !self.tiers.is_empty() {
            let tiers: Vec<&str> = self.tiers.iter().map(String::as_str).collect();
            rows.push(("history tiers".to_owned(), tiers.join(", ")));
        }
        rows
    }
}

async fn query(client: &reqwest::Client, url: &str) -> Result<serde_json::Value> {
    let response = client.get(url).timeout(QUERY_TIMEOUT).send().await?;
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() {
        bail!("{status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(serde_json::from_slice(&body)?)
}
