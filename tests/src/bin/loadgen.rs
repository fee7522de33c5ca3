//! Load generator: starts the release aggregator as its own process on a
//! temporary database (loopback only), streams realistic samples from N
//! simulated agents at a fixed interval for a bounded time, and reports
//! write rate, ack latency, the aggregator's CPU (whole and per thread) and
//! RSS, its own CPU, and the database, WAL and -shm sizes. Optionally times
//! history queries, WebSocket clients (sample → client latency, a connect
//! storm) and one snapshot. The parts live in `fleetwatch_tests::loadgen`.
//!
//! `cargo build --release && cargo run --release -p fleetwatch-tests --bin loadgen -- --agents 100`

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Parser;
use fleetwatch_tests::loadgen::agent::{self, Counters, Run, SentLog};
use fleetwatch_tests::loadgen::aggregator::AggregatorProcess;
use fleetwatch_tests::loadgen::backfill;
use fleetwatch_tests::loadgen::files::{DbFiles, human};
use fleetwatch_tests::loadgen::history;
use fleetwatch_tests::loadgen::host::SimHost;
use fleetwatch_tests::loadgen::latency::{Latencies, ms};
use fleetwatch_tests::loadgen::procfs;
use fleetwatch_tests::loadgen::report::{self, Headline, Sampled};
use fleetwatch_tests::loadgen::ws::{self, StalledStats, WsStats};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(about = "Streams simulated agents into a real aggregator and measures it.")]
struct Args {
    /// Simulated agents (hosts), at most 20,000.
    #[arg(long, default_value_t = 100)]
    agents: u32,
    /// Sampling interval of every simulated agent.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// How long to stream (the run stops by itself), at most 2 hours (the
    /// issue's disk figures need an hour).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Spread the hosts' samples evenly over the interval (each host on
    /// its own phase) instead of all on the same wall-clock grid, as agents
    /// with synchronised clocks send them.
    #[arg(long)]
    spread: bool,
    /// Worker processes per host, spread over 1–3 groups.
    #[arg(long, default_value_t = 20)]
    workers: u32,
    /// Seed of the simulated hosts: the same seed sends the same values.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How often to print a row of rates and sizes while the run goes.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    report_every: Duration,
    /// Before the run, send this much past of the first host (the one the
    /// history queries read), such as `24h`; at most 7 days less an hour.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    backfill: Duration,
    /// History queries per window (24 h and 30 d) for one host during the run.
    #[arg(long, default_value_t = 0)]
    history_queries: u32,
    /// WebSocket clients on /ws timing sample → client, at most 1,000.
    #[arg(long, default_value_t = 0)]
    ws_clients: u32,
    /// WebSocket clients that subscribe to every host and never read
    /// (reconnecting every 12 s), at most 1,000: the aggregator's memory
    /// must stay bounded.
    #[arg(long, default_value_t = 0)]
    ws_stalled: u32,
    /// Connect the WebSocket clients all at once half-way through the run
    /// (instead of before the agents start).
    #[arg(long)]
    ws_storm: bool,
    /// Time one WebSocket snapshot at the end and report its size.
    #[arg(long)]
    snapshot: bool,
    /// HTTP port of the aggregator (0: any free port), so that a browser
    /// can watch the run; the address is printed at the start.
    #[arg(long, default_value_t = 0)]
    http_port: u16,
    /// The aggregator's `[storage] durability`: `full` (acked samples
    /// survive a power loss; the default) or `normal`.
    #[arg(long, default_value = "full", value_parser = ["full", "normal"])]
    durability: String,
    /// The aggregator binary to start.
    #[arg(long, default_value = "target/release/fleetwatch-aggregator")]
    aggregator_bin: PathBuf,
}

