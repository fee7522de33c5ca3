//! The sample store's test suite, written against [`SampleStore`] so that
//! every backend runs the same checks (`sqlite/tests.rs` runs it on SQLite).

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::history_query::Metric;
use super::rollup::{Tier, bucket_of};
use super::samples::{HistoryQuery, HostBatch, SampleStore};
use crate::model::{
    Filesystem, GroupStatus, HostInfo, Sample, SystemMetrics, TimestampMs, Worker, WorkerGroup,
    now_ms, percent,
};

pub fn host(id: &str, interval_ms: u32) -> HostInfo {
    HostInfo {
        host_id: id.to_owned(),
        hostname: format!("{id}.example"),
        os: "Linux".to_owned(),
        kernel: "6.1".to_owned(),
        cpu_count: 2,
        memory_total_bytes: 16 << 30,
        agent_version: "test".to_owned(),
        interval_ms,
        worker_groups: vec![WorkerGroup {
            name: "q".to_owned(),
            min_alive: 2,
        }],
    }
}

/// A sample whose values are all exact at the store's resolution (0.01
/// for percentages), with workers whose pids change now and then.
pub fn random_sample(rng: &mut StdRng, ts: TimestampMs, pids: &mut [u32; 2]) -> Sample {
    let centi = |rng: &mut StdRng, max: u32| f64::from(rng.random_range(0..=max * 100)) / 100.0;
    if rng.random_ratio(1, 50) {
        pids[rng.random_range(0..2)] += 1;
    }
    let total = 16u64 << 30;
    let used = rng.random_range(1u64 << 30..15 << 30);
    let disk = 1u64 << 40;
    let disk_used = rng.random_range(0..disk - (disk >> 5));
    let disk_available = disk - disk_used - (disk >> 5);
    Sample {
        timestamp_ms: ts,
        system: SystemMetrics {
            cpu_percent: centi(rng, 100),
            cpu_per_core: vec![centi(rng, 100), centi(rng, 100)],
            cpu_iowait_percent: centi(rng, 5),
            cpu_steal_percent: centi(rng, 5),
            interfaces: vec![crate::model::NetInterface {
                name: "eth0".to_owned(),
                rx_bytes_per_sec: f64::from(rng.random_range(0..10_000_000u32)),
                tx_bytes_per_sec: 0.0,
            }],
            load1: centi(rng, 8),
            load5: centi(rng, 8),
            load15: centi(rng, 8),
            memory_total_bytes: total,
            memory_used_bytes: used,
            memory_available_bytes: total - used,
            swap_total_bytes: 0,
            swap_used_bytes: 0,
            filesystems: vec![Filesystem {
                mount_point: "/data".to_owned(),
                fs_type: "ext4".to_owned(),
                device: "/dev/sdb".to_owned(),
                total_bytes: disk,
                available_bytes: disk_available,
                used_bytes: disk_used,
            }],
            disk_read_bytes_per_sec: f64::from(rng.random_range(0..1_000_000u32)),
            disk_write_bytes_per_sec: 0.0,
            net_rx_bytes_per_sec: 0.0,
            net_tx_bytes_per_sec: 0.0,
            uptime_secs: 1000,
            process_count: rng.random_range(100..300),
        },
        workers: pids
            .iter()
            .map(|pid| Worker {
                group: "q".to_owned(),
                pid: *pid,
                name: "rq".to_owned(),
                cmdline: format!("python -m rq worker --name w{pid}"),
                state: "running".to_owned(),
                cpu_percent: centi(rng, 200),
                rss_bytes: rng.random_range(1u64 << 20..1 << 30),
                threads: 3,
                start_time_secs: i64::from(*pid),
            })
            .collect(),
        groups: vec![GroupStatus {
            name: "q".to_owned(),
            min_alive: 2,
            alive: rng.random_range(0..3),
            restarts: 0,
        }],
    }
}

/// `count` samples from `start`, about `interval_ms` apart with jitter and
/// an occasional gap.
pub fn timeline(
    rng: &mut StdRng,
    start: TimestampMs,
    interval_ms: i64,
    count: usize,
) -> Vec<Sample> {
    let mut pids = [100, 200];
    let mut ts = start;
    (0..count)
        .map(|_| {
            ts += interval_ms + rng.random_range(-interval_ms / 20..=interval_ms / 20);
            if rng.random_ratio(1, 300) {
                ts += rng.random_range(0..300_000);
            }
            random_sample(rng, ts, &mut pids)
        })
        .collect()
}

