//! Load generator: starts the release aggregator as its own process on a
//! temporary database (loopback only), streams from N simulated agents at
//! a fixed interval for a bounded time, then reports the write rate, the
//! ack latency and the aggregator's CPU and memory.
//!
//! `cargo build --release && cargo run --release -p fleetwatch-tests --bin loadgen -- --agents 100`

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use fleetwatch_proto as wire;
use tokio::sync::{Mutex, mpsc};
use tokio_stream::wrappers::ReceiverStream;

#[derive(Parser)]
#[command(about = "Streams simulated agents into a real aggregator and measures it.")]
struct Args {
    /// Simulated agents (hosts).
    #[arg(long, default_value_t = 100)]
    agents: u32,
    /// Sampling interval of every simulated agent.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// How long to stream (the run stops by itself).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Worker processes reported per sample.
    #[arg(long, default_value_t = 8)]
    workers: u32,
    /// HTTP port of the aggregator (0: any free port), so that WebSocket
    /// clients can join the run; the address is printed at the start.
    #[arg(long, default_value_t = 0)]
    http_port: u16,
    /// The aggregator binary to start.
    #[arg(long, default_value = "target/release/fleetwatch-aggregator")]
    aggregator_bin: PathBuf,
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn sample(ts: i64, host: u32, workers: u32) -> wire::Sample {
    let cpu = f64::from((ts / 1000 % 100) as u32 + host % 7);
    wire::Sample {
        timestamp_ms: ts,
        system: Some(wire::SystemMetrics {
            cpu_percent: cpu.min(100.0),
            cpu_per_core: vec![cpu.min(100.0); 8],
            load1: 1.5,
            load5: 1.2,
            load15: 1.0,
            memory_total_bytes: 16 << 30,
            memory_used_bytes: 6 << 30,
            memory_available_bytes: 10 << 30,
            swap_total_bytes: 2 << 30,
            swap_used_bytes: 0,
            filesystems: ["/", "/var", "/data"]
                .iter()
                .map(|m| wire::Filesystem {
                    mount_point: (*m).to_owned(),
                    fs_type: "ext4".to_owned(),
                    device: format!("/dev/sd{m}"),
                    total_bytes: 100 << 30,
                    available_bytes: 40 << 30,
                })
                .collect(),
            disk_read_bytes_per_sec: 1e6,
            disk_write_bytes_per_sec: 2e6,
            net_rx_bytes_per_sec: 3e6,
            net_tx_bytes_per_sec: 1e6,
            uptime_secs: 100_000,
            process_count: 300,
            ..Default::default()
        }),
        workers: (0..workers)
            .map(|i| wire::Worker {
                group: "queue".to_owned(),
                pid: 1000 + i,
                name: "python3".to_owned(),
                cmdline: format!("python3 -m worker --queue default --concurrency 1 --id {i}"),
                state: "sleeping".to_owned(),
                cpu_percent: 3.0,
                rss_bytes: 200 << 20,
                threads: 4,
                start_time_secs: ts / 1000 - 3600,
            })
            .collect(),
        groups: vec![wire::GroupStatus {
            name: "queue".to_owned(),
            min_alive: workers,
            alive: workers,
            restarts: 0,
            ..Default::default()
        }],
    }
}

#[derive(Default)]
struct Stats {
    sent: AtomicU64,
    acked: AtomicU64,
    latencies_us: Mutex<Vec<u64>>,
}

async fn agent(
    url: String,
    token: Arc<str>,
    host: u32,
    args: Arc<Args>,
    stats: Arc<Stats>,
    stop_at: Instant,
) -> Result<()> {
    let channel = tonic::transport::Endpoint::from_shared(url)?
        .connect()
        .await?;
    let mut client = wire::IngestClient::new(channel);
    let (tx, rx) = mpsc::channel(64);
    let mut hello = fleetwatch_tests::hello_msg(&format!("load-{host:04}"));
    if let Some(wire::agent_message::Msg::Hello(h)) = hello.msg.as_mut() {
        h.interval_ms = u32::try_from(args.interval.as_millis()).unwrap_or(1000);
    }
    tx.send(hello).await?;
    let mut request = tonic::Request::new(ReceiverStream::new(rx));
    request.metadata_mut().insert(
        wire::AUTHORIZATION_METADATA,
        format!("Bearer {token}").parse()?,
    );
    let mut inbound = client.connect(request).await?.into_inner();
    let sent_at: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();

    let reader = {
        let stats = stats.clone();
        let sent_at = sent_at.clone();
        tokio::spawn(async move {
            while let Ok(Some(msg)) = inbound.message().await {
                if let Some(wire::aggregator_message::Msg::Ack(ack)) = msg.msg {
                    stats.acked.fetch_add(1, Ordering::Relaxed);
                    let mut pending = sent_at.lock().await;
                    if let Some(i) = pending.iter().position(|(s, _)| *s == ack.seq) {
                        let (_, at) = pending.swap_remove(i);
                        let us = u64::try_from(at.elapsed().as_micros()).unwrap_or(u64::MAX);
                        stats.latencies_us.lock().await.push(us);
                    }
                }
            }
        })
    };

    // Spread the agents over the interval, as real ones would be.
    let offset = args
        .interval
        .mul_f64(f64::from(host) / f64::from(args.agents.max(1)));
    tokio::time::sleep(offset).await;
    let mut ticker = tokio::time::interval(args.interval);
    let mut seq = 0;
    while Instant::now() < stop_at {
        ticker.tick().await;
        seq += 1;
        let ts = fleetwatch_tests::now_ms();
        let batch = wire::Batch {
            seq,
            samples: vec![sample(ts, host, args.workers)],
            ..Default::default()
        };
        sent_at.lock().await.push((seq, Instant::now()));
        tx.send(wire::AgentMessage {
            msg: Some(wire::agent_message::Msg::Batch(batch)),
        })
        .await?;
        stats.sent.fetch_add(1, Ordering::Relaxed);
    }
    // Give the last acks a moment, then close.
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(tx);
    let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
    Ok(())
}

/// utime + stime of a process, in seconds, and its RSS in KiB.
fn cpu_and_rss(pid: u32) -> Result<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = stat.rsplit_once(") ").context("stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0);
    let hz = rustix::param::clock_ticks_per_second() as f64;
    Ok((ticks as f64 / hz, rss))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Arc::new(Args::parse());
    if args.duration > Duration::from_secs(600) {
        bail!("--duration is capped at 10m");
    }
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("load.db");
    let grpc = free_port()?;
    let http = if args.http_port == 0 {
        free_port()?
    } else {
        args.http_port
    };
    let token: Arc<str> = fleetwatch_aggregator::auth::secret::generate("fwa_")?.into();
    let mut child = Command::new(&args.aggregator_bin)
        .args(["--grpc-listen", &format!("127.0.0.1:{grpc}")])
        .args(["--http-listen", &format!("127.0.0.1:{http}")])
        .arg("--db")
        .arg(&db)
        .env("RUST_LOG", "warn")
        .env("FLEETWATCH_AGENT_TOKEN", &*token)
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("start {}", args.aggregator_bin.display()))?;
    let pid = child.id();
    let health = format!("http://127.0.0.1:{http}/health");
    fleetwatch_tests::wait_for("aggregator", Duration::from_secs(10), || {
        let r = reqwest::get(health.clone());
        async move { r.await.ok().filter(|r| r.status().is_success()) }
    })
    .await?;

