//! A `Batch`'s samples, checked field by field and turned into the
//! aggregator's [`Sample`]s; and the ranges an agent's spool dropped, as
//! gaps in the host's history.

use std::collections::HashSet;

use fleetwatch_proto as wire;

use super::limits::*;
use crate::ids::{Invalid, MAX_GROUP_NAME, check_id, invalid};
use crate::model::{
    Filesystem, GroupStatus, HostInfo, NetInterface, Sample, SystemMetrics, TimestampMs, Worker,
};

/// Most dropped ranges one batch may report.
pub const MAX_DROPPED_RANGES: usize = 1000;

/// The ranges an agent's spool dropped, as gaps of `host_id`.
pub fn dropped(
    host_id: &str,
    ranges: Vec<wire::DroppedRange>,
    now_ms: TimestampMs,
) -> Result<Vec<crate::store::Gap>, Invalid> {
    bounded("batch.dropped", &ranges, MAX_DROPPED_RANGES)?;
    ranges
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            if r.from_ms < 0 || r.to_ms < r.from_ms || r.to_ms > now_ms + MAX_FUTURE_MS {
                return Err(invalid(
                    format!("batch.dropped[{i}]"),
                    format!("{}..{} is not a range of past times", r.from_ms, r.to_ms),
                ));
            }
            Ok(crate::store::Gap {
                host_id: host_id.to_owned(),
                from_ms: r.from_ms,
                to_ms: r.to_ms,
                samples: r.samples,
                reported_ms: now_ms,
            })
        })
        .collect()
}

/// Checks and converts a batch's samples from `host` (whose Hello declared
/// its worker groups); `now_ms` is the aggregator's clock.
pub fn batch(b: wire::Batch, host: &HostInfo, now_ms: TimestampMs) -> Result<Vec<Sample>, Invalid> {
    if b.samples.is_empty() {
        return Err(invalid("batch.samples", "is empty"));
    }
    bounded("batch.samples", &b.samples, MAX_SAMPLES_PER_BATCH)?;
    let declared: HashSet<&str> = host.worker_groups.iter().map(|g| g.name.as_str()).collect();
    let samples = At::root("samples");
    b.samples
        .into_iter()
        .enumerate()
        .map(|(i, s)| sample(samples.item(i), s, &declared, now_ms))
        .collect()
}

fn declared_group(field: At<'_>, name: &str, declared: &HashSet<&str>) -> Result<(), Invalid> {
    if declared.contains(name) {
        Ok(())
    } else {
        Err(invalid(
            field.to_string(),
            format!("`{name}` is not a worker group this agent declared in its Hello"),
        ))
    }
}

fn sample(
    at: At<'_>,
    mut s: wire::Sample,
    declared: &HashSet<&str>,
    now_ms: TimestampMs,
) -> Result<Sample, Invalid> {
    let ts = s.timestamp_ms;
    if ts > now_ms + MAX_FUTURE_MS {
        return Err(invalid(
            at.field("timestamp_ms").to_string(),
            format!(
                "{ts} is {} s ahead of the aggregator's clock",
                (ts - now_ms) / 1000
            ),
        ));
    }
    if ts < now_ms - MAX_AGE_MS {
        return Err(invalid(
            at.field("timestamp_ms").to_string(),
            format!("{ts} is more than 7 days old"),
        ));
    }
    let system = s
        .system
        .ok_or_else(|| invalid(at.field("system").to_string(), "is missing"))?;
    // One oversized list must not silence the host: past its bound a list
    // is cut (the agent counts what it left out), the sample still stored.
    s.workers.truncate(MAX_WORKERS_PER_SAMPLE);
    s.groups.truncate(MAX_GROUPS);
    let workers_at = at.field("workers");
    let workers: Vec<Worker> = s
        .workers
        .into_iter()
        .enumerate()
        .map(|(i, w)| worker(workers_at.item(i), w, declared))
        .collect::<Result<_, _>>()?;
    // A process may be in two groups, but only once in each.
    let mut seen = HashSet::with_capacity(workers.len());
    for (i, w) in workers.iter().enumerate() {
        if !seen.insert((w.group.as_str(), w.pid)) {
            return Err(invalid(
                workers_at.item(i).field("pid").to_string(),
                format!("pid {} is listed twice in group `{}`", w.pid, w.group),
            ));
        }
    }
    let mut named = HashSet::with_capacity(s.groups.len());
    let groups_at = at.field("groups");
    let groups = s
        .groups
        .into_iter()
        .enumerate()
        .map(|(i, g)| {
            let group = groups_at.item(i);
            let field = group.field("name");
            check_id(field, &g.name, MAX_GROUP_NAME)?;
            declared_group(field, &g.name, declared)?;
            if !named.insert(g.name.clone()) {
                return Err(invalid(
                    field.to_string(),
                    format!("group `{}` is listed twice", g.name),
                ));
            }
            Ok(GroupStatus {
                name: g.name,
                min_alive: g.min_alive,
                alive: g.alive,
                restarts: g.restarts,
            })
        })
        .collect::<Result<_, Invalid>>()?;
    Ok(Sample {
        timestamp_ms: ts,
        system: system_metrics(at.field("system"), system)?,
        workers,
        groups,
    })
}