async fn write(store: &dyn SampleStore, host_id: &str, samples: &[Sample]) -> Vec<bool> {
    let mut stored = store
        .write_batches(&[HostBatch {
            host_id: host_id.to_owned(),
            samples: samples.to_vec(),
        }])
        .await
        .expect("write");
    stored.pop().expect("one batch")
}

async fn history(
    store: &dyn SampleStore,
    host_id: &str,
    metric: &Metric,
    step_ms: i64,
    tier: Tier,
) -> Vec<(TimestampMs, f64, f64, f64, i64)> {
    let answer = store
        .history(&HistoryQuery {
            host_id,
            metric,
            from_ms: 0,
            to_ms: i64::MAX / 2,
            step_ms,
            tier: Some(tier),
        })
        .await
        .expect("history");
    assert_eq!(answer.tier, tier);
    answer
        .buckets
        .iter()
        .map(|b| (b.t, b.avg, b.min, b.max, b.count))
        .collect()
}

/// A resent batch stores nothing twice, before and after its chunk is
/// written, and the newest sample is what `current` shows.
pub async fn resent_batches_store_nothing_twice(store: &dyn SampleStore) {
    let mut rng = StdRng::seed_from_u64(7);
    store
        .upsert_host(&host("a", 1000), now_ms())
        .await
        .expect("host");
    let samples = timeline(&mut rng, now_ms() - 60_000, 1000, 4);
    assert_eq!(write(store, "a", &samples[..2]).await, [true, true]);
    assert_eq!(write(store, "a", &samples[..3]).await, [false, false, true]);
    let current = store.current(Some("a")).await.expect("current");
    assert_eq!(current[0].timestamp_ms, samples[2].timestamp_ms);
    assert_eq!(current[0].system.cpu_percent, samples[2].system.cpu_percent);
    let (ts, groups) = store
        .worker_groups("a")
        .await
        .expect("groups")
        .expect("some");
    assert_eq!(ts, samples[2].timestamp_ms);
    assert_eq!(groups[0].workers.len(), 2);
    // Close every chunk: the resend is checked against what is stored.
    store
        .maintain(now_ms() + 86_400_000)
        .await
        .expect("maintain");
    assert_eq!(
        write(store, "a", &samples).await,
        [false, false, false, true]
    );
    // Twice in one batch is stored once.
    let late = timeline(&mut rng, samples[0].timestamp_ms - 10_000, 1000, 1);
    assert_eq!(
        write(store, "a", &[late[0].clone(), late[0].clone()]).await,
        [true, false]
    );
    let cpu = Metric::parse("cpu_percent").expect("metric");
    let buckets = history(store, "a", &cpu, 3_600_000, Tier::Raw).await;
    assert_eq!(buckets.iter().map(|b| b.4).sum::<i64>(), 5);
    let hour = history(store, "a", &cpu, 3_600_000, Tier::Hour).await;
    assert_eq!(hour.iter().map(|b| b.4).sum::<i64>(), 5);
    let hosts = store.hosts().await.expect("hosts");
    // Seen when it said hello, or at its newest sample if that is later.
    assert!(hosts[0].last_seen_ms >= samples[3].timestamp_ms);
    assert!(
        store
            .history(&HistoryQuery {
                host_id: "a",
                metric: &cpu,
                from_ms: 0,
                to_ms: 1,
                step_ms: 90_000,
                tier: Some(Tier::Minute),
            })
            .await
            .is_err()
    );
}

/// What a metric's value is in a sample, at the store's resolution.
fn expected_value(metric: &Metric, s: &Sample) -> Option<f64> {
    let round = |v: f64| (v * 100.0).round() / 100.0;
    match metric {
        Metric::Column("cpu_percent") => Some(s.system.cpu_percent),
        Metric::Column("memory_percent") => Some(round(percent(
            s.system.memory_used_bytes,
            s.system.memory_total_bytes,
        ))),
        Metric::Column("cpu_steal_percent") => Some(s.system.cpu_steal_percent),
        Metric::InterfaceRx(name) => s
            .system
            .interfaces
            .iter()
            .find(|i| i.name == *name)
            .map(|i| i.rx_bytes_per_sec),
        Metric::Core(n) => s.system.cpu_per_core.get(usize::from(*n)).copied(),
        Metric::Filesystem(mount) => s
            .system
            .filesystems
            .iter()
            .find(|f| f.mount_point == *mount)
            .map(|f| round(f.used_percent())),
        Metric::GroupAlive(g) => s
            .groups
            .iter()
            .find(|x| x.name == *g)
            .map(|x| f64::from(x.alive)),
        Metric::WorkerCpu(pid) => s
            .workers
            .iter()
            .find(|w| w.pid == *pid)
            .map(|w| w.cpu_percent),
        _ => None,
    }
}

