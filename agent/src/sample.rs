//! The agent's own sample: what the collectors measure, in the agent's
//! types. The wire types (`fleetwatch_proto`) appear only where the agent
//! ships; [`crate::wire`] converts these to them, field for field.
//!
//! Units are in the field names (`_bytes`, `_percent`, `_per_sec`); what the
//! numbers mean (df's used, free's used, VmRSS) is the collectors' doc.

/// One sample of the host and its workers, on the wall-clock grid.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// The grid point the sample stands for, in ms since the Unix epoch.
    pub timestamp_ms: i64,
    pub system: SystemMetrics,
    /// The processes of every worker group (at most the cap per group).
    pub workers: Vec<Worker>,
    /// Each configured worker group's state.
    pub groups: Vec<GroupStatus>,
}

/// System-wide metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SystemMetrics {
    /// Busy time without iowait and steal.
    pub cpu_percent: f64,
    pub cpu_per_core: Vec<f64>,
    pub cpu_iowait_percent: f64,
    pub cpu_steal_percent: f64,
    pub load1: f64,
    pub load5: f64,
    pub load15: f64,
    pub memory_total_bytes: u64,
    /// Total minus available, as `free` shows it.
    pub memory_used_bytes: u64,
    pub memory_available_bytes: u64,
    pub swap_total_bytes: u64,
    pub swap_used_bytes: u64,
    pub filesystems: Vec<Filesystem>,
    /// Filesystems left out by the cap.
    pub filesystems_omitted: u32,
    pub disk_read_bytes_per_sec: f64,
    pub disk_write_bytes_per_sec: f64,
    pub net_rx_bytes_per_sec: f64,
    pub net_tx_bytes_per_sec: f64,
    pub interfaces: Vec<NetInterface>,
    pub uptime_secs: u64,
    pub process_count: u32,
}

/// One network interface's rates.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetInterface {
    pub name: String,
    pub rx_bytes_per_sec: f64,
    pub tx_bytes_per_sec: f64,
}

/// One mounted filesystem's usage, as `df` shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filesystem {
    pub mount_point: String,
    pub fs_type: String,
    pub device: String,
    pub total_bytes: u64,
    /// Available to unprivileged users.
    pub available_bytes: u64,
    pub used_bytes: u64,
}

/// One process of a worker group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Worker {
    pub group: String,
    pub pid: u32,
    pub name: String,
    pub cmdline: String,
    pub state: String,
    /// Percent of one core.
    pub cpu_percent: f64,
    /// VmRSS.
    pub rss_bytes: u64,
    pub threads: u32,
    pub start_time_secs: i64,
}

/// One worker group's state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupStatus {
    pub name: String,
    pub min_alive: u32,
    /// Processes alive (zombies are not), listed or not.
    pub alive: u32,
    pub restarts: u64,
    /// Processes left out by the cap.
    pub omitted: u32,
}

/// What the agent says about itself when it connects.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hello {
    pub host_id: String,
    pub hostname: String,
    pub os: String,
    pub kernel: String,
    pub cpu_count: u32,
    pub memory_total_bytes: u64,
    pub agent_version: String,
    pub interval_ms: u32,
    pub worker_groups: Vec<WorkerGroup>,
}

/// A configured worker group, as announced in [`Hello`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkerGroup {
    pub name: String,
    pub min_alive: u32,
}