fn system_metrics(at: At<'_>, mut m: wire::SystemMetrics) -> Result<SystemMetrics, Invalid> {
    let f = |name| at.field(name);
    let cores = f("cpu_per_core");
    let filesystems = f("filesystems");
    let interfaces = f("interfaces");
    bounded(cores, &m.cpu_per_core, MAX_CORES)?;
    m.filesystems.truncate(MAX_FILESYSTEMS);
    bounded(interfaces, &m.interfaces, MAX_INTERFACES)?;
    // Rates up to 1 PB/s and loads up to a million: beyond is a broken agent.
    const RATE: f64 = 1e15;
    const LOAD: f64 = 1e6;
    Ok(SystemMetrics {
        cpu_percent: percent(f("cpu_percent"), m.cpu_percent)?,
        cpu_per_core: m
            .cpu_per_core
            .iter()
            .enumerate()
            .map(|(i, v)| percent(cores.item(i), *v))
            .collect::<Result<_, _>>()?,
        cpu_iowait_percent: percent(f("cpu_iowait_percent"), m.cpu_iowait_percent)?,
        cpu_steal_percent: percent(f("cpu_steal_percent"), m.cpu_steal_percent)?,
        load1: number(f("load1"), m.load1, LOAD)?,
        load5: number(f("load5"), m.load5, LOAD)?,
        load15: number(f("load15"), m.load15, LOAD)?,
        memory_total_bytes: m.memory_total_bytes,
        memory_used_bytes: within(
            f("memory_used_bytes"),
            m.memory_used_bytes,
            m.memory_total_bytes,
        )?,
        memory_available_bytes: within(
            f("memory_available_bytes"),
            m.memory_available_bytes,
            m.memory_total_bytes,
        )?,
        swap_total_bytes: m.swap_total_bytes,
        swap_used_bytes: within(f("swap_used_bytes"), m.swap_used_bytes, m.swap_total_bytes)?,
        filesystems: m
            .filesystems
            .into_iter()
            .enumerate()
            .map(|(i, fs)| filesystem(filesystems.item(i), fs))
            .collect::<Result<_, _>>()?,
        disk_read_bytes_per_sec: number(
            f("disk_read_bytes_per_sec"),
            m.disk_read_bytes_per_sec,
            RATE,
        )?,
        disk_write_bytes_per_sec: number(
            f("disk_write_bytes_per_sec"),
            m.disk_write_bytes_per_sec,
            RATE,
        )?,
        net_rx_bytes_per_sec: number(f("net_rx_bytes_per_sec"), m.net_rx_bytes_per_sec, RATE)?,
        net_tx_bytes_per_sec: number(f("net_tx_bytes_per_sec"), m.net_tx_bytes_per_sec, RATE)?,
        interfaces: m
            .interfaces
            .into_iter()
            .enumerate()
            .map(|(i, n)| interface(interfaces.item(i), n, RATE))
            .collect::<Result<_, _>>()?,
        uptime_secs: m.uptime_secs,
        process_count: m.process_count,
    })
}

