//! Host-wide metrics through sysinfo: CPU, load, memory and swap,
//! filesystems, disk and network I/O rates, uptime.
//!
//! One long-lived handle per family, refreshed with only what is read. The
//! filesystem list (which walks /proc/mounts) is re-read every
//! [`DISK_LIST_EVERY`] ticks, not on every tick; usage is refreshed each tick.

use std::collections::HashSet;
use std::time::Instant;

use fleetwatch_proto::{Filesystem, SystemMetrics};
use sysinfo::{CpuRefreshKind, DiskRefreshKind, Disks, MemoryRefreshKind, Networks, System};

/// How often, in ticks, to look for mounted and unmounted filesystems.
const DISK_LIST_EVERY: u64 = 60;

pub struct SystemCollector {
    system: System,
    disks: Disks,
    networks: Networks,
    tick: u64,
    last: Option<Instant>,
}

impl SystemCollector {
    pub fn new() -> Result<Self, sysinfo::Error> {
        let mut system = System::new()?;
        system.refresh_cpu_list(CpuRefreshKind::nothing().with_usage());
        system.refresh_cpu_usage();
        let disks = Disks::new_with_refreshed_list_specifics(
            DiskRefreshKind::nothing().with_storage().with_io_usage(),
        )?;
        let networks = Networks::new_with_refreshed_list()?;
        Ok(Self {
            system,
            disks,
            networks,
            tick: 0,
            last: None,
        })
    }

    pub fn cpu_count(&self) -> u32 {
        u32::try_from(self.system.cpus().len()).unwrap_or(u32::MAX)
    }

    pub fn memory_total(&mut self) -> u64 {
        self.system
            .refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
        self.system.total_memory()
    }

    /// Reads every metric. A probe that fails reads as zero and is logged at
    /// debug level; collection itself never fails.
    pub fn collect(&mut self, now: Instant) -> SystemMetrics {
        self.tick += 1;
        let elapsed = self
            .last
            .map_or(0.0, |at| now.duration_since(at).as_secs_f64());
        self.last = Some(now);

        self.system.refresh_cpu_usage();
        self.system.refresh_memory();
        let load = System::load_average().unwrap_or_else(|e| {
            tracing::debug!(error = %e, "load average unavailable");
            sysinfo::LoadAvg::default()
        });

        let relist = self.tick.is_multiple_of(DISK_LIST_EVERY);
        self.disks.refresh_specifics(
            relist,
            DiskRefreshKind::nothing().with_storage().with_io_usage(),
        );
        self.networks.refresh(relist);

        let mut filesystems = Vec::with_capacity(self.disks.len());
        let mut devices = HashSet::new();
        let (mut read, mut written) = (0u64, 0u64);
        for disk in self.disks.iter() {
            let device = disk.name().to_string_lossy();
            // A device mounted twice (bind mounts) is one filesystem: report
            // its first mount only, and count its I/O once.
            if !devices.insert(device.clone()) {
                continue;
            }
            let usage = disk.usage();
            read = read.saturating_add(usage.read_bytes);
            written = written.saturating_add(usage.written_bytes);
            filesystems.push(Filesystem {
                mount_point: disk.mount_point().to_string_lossy().into_owned(),
                fs_type: disk.file_system().to_string_lossy().into_owned(),
                device: device.into_owned(),
                total_bytes: disk.total_space(),
                available_bytes: disk.available_space(),
            });
        }
        let (mut rx, mut tx) = (0u64, 0u64);
        for (name, data) in &self.networks {
            if name == "lo" {
                continue;
            }
            rx = rx.saturating_add(data.received());
            tx = tx.saturating_add(data.transmitted());
        }
        let rate = |bytes: u64| {
            if elapsed > 0.0 {
                bytes as f64 / elapsed
            } else {
                0.0
            }
        };

        SystemMetrics {
            cpu_percent: finite(self.system.global_cpu_usage().into()),
            cpu_per_core: self
                .system
                .cpus()
                .iter()
                .map(|c| finite(c.usage().into()))
                .collect(),
            load1: finite(load.one),
            load5: finite(load.five),
            load15: finite(load.fifteen),
            memory_total_bytes: self.system.total_memory(),
            memory_used_bytes: self.system.used_memory(),
            memory_available_bytes: self.system.available_memory(),
            swap_total_bytes: self.system.total_swap(),
            swap_used_bytes: self.system.used_swap(),
            filesystems,
            disk_read_bytes_per_sec: rate(read),
            disk_write_bytes_per_sec: rate(written),
            net_rx_bytes_per_sec: rate(rx),
            net_tx_bytes_per_sec: rate(tx),
            uptime_secs: System::uptime().unwrap_or(0),
            process_count: 0,
            ..Default::default()
        }
    }
}

/// sysinfo reports NaN for a CPU it has sampled only once; send 0 instead.
fn finite(value: f64) -> f64 {
    if value.is_finite() {
        value.max(0.0)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_plausible_metrics() {
        let mut collector = SystemCollector::new().expect("sysinfo");
        let first = collector.collect(Instant::now());
        std::thread::sleep(std::time::Duration::from_millis(250));
        let m = collector.collect(Instant::now());
        assert!(collector.cpu_count() >= 1);
        assert_eq!(m.cpu_per_core.len(), collector.cpu_count() as usize);
        assert!((0.0..=100.0).contains(&m.cpu_percent));
        assert!(m.memory_total_bytes > 0);
        assert!(m.memory_used_bytes <= m.memory_total_bytes);
        assert!(m.uptime_secs > 0);
        assert!(m.load1 >= 0.0);
        assert_eq!(
            first.disk_read_bytes_per_sec, 0.0,
            "no rate before two readings"
        );
        for fs in &m.filesystems {
            assert!(fs.available_bytes <= fs.total_bytes, "{fs:?}");
        }
    }
}