/// Buckets computed straight from the samples.
fn expected(
    metric: &Metric,
    samples: &BTreeMap<TimestampMs, Sample>,
    step: i64,
) -> Vec<(TimestampMs, f64, f64, f64, i64)> {
    let mut out: BTreeMap<TimestampMs, (f64, f64, f64, i64)> = BTreeMap::new();
    for (ts, s) in samples {
        if let Some(v) = expected_value(metric, s) {
            let e = out
                .entry(bucket_of(*ts, step))
                .or_insert((0.0, f64::MAX, f64::MIN, 0));
            e.0 += v;
            e.1 = e.1.min(v);
            e.2 = e.2.max(v);
            e.3 += 1;
        }
    }
    out.into_iter()
        .map(|(t, (sum, min, max, n))| (t, sum / n as f64, min, max, n))
        .collect()
}

/// Property: whatever order and however often samples arrive, every
/// rollup bucket equals the aggregate of the raw samples it covers, and
/// both equal what the samples say.
pub async fn rollups_equal_the_raw_aggregate(store: &dyn SampleStore, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let now = now_ms();
    let mut truth: BTreeMap<&str, BTreeMap<TimestampMs, Sample>> = BTreeMap::new();
    for (id, interval, count) in [("p1", 1000u32, 5400usize), ("p2", 5000, 1200)] {
        store
            .upsert_host(&host(id, interval), now)
            .await
            .expect("host");
        let start = now - i64::from(interval) * count as i64 - 30_000;
        let samples = timeline(&mut rng, start, i64::from(interval), count);
        let mut held: Vec<Vec<Sample>> = Vec::new();
        let mut i = 0;
        while i < samples.len() {
            let n = rng.random_range(1..=150).min(samples.len() - i);
            let batch = samples[i..i + n].to_vec();
            i += n;
            match rng.random_range(0..10) {
                // Held back, sent later (a backfill).
                0 => held.push(batch),
                // Sent twice.
                1 => {
                    write(store, id, &batch).await;
                    write(store, id, &batch).await;
                }
                _ => {
                    write(store, id, &batch).await;
                }
            }
            if rng.random_ratio(1, 8)
                && let Some(late) = held.pop()
            {
                write(store, id, &late).await;
            }
        }
        for late in held {
            write(store, id, &late).await;
        }
        truth.insert(
            id,
            samples.into_iter().map(|s| (s.timestamp_ms, s)).collect(),
        );
    }
    let metrics = [
        "cpu_percent",
        "memory_percent",
        "cpu_core:1",
        "fs_used_percent:/data",
        "workers_alive:q",
        "worker_cpu_percent:100",
        "cpu_steal_percent",
        "net_rx_bytes_per_sec:eth0",
    ];
    for (id, samples) in &truth {
        for name in metrics {
            let metric = Metric::parse(name).expect("metric");
            for (step, tier) in [(60_000, Tier::Minute), (3_600_000, Tier::Hour)] {
                let raw = history(store, id, &metric, step, Tier::Raw).await;
                let rolled = history(store, id, &metric, step, tier).await;
                assert_eq!(raw.len(), rolled.len(), "{id} {name} {tier:?}");
                for (r, t) in raw.iter().zip(&rolled) {
                    assert_eq!((r.0, r.2, r.3, r.4), (t.0, t.2, t.3, t.4), "{id} {name}");
                    assert!((r.1 - t.1).abs() < 1e-9, "{id} {name} avg {r:?} {t:?}");
                }
                let want = expected(&metric, samples, step);
                assert_eq!(raw.len(), want.len(), "{id} {name} step {step}");
                for (r, w) in raw.iter().zip(&want) {
                    assert_eq!((r.0, r.2, r.3, r.4), (w.0, w.2, w.3, w.4), "{id} {name}");
                    assert!((r.1 - w.1).abs() < 1e-6 * w.1.abs().max(1.0), "{r:?} {w:?}");
                }
            }
        }
    }
}
