//! The one place the agent's types become wire types: its [`Sample`] and
//! [`Hello`] as `fleetwatch_proto` messages, field for field, for the
//! shipper to send and the spool to keep (the spool's files hold encoded
//! wire samples, so files written by earlier agents still read).

use fleetwatch_proto as wire;

use crate::sample::{
    Filesystem, GroupStatus, Hello, NetInterface, Sample, SystemMetrics, Worker, WorkerGroup,
};

impl From<Sample> for wire::Sample {
    fn from(s: Sample) -> Self {
        Self {
            timestamp_ms: s.timestamp_ms,
            system: Some(s.system.into()),
            workers: s.workers.into_iter().map(Into::into).collect(),
            groups: s.groups.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<SystemMetrics> for wire::SystemMetrics {
    fn from(m: SystemMetrics) -> Self {
        Self {
            cpu_percent: m.cpu_percent,
            cpu_per_core: m.cpu_per_core,
            load1: m.load1,
            load5: m.load5,
            load15: m.load15,
            memory_total_bytes: m.memory_total_bytes,
            memory_used_bytes: m.memory_used_bytes,
            memory_available_bytes: m.memory_available_bytes,
            swap_total_bytes: m.swap_total_bytes,
            swap_used_bytes: m.swap_used_bytes,
            filesystems: m.filesystems.into_iter().map(Into::into).collect(),
            disk_read_bytes_per_sec: m.disk_read_bytes_per_sec,
            disk_write_bytes_per_sec: m.disk_write_bytes_per_sec,
            net_rx_bytes_per_sec: m.net_rx_bytes_per_sec,
            net_tx_bytes_per_sec: m.net_tx_bytes_per_sec,
            uptime_secs: m.uptime_secs,
            process_count: m.process_count,
            cpu_iowait_percent: m.cpu_iowait_percent,
            cpu_steal_percent: m.cpu_steal_percent,
            interfaces: m.interfaces.into_iter().map(Into::into).collect(),
            filesystems_omitted: m.filesystems_omitted,
        }
    }
}

impl From<NetInterface> for wire::NetInterface {
    fn from(n: NetInterface) -> Self {
        Self {
            name: n.name,
            rx_bytes_per_sec: n.rx_bytes_per_sec,
            tx_bytes_per_sec: n.tx_bytes_per_sec,
        }
    }
}

impl From<Filesystem> for wire::Filesystem {
    fn from(f: Filesystem) -> Self {
        Self {
            mount_point: f.mount_point,
            fs_type: f.fs_type,
            device: f.device,
            total_bytes: f.total_bytes,
            available_bytes: f.available_bytes,
            used_bytes: f.used_bytes,
        }
    }
}

impl From<Worker> for wire::Worker {
    fn from(w: Worker) -> Self {
        Self {
            group: w.group,
            pid: w.pid,
            name: w.name,
            cmdline: w.cmdline,
            state: w.state,
            cpu_percent: w.cpu_percent,
            rss_bytes: w.rss_bytes,
            threads: w.threads,
            start_time_secs: w.start_time_secs,
        }
    }
}

impl From<GroupStatus> for wire::GroupStatus {
    fn from(g: GroupStatus) -> Self {
        Self {
            name: g.name,
            min_alive: g.min_alive,
            alive: g.alive,
            restarts: g.restarts,
            omitted: g.omitted,
        }
    }
}

impl From<Hello> for wire::Hello {
    fn from(h: Hello) -> Self {
        Self {
            host_id: h.host_id,
            hostname: h.hostname,
            os: h.os,
            kernel: h.kernel,
            cpu_count: h.cpu_count,
            memory_total_bytes: h.memory_total_bytes,
            agent_version: h.agent_version,
            interval_ms: h.interval_ms,
            worker_groups: h.worker_groups.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<WorkerGroup> for wire::WorkerGroup {
    fn from(g: WorkerGroup) -> Self {
        Self {
            name: g.name,
            min_alive: g.min_alive,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_reaches_the_wire() {
        let sample = Sample {
            timestamp_ms: 1_700_000_000_000,
            system: SystemMetrics {
                cpu_percent: 12.5,
                cpu_per_core: vec![10.0, 15.0],
                cpu_iowait_percent: 1.5,
                cpu_steal_percent: 0.5,
                load1: 1.0,
                load5: 2.0,
                load15: 3.0,
                memory_total_bytes: 1000,
                memory_used_bytes: 400,
                memory_available_bytes: 600,
                swap_total_bytes: 50,
                swap_used_bytes: 5,
                filesystems: vec![Filesystem {
                    mount_point: "/".into(),
                    fs_type: "ext4".into(),
                    device: "/dev/sda1".into(),
                    total_bytes: 100,
                    available_bytes: 40,
                    used_bytes: 55,
                }],
                filesystems_omitted: 2,
                disk_read_bytes_per_sec: 7.0,
                disk_write_bytes_per_sec: 8.0,
                net_rx_bytes_per_sec: 9.0,
                net_tx_bytes_per_sec: 10.0,
                interfaces: vec![NetInterface {
                    name: "eth0".into(),
                    rx_bytes_per_sec: 9.0,
                    tx_bytes_per_sec: 10.0,
                }],
                uptime_secs: 99,
                process_count: 123,
            },
            workers: vec![Worker {
                group: "queue".into(),
                pid: 42,
                name: "worker".into(),
                cmdline: "worker --queue".into(),
                state: "S".into(),
                cpu_percent: 3.5,
                rss_bytes: 4096,
                threads: 4,
                start_time_secs: 1_699_999_000,
            }],
            groups: vec![GroupStatus {
                name: "queue".into(),
                min_alive: 1,
                alive: 1,
                restarts: 3,
                omitted: 0,
            }],
        };
        let w = wire::Sample::from(sample);
        let expected = wire::Sample {
            timestamp_ms: 1_700_000_000_000,
            system: Some(wire::SystemMetrics {
                cpu_percent: 12.5,
                cpu_per_core: vec![10.0, 15.0],
                load1: 1.0,
                load5: 2.0,
                load15: 3.0,
                memory_total_bytes: 1000,
                memory_used_bytes: 400,
                memory_available_bytes: 600,
                swap_total_bytes: 50,
                swap_used_bytes: 5,
                filesystems: vec![wire::Filesystem {
                    mount_point: "/".into(),
                    fs_type: "ext4".into(),
                    device: "/dev/sda1".into(),
                    total_bytes: 100,
                    available_bytes: 40,
                    used_bytes: 55,
                }],
                disk_read_bytes_per_sec: 7.0,
                disk_write_bytes_per_sec: 8.0,
                net_rx_bytes_per_sec: 9.0,
                net_tx_bytes_per_sec: 10.0,
                uptime_secs: 99,
                process_count: 123,
                cpu_iowait_percent: 1.5,
                cpu_steal_percent: 0.5,
                interfaces: vec![wire::NetInterface {
                    name: "eth0".into(),
                    rx_bytes_per_sec: 9.0,
                    tx_bytes_per_sec: 10.0,
                }],
                filesystems_omitted: 2,
            }),
            workers: vec![wire::Worker {
                group: "queue".into(),
                pid: 42,
                name: "worker".into(),
                cmdline: "worker --queue".into(),
                state: "S".into(),
                cpu_percent: 3.5,
                rss_bytes: 4096,
                threads: 4,
                start_time_secs: 1_699_999_000,
            }],
            groups: vec![wire::GroupStatus {
                name: "queue".into(),
                min_alive: 1,
                alive: 1,
                restarts: 3,
                omitted: 0,
            }],
        };
        assert_eq!(w, expected);
        let hello = wire::Hello::from(Hello {
            host_id: "web-1".into(),
            interval_ms: 1000,
            worker_groups: vec![WorkerGroup {
                name: "queue".into(),
                min_alive: 2,
            }],
            ..Hello::default()
        });
        assert_eq!(hello.host_id, "web-1");
        assert_eq!(hello.interval_ms, 1000);
        assert_eq!(hello.worker_groups[0].min_alive, 2);
    }
}