impl Args {
    fn check(&self) -> Result<()> {
        if self.duration > Duration::from_secs(2 * 3600) {
            bail!("--duration is capped at 2h");
        }
        if self.agents == 0 || self.agents > 20_000 {
            bail!("--agents must be 1 to 20000");
        }
        if self.workers > 1024 {
            bail!("--workers is capped at 1024 (the aggregator's limit per sample)");
        }
        if !(Duration::from_millis(100)..=Duration::from_secs(3600)).contains(&self.interval) {
            bail!("--interval must be 100ms to 1h");
        }
        if self.ws_clients > 1000 {
            bail!("--ws-clients is capped at 1000");
        }
        if self.ws_stalled > 1000 {
            bail!("--ws-stalled is capped at 1000");
        }
        if self.history_queries > 10_000 {
            bail!("--history-queries is capped at 10000");
        }
        if self.backfill > backfill::MAX_SPAN {
            bail!(
                "--backfill reaches back at most {} (the aggregator refuses older samples)",
                humantime::format_duration(backfill::MAX_SPAN)
            );
        }
        if self.report_every < Duration::from_secs(1) {
            bail!("--report-every must be at least 1s");
        }
        Ok(())
    }
}

/// Waits for every client and keeps the errors of those that failed.
async fn errors_of(mut clients: JoinSet<Result<()>>) -> Vec<String> {
    let mut errors = Vec::new();
    while let Some(result) = clients.join_next().await {
        if let Ok(Err(e)) = result {
            errors.push(format!("{e:#}"));
        }
    }
    errors
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    args.check()?;
    // Before the aggregator starts, so that it inherits the limit too.
    let open_files = procfs::raise_open_files();
    let sockets =
        u64::from(args.agents) + u64::from(args.ws_clients) + u64::from(args.ws_stalled) + 64;
    if open_files < sockets {
        bail!(
            "the open-file limit is {open_files}, too few for {sockets} sockets; raise it (ulimit -Hn) or run fewer agents"
        );
    }
    let mut aggregator =
        AggregatorProcess::start(&args.aggregator_bin, args.http_port, &args.durability).await?;
    let pid = aggregator.pid.clone();
    let db = aggregator.db.clone();
    println!(
        "aggregator HTTP at {} (pid {pid}, database {})",
        aggregator.http,
        db.display()
    );
    println!(
        "{} agents every {} ({}) for {}, {} workers each, seed {}, durability {}",
        args.agents,
        humantime::format_duration(args.interval),
        if args.spread {
            "spread over the interval"
        } else {
            "all on the wall-clock grid"
        },
        humantime::format_duration(args.duration),
        args.workers,
        args.seed,
        args.durability
    );

    let interval_secs = args.interval.as_secs_f64();
    let mut hosts: Vec<SimHost> = (0..args.agents)
        .map(|i| SimHost::new(args.seed, i, args.workers, interval_secs))
        .collect();
    let mut run = Run {
        url: aggregator.grpc.clone(),
        token: aggregator.token.clone(),
        interval: args.interval,
        agents: args.agents,
        spread: args.spread,
        stop_at: Instant::now(),
    };
    let backfilled = match hosts.first_mut() {
        Some(host) if !args.backfill.is_zero() => {
            let done = backfill::backfill(host, &run, args.backfill).await?;
            println!(
                "backfilled {} of host {}: {} samples in {} batches, {:.1} s",
                humantime::format_duration(args.backfill),
                host.host_id,
                done.samples,
                done.batches,
                done.took.as_secs_f64()
            );
            Some(done)
        }
        _ => None,
    };
    let host_ids: Vec<String> = hosts.iter().map(|h| h.host_id.clone()).collect();
    let sent_log = Arc::new(SentLog::new(&host_ids, args.ws_clients > 0));

    let start = Instant::now();
    let stop_at = start + args.duration;
    let counters = Arc::new(Counters::default());
    let acks = Arc::new(Latencies::new(start));
    let cpu0 = procfs::cpu_secs(&pid)?;
    let self0 = procfs::cpu_secs("self")?;
    let machine0 = procfs::machine_ticks()?;
    let threads0 = procfs::threads(&pid)?;

    let stop_sampling = CancellationToken::new();
    let sampler = tokio::spawn(report::sample_every(
        Sampled {
            pid: pid.clone(),
            db: db.clone(),
            counters: counters.clone(),
            acks: acks.clone(),
            start,
        },
        args.report_every,
        stop_sampling.clone(),
    ));

    let ws_url = aggregator.ws.clone();
    let ws_stats = Arc::new(WsStats::new(start));
    let storm_at = start + args.duration / 2;
    let ws_clients = {
        let (url, sent, stats) = (ws_url.clone(), sent_log.clone(), ws_stats.clone());
        let (n, storm) = (args.ws_clients, args.ws_storm);
        tokio::spawn(async move {
            if storm {
                tokio::time::sleep_until(tokio::time::Instant::from_std(storm_at)).await;
            }
            let mut clients = JoinSet::new();
            for _ in 0..n {
                clients.spawn(ws::client(
                    url.clone(),
                    sent.clone(),
                    stats.clone(),
                    stop_at,
                ));
            }
            errors_of(clients).await
        })
    };

    let stalled_stats = Arc::new(StalledStats::default());
    let stalled = {
        let (url, stats) = (ws_url.clone(), stalled_stats.clone());
        let hosts = Arc::new(host_ids.clone());
        let n = args.ws_stalled;
        tokio::spawn(async move {
            let mut clients = JoinSet::new();
            for _ in 0..n {
                clients.spawn(ws::stalled(
                    url.clone(),
                    hosts.clone(),
                    stats.clone(),
                    stop_at,
                ));
            }
            errors_of(clients).await
        })
    };

    run.stop_at = stop_at;
    let run = Arc::new(run);
    let mut agents = JoinSet::new();
    for (index, host) in (0u32..).zip(hosts) {
        agents.spawn(agent::stream(
            host,
            index,
            run.clone(),
            counters.clone(),
            acks.clone(),
            sent_log.clone(),
        ));
    }

    let history = (args.history_queries > 0).then(|| {
        let (base, host) = (aggregator.http.clone(), host_ids[0].clone());
        let queries = args.history_queries;
        tokio::spawn(async move {
            // Start once there is something to read.
            let from = start + args.duration / 5;
            history::run(&base, &host, queries, from, stop_at).await
        })
    });

    let mut failed_agents = 0;
    while let Some(result) = agents.join_next().await {
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                failed_agents += 1;
                if failed_agents <= 3 {
                    eprintln!("agent failed: {e:#}");
                }
            }
            Err(e) => {
                failed_agents += 1;
                eprintln!("agent task failed: {e}");
            }
        }
    }
    if let Some(status) = aggregator.exited()? {
        bail!("the aggregator exited during the run: {status}");
    }
    let elapsed = start.elapsed();
    let cpu1 = procfs::cpu_secs(&pid)?;
    let self1 = procfs::cpu_secs("self")?;
    let machine1 = procfs::machine_ticks()?;
    let threads1 = procfs::threads(&pid)?;
    let rss = procfs::rss_bytes(&pid)?;
    let files = DbFiles::read(&db);
    stop_sampling.cancel();
    let rows = sampler.await?;
    let ws_errors = ws_clients.await?;
    let stalled_errors = stalled.await?;
    let history = match history {
        Some(task) => Some(task.await?),
        None => None,
    };
    let snapshot = if args.snapshot {
        Some(ws::snapshot(&ws_url).await?)
    } else {
        None
    };
    drop(aggregator);

    let secs = args.duration.as_secs_f64();
    let window = elapsed.as_secs_f64();
    let sent = counters.sent.load(Ordering::Relaxed);
    let acked = counters.acked.load(Ordering::Relaxed);
    let ack = acks.summary();
    // Everything on disk, the backfill's samples included.
    let on_disk = acked + backfilled.map_or(0, |b| b.samples);
    let per_sample = |bytes: u64| {
        if on_disk == 0 {
            "-".to_owned()
        } else {
            format!("{:.0} B", bytes as f64 / on_disk as f64)
        }
    };
    Headline {
        hosts: args.agents,
        workers: args.workers,
        interval: args.interval,
        duration: args.duration,
        offered_per_s: sent as f64 / secs,
        stored_per_s: acked as f64 / secs,
        ack,
        cpu_percent: (cpu1 - cpu0) / window * 100.0,
        rss,
        loadgen_cpu_percent: (self1 - self0) / window * 100.0,
        files,
    }
    .print();

    let mut details = vec![
        ("samples sent".to_owned(), sent.to_string()),
        (
            "samples stored".to_owned(),
            format!("{acked} (acked after commit)"),
        ),
        ("agents failed".to_owned(), failed_agents.to_string()),
        ("ack p50 / p99 / max".to_owned(), ack.to_string()),
        (
            "database / WAL / -shm / other".to_owned(),
            format!(
                "{} / {} / {} / {}",
                human(files.db),
                human(files.wal),
                human(files.shm),
                human(files.other)
            ),
        ),
        (
            "bytes per stored host-sample, backfill included (database, all files)".to_owned(),
            format!("{}, {}", per_sample(files.db), per_sample(files.total())),
        ),
        (
            "WAL at its largest (periodic rows)".to_owned(),
            human(rows.iter().map(|r| r.files.wal).max().unwrap_or(files.wal)),
        ),
        (
            "aggregator CPU, RSS".to_owned(),
            format!(
                "{:.0} % of one core over {window:.1} s, {}",
                (cpu1 - cpu0) / window * 100.0,
                human(rss)
            ),
        ),
        (
            "loadgen CPU".to_owned(),
            format!("{:.0} % of one core", (self1 - self0) / window * 100.0),
        ),
        (
            "machine busy".to_owned(),
            format!(
                "{:.0} % of its {} cores",
                procfs::machine_busy_percent(machine0, machine1),
                std::thread::available_parallelism().map_or(1, usize::from)
            ),
        ),
    ];
    for (name, count, percent) in procfs::busiest_threads(&threads0, &threads1, elapsed)
        .into_iter()
        .take(8)
    {
        details.push((
            format!("aggregator thread `{name}` ×{count}"),
            format!("{percent:.1} %"),
        ));
    }
    if let Some(done) = backfilled {
        details.push((
            "backfill of the history host".to_owned(),
            format!(
                "{} samples in {} batches, {:.1} s ({:.0} samples/s)",
                done.samples,
                done.batches,
                done.took.as_secs_f64(),
                done.samples as f64 / done.took.as_secs_f64().max(1e-9)
            ),
        ));
    }
    if let Some(history) = &history {
        details.extend(history.details());
    }
    if args.ws_clients > 0 {
        details.extend(ws_stats.details(&ws_errors));
    }
    if args.ws_stalled > 0 {
        details.push((
            "stalled WebSocket clients".to_owned(),
            format!(
                "{} never reading, {} connections subscribed to every host, {} failed{}",
                args.ws_stalled,
                stalled_stats.connections.load(Ordering::Relaxed),
                stalled_stats.failed.load(Ordering::Relaxed),
                stalled_errors
                    .first()
                    .map(|e| format!(" (first: {e})"))
                    .unwrap_or_default()
            ),
        ));
    }
    if args.ws_storm && args.ws_clients > 0 {
        // Ack latency before the storm (after the first interval, when all
        // agents are up) against the ten seconds from the storm on.
        let storm = storm_at - start;
        let before = acks.between(args.interval, storm);
        let after = acks.between(storm, storm + Duration::from_secs(10));
        details.push(("ack before the storm".to_owned(), before.to_string()));
        details.push((
            "ack in the 10 s from the storm".to_owned(),
            after.to_string(),
        ));
    }
    if let Some(snap) = snapshot {
        details.push((
            "snapshot".to_owned(),
            format!(
                "{} ms, {} for {} hosts",
                ms(snap.took.as_secs_f64() * 1000.0),
                human(snap.bytes as u64),
                snap.hosts
            ),
        ));
    }
    report::print_table("details", &details);
    if acked == 0 {
        bail!("nothing was stored");
    }
    Ok(())
}