    println!("aggregator HTTP at http://127.0.0.1:{http}");
    let stats = Arc::new(Stats::default());
    let url = format!("http://127.0.0.1:{grpc}");
    let (cpu0, _) = cpu_and_rss(pid)?;
    let started = Instant::now();
    let stop_at = started + args.duration;
    let mut tasks = Vec::new();
    for host in 0..args.agents {
        tasks.push(tokio::spawn(agent(
            url.clone(),
            token.clone(),
            host,
            args.clone(),
            stats.clone(),
            stop_at,
        )));
    }
    for task in tasks {
        if let Err(e) = task.await? {
            eprintln!("agent failed: {e:#}");
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (cpu1, rss_kib) = cpu_and_rss(pid)?;

    let pool = sqlx::SqlitePool::connect_with(
        sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&db)
            .read_only(true),
    )
    .await?;
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM host_samples")
        .fetch_one(&pool)
        .await?;
    let worker_rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM worker_samples")
        .fetch_one(&pool)
        .await?;
    pool.close().await;
    let _ = child.kill();
    let _ = child.wait();

    let mut lat = stats.latencies_us.lock().await.clone();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |us| *us as f64 / 1000.0)
    };
    println!(
        "agents {} at {:?} for {:.1} s, {} workers per sample",
        args.agents, args.interval, elapsed, args.workers
    );
    println!(
        "samples sent {}, acked {}, stored {} (+{} worker rows)",
        stats.sent.load(Ordering::Relaxed),
        stats.acked.load(Ordering::Relaxed),
        rows,
        worker_rows
    );
    println!(
        "write rate {:.0} samples/s ({:.0} rows/s)",
        rows as f64 / elapsed,
        (rows + worker_rows) as f64 / elapsed
    );
    println!(
        "ack latency (send to commit to ack) p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    println!(
        "aggregator CPU {:.1}% of one core, RSS {:.1} MiB",
        (cpu1 - cpu0) / elapsed * 100.0,
        rss_kib as f64 / 1024.0
    );
    Ok(())
}