fn filesystem(at: At<'_>, fs: wire::Filesystem) -> Result<Filesystem, Invalid> {
    if fs.mount_point.is_empty() {
        return Err(invalid(at.field("mount_point").to_string(), "is empty"));
    }
    if fs.available_bytes > fs.total_bytes {
        return Err(invalid(
            at.field("available_bytes").to_string(),
            "is more than total_bytes",
        ));
    }
    if fs.used_bytes > fs.total_bytes {
        return Err(invalid(
            at.field("used_bytes").to_string(),
            "is more than total_bytes",
        ));
    }
    if fs.used_bytes.saturating_add(fs.available_bytes) > fs.total_bytes {
        return Err(invalid(
            at.field("used_bytes").to_string(),
            "plus available_bytes is more than total_bytes",
        ));
    }
    // An agent from before `used_bytes` sends 0: total − available is the
    // best figure it allows (it counts root's reserve as used).
    let used_bytes = if fs.used_bytes == 0 {
        fs.total_bytes - fs.available_bytes
    } else {
        fs.used_bytes
    };
    Ok(Filesystem {
        mount_point: text(at.field("mount_point"), fs.mount_point, MAX_PATH)?,
        fs_type: text(at.field("fs_type"), fs.fs_type, MAX_TEXT)?,
        device: text(at.field("device"), fs.device, MAX_PATH)?,
        total_bytes: fs.total_bytes,
        available_bytes: fs.available_bytes,
        used_bytes,
    })
}

fn interface(at: At<'_>, n: wire::NetInterface, max_rate: f64) -> Result<NetInterface, Invalid> {
    if n.name.is_empty() {
        return Err(invalid(at.field("name").to_string(), "is empty"));
    }
    Ok(NetInterface {
        rx_bytes_per_sec: number(at.field("rx_bytes_per_sec"), n.rx_bytes_per_sec, max_rate)?,
        tx_bytes_per_sec: number(at.field("tx_bytes_per_sec"), n.tx_bytes_per_sec, max_rate)?,
        // Linux names are at most 15 bytes; allow other systems some room.
        name: text(at.field("name"), n.name, 64)?,
    })
}

