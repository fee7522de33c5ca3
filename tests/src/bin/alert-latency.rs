//! Measures the time from a sample's arrival at the aggregator to the alert
//! it raises being visible in `GET /api/alerts` and posted to a webhook.
//!
//! Starts a real aggregator in this process on loopback with a webhook
//! receiver beside it, then, RUNS times, opens a stream as a new host whose
//! worker pool is short and sends one sample. Prints median and worst.
//!
//! `cargo run --release -p fleetwatch-tests --bin alert-latency -- --runs 100`

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::Json;
use axum::extract::State;
use axum::routing::post;
use clap::Parser;
use fleetwatch_proto as wire;
use fleetwatch_tests::{Aggregator, RawStream, aggregator_config, now_ms, sample};
use serde_json::Value;

#[derive(Parser)]
struct Args {
    /// How many alerts to raise (the run stops by itself).
    #[arg(long, default_value_t = 100)]
    runs: u32,
}

type Seen = Arc<Mutex<Vec<(String, Instant)>>>;

async fn hook(State(seen): State<Seen>, Json(body): Json<Value>) {
    if body["state"] == "firing"
        && let Some(host) = body["host_id"].as_str()
        && let Ok(mut seen) = seen.lock()
    {
        seen.push((host.to_owned(), Instant::now()));
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route("/hook", post(hook))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook_addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir()?;
    let config = aggregator_config(&format!(
        "[[alerts.webhooks]]\nurl = \"http://{hook_addr}/hook\"\n"
    ))?;
    let any = "127.0.0.1:0".parse()?;
    let agg = Aggregator::start_with(&dir.path().join("lat.db"), any, any, config).await?;
    let client = reqwest::Client::new();

    let (mut api, mut webhook) = (Vec::new(), Vec::new());
    for run in 0..args.runs {
        let host = format!("lat-{run:04}");
        let mut stream = RawStream::hello(&agg, &host).await?;
        // The pool needs 2 and has 1: the worker_pool rule fires at once.
        let batch = wire::Batch {
            seq: 1,
            samples: vec![sample(now_ms(), 5.0)],
            ..Default::default()
        };
        let sent = Instant::now();
        stream.send(batch).await?;
        let url = agg.url(&format!("/api/alerts?state=firing&host={host}"));
        let deadline = sent + Duration::from_secs(10);
        loop {
            let alerts: Value = client.get(&url).send().await?.json().await?;
            if alerts.as_array().is_some_and(|a| !a.is_empty()) {
                api.push(sent.elapsed());
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "no alert for {host}");
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        loop {
            let at = seen
                .lock()
                .ok()
                .and_then(|s| s.iter().find(|(h, _)| *h == host).map(|(_, at)| *at));
            if let Some(at) = at {
                webhook.push(at.duration_since(sent));
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "no webhook for {host}");
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        drop(stream);
    }
    api.sort_unstable();
    webhook.sort_unstable();
    println!(
        "{} alerts, from sending the sample (loopback) to:",
        args.runs
    );
    println!(
        "  visible in GET /api/alerts: median {:.2} ms, worst {:.2} ms (includes the 0.5 ms poll step)",
        percentile(&api, 0.5).as_secs_f64() * 1e3,
        api.last().context("no runs")?.as_secs_f64() * 1e3
    );
    println!(
        "  received by the webhook:    median {:.2} ms, worst {:.2} ms",
        percentile(&webhook, 0.5).as_secs_f64() * 1e3,
        webhook.last().context("no runs")?.as_secs_f64() * 1e3
    );
    agg.stop().await
}
