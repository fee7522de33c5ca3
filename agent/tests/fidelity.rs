//! Fidelity: the agent's collector beside a reference sampler of its own
//! (reading /proc directly, with top's, free's and ps's definitions), over
//! the same intervals, under a small bounded load: one busy worker process
//! (a shell loop, so about half of a 2-core machine), 64 MiB of touched
//! memory and 16 MiB written to disk, for three 2-second intervals.
//!
//! Every figure must agree within 1 percentage point (or 1 % of the value):
//! CPU busy (top's us+sy+ni+hi+si), iowait and steal, each core, memory
//! used (free's total − available), load, the worker's CPU % (of one core)
//! and RSS (ps's).

#![allow(clippy::expect_used)]

use std::io::Write;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use fleetwatch_agent::collect::{Collector, CollectorConfig};
use fleetwatch_agent::config::{Matcher, WorkerGroupConfig};
use regex::Regex;

struct Busy(Child);

impl Drop for Busy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One reading of the reference sampler.
struct Reference {
    /// (busy, iowait, steal, total) ticks: all CPUs, then each.
    cpus: Vec<[u64; 4]>,
    mem_used: u64,
    load1: f64,
    /// The worker's utime + stime, in ticks, and when it was read.
    worker_ticks: u64,
    at: Instant,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).expect(path)
}

fn reference(worker: u32) -> Reference {
    let at = Instant::now();
    let stat = read(&format!("/proc/{worker}/stat"));
    let after_name = &stat[stat.rfind(')').expect("stat") + 2..];
    let f: Vec<u64> = after_name
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // Fields 14 and 15 of proc(5); field 3 is after_name's first.
    let worker_ticks = f[14 - 3] + f[15 - 3];
    let cpus = read("/proc/stat")
        .lines()
        .filter(|l| l.starts_with("cpu"))
        .map(|l| {
            let n: Vec<u64> = l
                .split_whitespace()
                .skip(1)
                .map(|x| x.parse().expect("number"))
                .collect();
            // user nice system idle iowait irq softirq steal
            let busy = n[0] + n[1] + n[2] + n[5] + n[6];
            [busy, n[4], n[7], busy + n[3] + n[4] + n[7]]
        })
        .collect();
    let meminfo = read("/proc/meminfo");
    let kib = |key: &str| -> u64 {
        meminfo
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .expect(key)
    };
    let mem_used = (kib("MemTotal:") - kib("MemAvailable:")) * 1024;
    let load1 = read("/proc/loadavg")
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .expect("loadavg");
    Reference {
        cpus,
        mem_used,
        load1,
        worker_ticks,
        at,
    }
}

fn share(part: u64, whole: u64) -> f64 {
    part as f64 * 100.0 / whole.max(1) as f64
}

/// ps's RSS of `pid`, in bytes.
fn ps_rss(pid: u32) -> u64 {
    let out = Command::new("ps")
        .args(["-o", "rss=", "-p", &pid.to_string()])
        .output()
        .expect("ps");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse::<u64>()
        .expect("ps rss")
        * 1024
}

fn close(what: &str, got: f64, want: f64) {
    let tolerance = 1.0_f64.max(want.abs() * 0.01);
    assert!(
        (got - want).abs() <= tolerance,
        "{what}: agent {got:.3}, reference {want:.3}"
    );
}

#[test]
fn agent_matches_a_reference_sampler_under_load() {
    let tag = format!("fwfidelity{}", std::process::id());
    let worker = Busy(
        Command::new("sh")
            .args(["-c", &format!("while :; do :; done # {tag}")])
            .spawn()
            .expect("spawn"),
    );
    let pid = worker.0.id();
    let mut collector = Collector::new(CollectorConfig {
        groups: vec![WorkerGroupConfig {
            name: "busy".into(),
            matcher: Matcher::Cmdline(Regex::new(&regex::escape(&tag)).expect("regex")),
            min_alive: 1,
        }],
        process_events: false,
        ..CollectorConfig::default()
    })
    .expect("collector");
    let clock_ticks = rustix::param::clock_ticks_per_second() as f64;

    // Memory and disk load, bounded: 64 MiB touched, 16 MiB written.
    let memory = vec![1u8; 64 << 20];
    let dir = tempfile::tempdir().expect("tempdir");
    let mut file = std::fs::File::create(dir.path().join("load")).expect("create");

    let mut prev = reference(pid);
    collector.sample(0);
    for round in 0..3 {
        let deadline = Instant::now() + Duration::from_secs(2);
        file.write_all(&vec![round as u8; 16 << 20][..(16 << 20) / 3])
            .expect("write");
        file.sync_all().expect("sync");
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let now = reference(pid);
        let sample = collector.sample(0);
        let sys = sample.system;

        let all = |r: &Reference, i: usize| r.cpus[0][i];
        let total = all(&now, 3) - all(&prev, 3);
        close(
            "cpu busy %",
            sys.cpu_percent,
            share(all(&now, 0) - all(&prev, 0), total),
        );
        close(
            "cpu iowait %",
            sys.cpu_iowait_percent,
            share(all(&now, 1) - all(&prev, 1), total),
        );
        close(
            "cpu steal %",
            sys.cpu_steal_percent,
            share(all(&now, 2) - all(&prev, 2), total),
        );
        assert_eq!(sys.cpu_per_core.len() + 1, now.cpus.len());
        for (i, got) in sys.cpu_per_core.iter().enumerate() {
            let (a, b) = (&prev.cpus[i + 1], &now.cpus[i + 1]);
            close(
                &format!("core {i} busy %"),
                *got,
                share(b[0] - a[0], b[3] - a[3]),
            );
        }
        close(
            "memory used MiB",
            sys.memory_used_bytes as f64 / 1048576.0,
            now.mem_used as f64 / 1048576.0,
        );
        close("load1", sys.load1, now.load1);

        let w = sample
            .workers
            .iter()
            .find(|w| w.pid == pid)
            .expect("the busy worker is reported");
        let secs = now.at.duration_since(prev.at).as_secs_f64();
        let want = (now.worker_ticks - prev.worker_ticks) as f64 / clock_ticks / secs * 100.0;
        close("worker cpu % of one core", w.cpu_percent, want);
        let rss = ps_rss(pid);
        assert!(
            (w.rss_bytes as f64 - rss as f64).abs() <= rss as f64 * 0.01,
            "worker RSS: agent {}, ps {rss}",
            w.rss_bytes
        );
        prev = now;
    }
    assert_eq!(memory.iter().map(|&b| u64::from(b)).sum::<u64>(), 64 << 20);
}