fn worker(at: At<'_>, w: wire::Worker, declared: &HashSet<&str>) -> Result<Worker, Invalid> {
    check_id(at.field("group"), &w.group, MAX_GROUP_NAME)?;
    declared_group(at.field("group"), &w.group, declared)?;
    Ok(Worker {
        group: w.group,
        pid: w.pid,
        name: text(at.field("name"), w.name, MAX_TEXT)?,
        cmdline: text(at.field("cmdline"), w.cmdline, MAX_CMDLINE)?,
        state: text(at.field("state"), w.state, 32)?,
        cpu_percent: number(at.field("cpu_percent"), w.cpu_percent, 100.0 * 65_536.0)?,
        rss_bytes: w.rss_bytes,
        threads: w.threads,
        start_time_secs: w.start_time_secs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::WorkerGroup;

    const NOW: i64 = 1_800_000_000_000;

    fn good_sample() -> wire::Sample {
        wire::Sample {
            timestamp_ms: NOW,
            system: Some(wire::SystemMetrics {
                cpu_percent: 12.5,
                cpu_per_core: vec![10.0, 15.0],
                memory_total_bytes: 100,
                memory_used_bytes: 40,
                filesystems: vec![wire::Filesystem {
                    mount_point: "/".into(),
                    fs_type: "ext4".into(),
                    device: "/dev/sda1".into(),
                    total_bytes: 1000,
                    available_bytes: 250,
                    used_bytes: 700,
                }],
                cpu_iowait_percent: 3.0,
                cpu_steal_percent: 1.5,
                interfaces: vec![wire::NetInterface {
                    name: "eth0".into(),
                    rx_bytes_per_sec: 1000.0,
                    tx_bytes_per_sec: 10.0,
                }],
                ..Default::default()
            }),
            workers: vec![wire::Worker {
                group: "queue".into(),
                pid: 42,
                name: "<script>".into(),
                cmdline: "python worker.py".into(),
                state: "sleeping".into(),
                cpu_percent: 150.0,
                ..Default::default()
            }],
            groups: vec![wire::GroupStatus {
                name: "queue".into(),
                min_alive: 2,
                alive: 1,
                restarts: 0,
                ..Default::default()
            }],
        }
    }

    fn declaring(groups: &[&str]) -> HostInfo {
        HostInfo {
            host_id: "web-1".into(),
            hostname: "web-1".into(),
            os: "linux".into(),
            kernel: "6".into(),
            cpu_count: 2,
            memory_total_bytes: 100,
            agent_version: "0.1.0".into(),
            interval_ms: 1000,
            worker_groups: groups
                .iter()
                .map(|name| WorkerGroup {
                    name: (*name).to_owned(),
                    min_alive: 1,
                })
                .collect(),
        }
    }

    fn check(mutate: impl FnOnce(&mut wire::Sample)) -> Result<Vec<Sample>, Invalid> {
        let mut s = good_sample();
        mutate(&mut s);
        batch(
            wire::Batch {
                seq: 1,
                samples: vec![s],
                ..Default::default()
            },
            &declaring(&["queue", "g"]),
            NOW,
        )
    }

    fn system(s: &mut wire::Sample) -> &mut wire::SystemMetrics {
        s.system.as_mut().expect("system")
    }

    #[test]
    fn accepts_a_good_sample_and_keeps_its_values() {
        let samples = check(|_| {}).expect("valid");
        let s = &samples[0];
        assert_eq!(s.system.cpu_per_core, vec![10.0, 15.0]);
        let fs = &s.system.filesystems[0];
        assert_eq!((fs.used_bytes, fs.reserved_bytes()), (700, 50));
        assert!((fs.used_percent() - 700.0 / 950.0 * 100.0).abs() < 1e-9);
        assert_eq!(s.system.cpu_steal_percent, 1.5);
        assert_eq!(s.system.cpu_iowait_percent, 3.0);
        assert_eq!(s.system.interfaces[0].name, "eth0");
        assert_eq!(s.workers[0].name, "<script>", "text is kept as text");
        assert_eq!(s.groups[0].alive, 1);
    }

    #[test]
    fn rejects_hostile_values_naming_the_field() {
        type Mutation = Box<dyn FnOnce(&mut wire::Sample)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (
                Box::new(|s| system(s).cpu_percent = f64::NAN),
                "samples[0].system.cpu_percent",
            ),
            (
                Box::new(|s| system(s).load1 = f64::INFINITY),
                "samples[0].system.load1",
            ),
            (
                Box::new(|s| system(s).cpu_per_core[1] = -1.0),
                "samples[0].system.cpu_per_core[1]",
            ),
            (
                Box::new(|s| system(s).cpu_percent = 250.0),
                "samples[0].system.cpu_percent",
            ),
            (
                Box::new(|s| s.timestamp_ms = NOW + 3_600_000),
                "samples[0].timestamp_ms",
            ),
            (Box::new(|s| s.timestamp_ms = 0), "samples[0].timestamp_ms"),
            (
                Box::new(|s| s.workers[0].cmdline = "x".repeat(MAX_CMDLINE + 1)),
                "samples[0].workers[0].cmdline",
            ),
            (
                Box::new(|s| s.workers[0].name = "n".repeat(10_000)),
                "samples[0].workers[0].name",
            ),
            (
                Box::new(|s| s.workers[0].group = "<b>".into()),
                "samples[0].workers[0].group",
            ),
            (
                Box::new(|s| s.workers[0].cpu_percent = f64::NAN),
                "samples[0].workers[0].cpu_percent",
            ),
            (Box::new(|s| s.system = None), "samples[0].system"),
            (
                Box::new(|s| system(s).filesystems[0].available_bytes = 2000),
                "samples[0].system.filesystems[0].available_bytes",
            ),
            (
                Box::new(|s| system(s).cpu_per_core = vec![0.0; MAX_CORES + 1]),
                "samples[0].system.cpu_per_core",
            ),
            (
                Box::new(|s| system(s).filesystems[0].used_bytes = 1001),
                "samples[0].system.filesystems[0].used_bytes",
            ),
            (
                Box::new(|s| system(s).filesystems[0].used_bytes = 800),
                "samples[0].system.filesystems[0].used_bytes",
            ),
            (
                Box::new(|s| system(s).cpu_steal_percent = f64::NAN),
                "samples[0].system.cpu_steal_percent",
            ),
            (
                Box::new(|s| system(s).cpu_iowait_percent = 150.0),
                "samples[0].system.cpu_iowait_percent",
            ),
            (
                Box::new(|s| system(s).interfaces[0].rx_bytes_per_sec = -1.0),
                "samples[0].system.interfaces[0].rx_bytes_per_sec",
            ),
            (
                Box::new(|s| system(s).interfaces[0].name = "x".repeat(65)),
                "samples[0].system.interfaces[0].name",
            ),
            (
                Box::new(|s| system(s).interfaces[0].name = String::new()),
                "samples[0].system.interfaces[0].name",
            ),
            (
                Box::new(|s| {
                    system(s).interfaces = vec![
                        wire::NetInterface {
                            name: "eth".into(),
                            ..Default::default()
                        };
                        MAX_INTERFACES + 1
                    ]
                }),
                "samples[0].system.interfaces",
            ),
            (
                Box::new(|s| system(s).memory_used_bytes = 1 << 60),
                "samples[0].system.memory_used_bytes",
            ),
            (
                Box::new(|s| system(s).memory_available_bytes = 101),
                "samples[0].system.memory_available_bytes",
            ),
            (
                Box::new(|s| system(s).swap_used_bytes = 1),
                "samples[0].system.swap_used_bytes",
            ),
            (
                Box::new(|s| s.timestamp_ms = NOW + MAX_FUTURE_MS + 1),
                "samples[0].timestamp_ms",
            ),
            (
                Box::new(|s| s.workers[0].group = "undeclared".into()),
                "samples[0].workers[0].group",
            ),
            (
                Box::new(|s| s.groups[0].name = "undeclared".into()),
                "samples[0].groups[0].name",
            ),
            (
                Box::new(|s| s.groups.push(s.groups[0].clone())),
                "samples[0].groups[1].name",
            ),
            (
                Box::new(|s| s.workers.push(s.workers[0].clone())),
                "samples[0].workers[1].pid",
            ),
        ];
        for (mutate, field) in cases {
            let err = check(mutate).expect_err(field);
            assert_eq!(err.field, field, "{err}");
        }
        // Within the skew allowance is fine, and one pid may be in two groups.
        check(|s| s.timestamp_ms = NOW + MAX_FUTURE_MS).expect("small skew");
        check(|s| {
            let mut other = s.workers[0].clone();
            other.group = "g".into();
            s.workers.push(other);
        })
        .expect("one process in two groups");
    }

    #[test]
    fn an_old_agent_without_used_bytes_gets_total_minus_available() {
        let samples = check(|s| system(s).filesystems[0].used_bytes = 0).expect("valid");
        let fs = &samples[0].system.filesystems[0];
        assert_eq!(fs.used_bytes, 750);
        assert_eq!(fs.used_percent(), 75.0);
    }

    #[test]
    fn dropped_ranges_become_gaps_and_bad_ones_are_named() {
        let range = |from_ms, to_ms| wire::DroppedRange {
            from_ms,
            to_ms,
            samples: 3,
        };
        let gaps = dropped("h", vec![range(NOW - 5000, NOW - 3000)], NOW).expect("valid");
        assert_eq!(
            (gaps[0].host_id.as_str(), gaps[0].from_ms, gaps[0].samples),
            ("h", NOW - 5000, 3)
        );
        let err = dropped("h", vec![range(1, 2), range(5, 4)], NOW).expect_err("backwards");
        assert_eq!(err.field, "batch.dropped[1]");
    }

    #[test]
    fn oversized_lists_are_cut_not_refused() {
        let samples = check(|s| {
            s.workers = (0..MAX_WORKERS_PER_SAMPLE as u32 + 500)
                .map(|pid| wire::Worker {
                    group: "queue".into(),
                    pid,
                    name: "w".into(),
                    state: "sleeping".into(),
                    ..Default::default()
                })
                .collect();
            let fs = system(s).filesystems[0].clone();
            system(s).filesystems = vec![fs; MAX_FILESYSTEMS + 10];
        })
        .expect("a host with too many workers and filesystems is still stored");
        let sample = &samples[0];
        assert_eq!(sample.workers.len(), MAX_WORKERS_PER_SAMPLE);
        assert_eq!(sample.system.filesystems.len(), MAX_FILESYSTEMS);
        assert_eq!(sample.system.cpu_percent, 12.5);
    }

    #[test]
    fn rejects_empty_and_oversized_batches() {
        let empty = wire::Batch {
            seq: 1,
            samples: vec![],
            ..Default::default()
        };
        let host = declaring(&["queue"]);
        assert_eq!(
            batch(empty, &host, NOW).expect_err("empty").field,
            "batch.samples"
        );
        let huge = wire::Batch {
            seq: 1,
            samples: vec![good_sample(); MAX_SAMPLES_PER_BATCH + 1],
            ..Default::default()
        };
        assert_eq!(
            batch(huge, &host, NOW).expect_err("huge").field,
            "batch.samples"
        );
    }
}
