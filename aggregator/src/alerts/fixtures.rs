//! Test fixtures shared by the alert tests: hosts, samples, pools, disks.

use super::config::builtin_rules;
use super::engine::Engine;
use super::instance::{AlertState, Transition};
use super::rules::Severity;
use crate::model::{Filesystem, GroupStatus, HostInfo, Sample, SystemMetrics};

pub(crate) fn system() -> SystemMetrics {
    SystemMetrics {
        cpu_percent: 10.0,
        cpu_per_core: vec![10.0; 4],
        cpu_iowait_percent: 0.0,
        cpu_steal_percent: 0.0,
        interfaces: Vec::new(),
        load1: 0.5,
        load5: 0.5,
        load15: 0.5,
        memory_total_bytes: 100,
        memory_used_bytes: 20,
        memory_available_bytes: 80,
        swap_total_bytes: 0,
        swap_used_bytes: 0,
        filesystems: Vec::new(),
        disk_read_bytes_per_sec: 0.0,
        disk_write_bytes_per_sec: 0.0,
        net_rx_bytes_per_sec: 0.0,
        net_tx_bytes_per_sec: 0.0,
        uptime_secs: 100,
        process_count: 100,
    }
}

pub(crate) fn host(name: &str) -> HostInfo {
    HostInfo {
        host_id: format!("id-{name}"),
        hostname: name.to_owned(),
        os: "linux".into(),
        kernel: "6".into(),
        cpu_count: 4,
        memory_total_bytes: 100,
        agent_version: "0.1.0".into(),
        interval_ms: 5000,
        worker_groups: Vec::new(),
    }
}

pub(crate) fn sample(edit: impl FnOnce(&mut Sample)) -> Sample {
    let mut s = Sample {
        timestamp_ms: 0,
        system: system(),
        workers: Vec::new(),
        groups: Vec::new(),
    };
    edit(&mut s);
    s
}

pub(crate) fn cpu(percent: f64) -> Sample {
    sample(|s| s.system.cpu_percent = percent)
}

pub(crate) fn group(name: &str, min_alive: u32, alive: u32, restarts: u64) -> GroupStatus {
    GroupStatus {
        name: name.into(),
        min_alive,
        alive,
        restarts,
    }
}

pub(crate) fn pools(groups: Vec<GroupStatus>) -> Sample {
    sample(|s| s.groups = groups)
}

pub(crate) fn disks(used: &[(&str, u64)]) -> Sample {
    sample(|s| {
        s.system.filesystems = used
            .iter()
            .map(|&(mount, pct)| Filesystem {
                mount_point: mount.into(),
                fs_type: "ext4".into(),
                device: "/dev/sda1".into(),
                total_bytes: 100,
                available_bytes: 100 - pct,
                used_bytes: pct,
            })
            .collect();
    })
}

pub(crate) fn brief(ts: &[Transition]) -> Vec<(&str, &str, AlertState, AlertState, Severity)> {
    ts.iter()
        .map(|t| (t.rule.as_str(), t.scope.as_str(), t.from, t.to, t.severity))
        .collect()
}

pub(crate) fn defaults() -> Engine {
    Engine::new(builtin_rules())
}
