//! Collectors: `system` reads host-wide metrics through sysinfo, `workers`
//! finds the processes of each worker group, `procfs` holds the few /proc
//! reads the worker collector does by hand. [`Collector`] runs both and
//! builds one wire `Sample` per tick.

pub mod procfs;
pub mod system;
pub mod workers;

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use fleetwatch_proto::Sample;

use crate::config::WorkerGroupConfig;
use system::SystemCollector;
use workers::WorkerCollector;

pub struct Collector {
    system: SystemCollector,
    workers: WorkerCollector,
}

impl Collector {
    pub fn new(groups: Vec<WorkerGroupConfig>) -> Result<Self, sysinfo::Error> {
        let boot_time = sysinfo::System::boot_time()?;
        Ok(Self {
            system: SystemCollector::new()?,
            workers: WorkerCollector::new(groups, boot_time),
        })
    }

    pub fn system(&mut self) -> &mut SystemCollector {
        &mut self.system
    }

    /// Takes one sample of the host and its workers.
    pub fn sample(&mut self) -> Sample {
        let now = Instant::now();
        let timestamp_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let mut system = self.system.collect(now);
        let scan = self.workers.scan(now).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot list /proc; no worker data this tick");
            workers::WorkerScan::default()
        });
        system.process_count = scan.process_count;
        Sample {
            timestamp_ms,
            system: Some(system),
            workers: scan.workers,
            groups: scan.groups,
        }
    }
}
