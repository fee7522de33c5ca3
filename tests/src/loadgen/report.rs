//! What the load generator prints: a row every few seconds while the run
//! goes (write rate, ack p99, the aggregator's CPU and RSS, the database,
//! WAL and -shm sizes, so WAL growth shows), and Markdown tables at the end
//! that paste into BENCHMARKS.md as they are.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::agent::Counters;
use super::files::{DbFiles, human};
use super::latency::{Latencies, Summary, ms};
use super::procfs;

/// One periodic reading.
#[derive(Debug, Clone)]
pub struct Row {
    /// Since the agents started.
    pub at: Duration,
    pub stored_per_s: f64,
    /// Samples sent and not yet acknowledged: the aggregator's lag.
    pub in_flight: u64,
    /// Acks received in this period.
    pub ack: Summary,
    /// Aggregator CPU over the period, % of one core.
    pub cpu_percent: f64,
    pub rss: u64,
    pub files: DbFiles,
    /// The load generator's own CPU over the period, % of one core.
    pub loadgen_cpu_percent: f64,
    /// The whole machine's busy share over the period, % of all cores.
    pub machine_percent: f64,
}

/// What the periodic sampler reads.
pub struct Sampled {
    /// The aggregator's pid.
    pub pid: String,
    pub db: PathBuf,
    pub counters: Arc<Counters>,
    pub acks: Arc<Latencies>,
    pub start: Instant,
}

const HEADER: &str = "| t (s) | stored/s | in flight | ack p99 (ms) | aggregator CPU | aggregator RSS | loadgen CPU | machine busy | DB | WAL | -shm |\n|---|---|---|---|---|---|---|---|---|---|---|";

/// Takes a [`Row`] every `every` until `stop`, printing each as it comes.
pub async fn sample_every(what: Sampled, every: Duration, stop: CancellationToken) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    let mut last_at = what.start.elapsed();
    let mut last_acked = what.counters.acked.load(Ordering::Relaxed);
    let mut last_cpu = procfs::cpu_secs(&what.pid).unwrap_or(0.0);
    let mut last_self = procfs::cpu_secs("self").unwrap_or(0.0);
    let mut last_machine = procfs::machine_ticks().unwrap_or_default();
    println!("\nevery {}:\n{HEADER}", humantime::format_duration(every));
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let at = what.start.elapsed();
        let secs = (at - last_at).as_secs_f64().max(1e-9);
        let acked = what.counters.acked.load(Ordering::Relaxed);
        let ack = what.acks.between(last_at, at);
        let cpu = procfs::cpu_secs(&what.pid).unwrap_or(last_cpu);
        let own = procfs::cpu_secs("self").unwrap_or(last_self);
        let machine = procfs::machine_ticks().unwrap_or(last_machine);
        let row = Row {
            at,
            stored_per_s: (acked - last_acked) as f64 / secs,
            in_flight: what
                .counters
                .sent
                .load(Ordering::Relaxed)
                .saturating_sub(acked),
            ack,
            cpu_percent: (cpu - last_cpu) / secs * 100.0,
            rss: procfs::rss_bytes(&what.pid).unwrap_or(0),
            files: DbFiles::read(&what.db),
            loadgen_cpu_percent: (own - last_self) / secs * 100.0,
            machine_percent: procfs::machine_busy_percent(last_machine, machine),
        };
        println!("{}", format_row(&row));
        rows.push(row);
        (last_at, last_acked, last_cpu, last_self, last_machine) = (at, acked, cpu, own, machine);
    }
    rows
}

fn format_row(row: &Row) -> String {
    format!(
        "| {:.0} | {:.0} | {} | {} | {:.0} % | {} | {:.0} % | {:.0} % | {} | {} | {} |",
        row.at.as_secs_f64(),
        row.stored_per_s,
        row.in_flight,
        if row.ack.count == 0 {
            "-".to_owned()
        } else {
            ms(row.ack.p99_ms)
        },
        row.cpu_percent,
        human(row.rss),
        row.loadgen_cpu_percent,
        row.machine_percent,
        human(row.files.db),
        human(row.files.wal),
        human(row.files.shm),
    )
}

/// A two-column Markdown table under a title.
pub fn print_table(title: &str, rows: &[(String, String)]) {
    println!("\n{title}\n\n| | |\n|---|---|");
    for (name, value) in rows {
        println!("| {name} | {value} |");
    }
}

/// One line for BENCHMARKS.md's run table, with its header.
pub struct Headline {
    pub hosts: u32,
    pub workers: u32,
    pub interval: Duration,
    pub duration: Duration,
    pub offered_per_s: f64,
    pub stored_per_s: f64,
    pub ack: Summary,
    pub cpu_percent: f64,
    pub rss: u64,
    pub loadgen_cpu_percent: f64,
    pub files: DbFiles,
}

impl Headline {
    pub fn print(&self) {
        println!(
            "\n| hosts × workers | interval, duration | offered/s | stored/s | ack p50 / p99 / max | aggregator CPU | aggregator RSS | loadgen CPU | DB / WAL / -shm |\n|---|---|---|---|---|---|---|---|---|"
        );
        println!(
            "| {} × {} | {}, {} | {:.0} | {:.0} | {} / {} / {} ms | {:.0} % | {} | {:.0} % | {} / {} / {} |",
            self.hosts,
            self.workers,
            humantime::format_duration(self.interval),
            humantime::format_duration(self.duration),
            self.offered_per_s,
            self.stored_per_s,
            ms(self.ack.p50_ms),
            ms(self.ack.p99_ms),
            ms(self.ack.max_ms),
            self.cpu_percent,
            human(self.rss),
            self.loadgen_cpu_percent,
            human(self.files.db),
            human(self.files.wal),
            human(self.files.shm),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_reads_as_a_markdown_table_row() {
        let row = Row {
            at: Duration::from_secs(10),
            stored_per_s: 499.6,
            in_flight: 3,
            ack: Summary {
                count: 10,
                p50_ms: 1.0,
                p99_ms: 12.34,
                max_ms: 20.0,
            },
            cpu_percent: 63.2,
            rss: 50 << 20,
            files: DbFiles {
                db: 4096,
                wal: 3 << 20,
                shm: 32768,
                other: 0,
            },
            loadgen_cpu_percent: 7.0,
            machine_percent: 81.4,
        };
        assert_eq!(
            format_row(&row),
            "| 10 | 500 | 3 | 12.3 | 63 % | 50.0 MiB | 7 % | 81 % | 4.00 KiB | 3.00 MiB | 32.0 KiB |"
        );
        assert_eq!(
            HEADER.lines().next().map(|l| l.matches('|').count()),
            format_row(&row).matches('|').count().into()
        );
    }
}
