//! Collectors, one file per family: `cpu` (/proc/stat), `filesystems`
//! (mount table and statvfs), `disk_io` (/proc/diskstats), `network`
//! (/proc/net/dev) and, over sysinfo for memory, load and uptime, `system`
//! which runs them; `workers` finds the processes of each worker group
//! through `procfs` and `matcher`, and counts their restarts with
//! `restarts` (the kernel's process events via `proc_events`), kept across
//! agent restarts by `restart_file`. `filter` is the include/exclude glob
//! lists of the config.
//!
//! [`Collector`] runs them all and builds one wire `Sample` per tick. It
//! reads every counter once when created, so the first sample covers the
//! time since start like every later one covers its interval.

pub mod cpu;
pub mod disk_io;
pub mod filesystems;
pub mod filter;
pub mod matcher;
pub mod network;
pub mod proc_events;
pub mod procfs;
pub mod restart_file;
pub mod restarts;
pub mod settings;
pub mod system;
pub mod workers;

use std::path::PathBuf;
use std::time::Instant;

use crate::sample::Sample;

use matcher::WorkerGroupConfig;
use restart_file::RestartFile;
use system::{SystemCollector, SystemConfig};
use workers::WorkerCollector;

/// What the collectors need from the configuration.
#[derive(Debug, Clone, Default)]
pub struct CollectorConfig {
    pub groups: Vec<WorkerGroupConfig>,
    pub system: SystemConfig,
    /// Where restart counts are kept across agent restarts; none keeps
    /// them in memory only.
    pub state_dir: Option<PathBuf>,
    /// Count restarts from the kernel's process events where allowed.
    pub process_events: bool,
}

pub struct Collector {
    system: SystemCollector,
    workers: WorkerCollector,
    restart_file: Option<RestartFile>,
    group_names: Vec<String>,
}

impl Collector {
    pub fn new(config: CollectorConfig) -> Result<Self, sysinfo::Error> {
        let boot_time = sysinfo::System::boot_time()?;
        let mut workers = WorkerCollector::new(config.groups, boot_time);
        let group_names = workers.group_names();
        let restart_file = config.state_dir.as_deref().map(|dir| {
            let (file, base) = RestartFile::open(dir, &group_names);
            workers.set_restart_base(&base);
            file
        });
        if config.process_events && !group_names.is_empty() {
            match workers.count_restarts_from_events() {
                Ok(()) => {
                    tracing::info!("counting worker restarts from the kernel's process events")
                }
                Err(e) => tracing::warn!(
                    error = %e,
                    "no process events: restarts are counted by /proc scans and miss processes \
                     that start and exit between two samples"
                ),
            }
        }
        let mut collector = Self {
            system: SystemCollector::new(config.system)?,
            workers,
            restart_file,
            group_names,
        };
        // Prime the worker scan: the first sample's CPU % covers an interval.
        if let Err(e) = collector.workers.scan(Instant::now()) {
            tracing::warn!(error = %e, "cannot list /proc");
        }
        Ok(collector)
    }

    pub fn system(&mut self) -> &mut SystemCollector {
        &mut self.system
    }

    /// Whether restarts are counted from process events right now.
    pub fn counts_restarts_exactly(&self) -> bool {
        self.workers.counts_from_events()
    }

    /// Takes one sample of the host and its workers, stamped `timestamp_ms`
    /// (the grid point it stands for).
    pub fn sample(&mut self, timestamp_ms: i64) -> Sample {
        let mut system = self.system.collect();
        let scan = self.workers.scan(Instant::now()).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot list /proc; no worker data this tick");
            workers::WorkerScan::default()
        });
        system.process_count = scan.process_count;
        if let Some(file) = &mut self.restart_file
            && scan.groups.len() == self.group_names.len()
        {
            let counts: Vec<u64> = scan.groups.iter().map(|g| g.restarts).collect();
            if let Err(e) = file.save(&self.group_names, &counts) {
                tracing::warn!(error = %e, "cannot save restart counts");
            }
        }
        Sample {
            timestamp_ms,
            system,
            workers: scan.workers,
            groups: scan.groups,
        }
    }
}
