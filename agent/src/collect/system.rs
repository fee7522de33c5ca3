//! Host-wide metrics: CPU (busy, iowait and steal apart, per core), load,
//! memory and swap, filesystems, disk and network I/O rates, uptime.
//!
//! Each family has its own collector file; this one runs them in turn and
//! fills the wire `SystemMetrics`. Memory, load and uptime come from
//! sysinfo (memory used is total − available, as `free` shows it); CPU,
//! filesystems, disks and network are read from /proc and statvfs directly
//! so that each sample is fresh and means what df and top show. Every
//! collector is primed when created, so the first sample is as right as the
//! later ones.

use std::path::Path;

use crate::sample::SystemMetrics;
use sysinfo::{MemoryRefreshKind, System};

use super::cpu::CpuCollector;
use super::disk_io::DiskIoCollector;
use super::filesystems::{FilesystemCollector, FilesystemFilter};
use super::filter::NameFilter;
use super::network::NetworkCollector;

/// Which filesystems and network interfaces to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemConfig {
    pub filesystems: FilesystemFilter,
    pub interfaces: NameFilter,
}

impl Default for SystemConfig {
    fn default() -> Self {
        Self {
            filesystems: FilesystemFilter::default(),
            interfaces: super::network::default_filter(),
        }
    }
}

pub struct SystemCollector {
    system: System,
    cpu: CpuCollector,
    filesystems: FilesystemCollector,
    disks: DiskIoCollector,
    network: NetworkCollector,
}

impl SystemCollector {
    pub fn new(config: SystemConfig) -> Result<Self, sysinfo::Error> {
        let proc_root = Path::new("/proc");
        Ok(Self {
            system: System::new()?,
            cpu: CpuCollector::new(proc_root),
            filesystems: FilesystemCollector::new(proc_root, config.filesystems),
            disks: DiskIoCollector::new(proc_root, Path::new("/sys")),
            network: NetworkCollector::new(proc_root, config.interfaces),
        })
    }

    pub fn cpu_count(&self) -> u32 {
        u32::try_from(self.cpu.cores()).unwrap_or(u32::MAX)
    }

    pub fn memory_total(&mut self) -> u64 {
        self.system
            .refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
        self.system.total_memory()
    }

    /// Reads every metric. A probe that fails reads as zero and is logged at
    /// debug level; collection itself never fails.
    pub fn collect(&mut self) -> SystemMetrics {
        let cpu = self.cpu.collect();
        self.system.refresh_memory();
        let load = System::load_average().unwrap_or_else(|e| {
            tracing::debug!(error = %e, "load average unavailable");
            sysinfo::LoadAvg::default()
        });
        let disk = self.disks.collect();
        let net = self.network.collect();
        SystemMetrics {
            cpu_percent: cpu.busy,
            cpu_per_core: cpu.per_core_busy,
            cpu_iowait_percent: cpu.iowait,
            cpu_steal_percent: cpu.steal,
            load1: finite(load.one),
            load5: finite(load.five),
            load15: finite(load.fifteen),
            memory_total_bytes: self.system.total_memory(),
            memory_used_bytes: self.system.used_memory(),
            memory_available_bytes: self.system.available_memory(),
            swap_total_bytes: self.system.total_swap(),
            swap_used_bytes: self.system.used_swap(),
            filesystems: self.filesystems.collect(),
            disk_read_bytes_per_sec: disk.read_bytes_per_sec,
            disk_write_bytes_per_sec: disk.write_bytes_per_sec,
            net_rx_bytes_per_sec: net.rx_bytes_per_sec,
            net_tx_bytes_per_sec: net.tx_bytes_per_sec,
            interfaces: net.interfaces,
            uptime_secs: System::uptime().unwrap_or(0),
            process_count: 0,
            ..Default::default()
        }
    }
}

/// A load average that is not a finite, non-negative number reads as 0.
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
        let mut collector = SystemCollector::new(SystemConfig::default()).expect("sysinfo");
        std::thread::sleep(std::time::Duration::from_millis(250));
        let m = collector.collect();
        assert!(collector.cpu_count() >= 1);
        assert_eq!(m.cpu_per_core.len(), collector.cpu_count() as usize);
        assert!((0.0..=100.0).contains(&m.cpu_percent));
        assert!(m.cpu_percent + m.cpu_iowait_percent + m.cpu_steal_percent <= 100.0 + 1e-9);
        assert!(m.memory_total_bytes > 0);
        assert!(m.memory_used_bytes <= m.memory_total_bytes);
        assert!(m.uptime_secs > 0);
        assert!(m.load1 >= 0.0);
        for fs in &m.filesystems {
            assert!(
                fs.available_bytes + fs.used_bytes <= fs.total_bytes,
                "{fs:?}"
            );
        }
        assert!(m.interfaces.iter().all(|i| i.name != "lo"));
    }
}
