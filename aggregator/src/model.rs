//! The aggregator's own domain types: what a host, a sample and a worker are
//! once they have passed validation at the ingest edge. Wire types never get
//! past `ingest::convert`; the store, the hub and the API work with these.
//! Also the small types that both the store and a feature hold: an alert's
//! severity and state, a silence, and the role of a user or API token.

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch.
pub type TimestampMs = i64;

/// The aggregator's clock, in ms since the epoch.
pub fn now_ms() -> TimestampMs {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// What an agent says about its host when it connects.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HostInfo {
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

/// A worker group as the agent declares it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WorkerGroup {
    pub name: String,
    pub min_alive: u32,
}

/// One sample of one host: system metrics plus the worker processes seen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    pub timestamp_ms: TimestampMs,
    pub system: SystemMetrics,
    pub workers: Vec<Worker>,
    pub groups: Vec<GroupStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SystemMetrics {
    /// Busy share of all CPUs (user, nice, system, irq, softirq), 0-100,
    /// without iowait and steal: what `top` shows as us+sy+ni+hi+si.
    pub cpu_percent: f64,
    pub cpu_per_core: Vec<f64>,
    /// Idle waiting for I/O, share of all CPUs, 0-100.
    pub cpu_iowait_percent: f64,
    /// Taken by the hypervisor for other guests, share of all CPUs, 0-100.
    pub cpu_steal_percent: f64,
    pub load1: f64,
    pub load5: f64,
    pub load15: f64,
    pub memory_total_bytes: u64,
    pub memory_used_bytes: u64,
    pub memory_available_bytes: u64,
    pub swap_total_bytes: u64,
    pub swap_used_bytes: u64,
    pub filesystems: Vec<Filesystem>,
    pub disk_read_bytes_per_sec: f64,
    pub disk_write_bytes_per_sec: f64,
    pub net_rx_bytes_per_sec: f64,
    pub net_tx_bytes_per_sec: f64,
    /// Per-interface rates of the interfaces the agent watches.
    pub interfaces: Vec<NetInterface>,
    pub uptime_secs: u64,
    pub process_count: u32,
}

/// Receive and send rates of one network interface.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct NetInterface {
    pub name: String,
    pub rx_bytes_per_sec: f64,
    pub tx_bytes_per_sec: f64,
}

impl SystemMetrics {
    /// Used memory as a share of total, 0-100 (0 when the total is unknown).
    pub fn memory_percent(&self) -> f64 {
        percent(self.memory_used_bytes, self.memory_total_bytes)
    }

    /// Used swap as a share of total, 0-100 (0 when there is no swap).
    pub fn swap_percent(&self) -> f64 {
        percent(self.swap_used_bytes, self.swap_total_bytes)
    }
}

/// One mounted filesystem, with df's figures.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Filesystem {
    pub mount_point: String,
    pub fs_type: String,
    pub device: String,
    pub total_bytes: u64,
    /// Free space unprivileged users may use.
    pub available_bytes: u64,
    /// df's used: total − free. Checked at ingest to be at most total; an
    /// agent that predates the field gets total − available.
    pub used_bytes: u64,
}

impl Filesystem {
    /// Blocks kept for root: neither used nor available to users.
    pub fn reserved_bytes(&self) -> u64 {
        self.total_bytes
            .saturating_sub(self.used_bytes)
            .saturating_sub(self.available_bytes)
    }

    /// `df`'s Use%: used / (used + available), 0-100, so root-reserved
    /// blocks count as neither.
    pub fn used_percent(&self) -> f64 {
        percent(
            self.used_bytes,
            self.used_bytes.saturating_add(self.available_bytes),
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Worker {
    pub group: String,
    pub pid: u32,
    pub name: String,
    pub cmdline: String,
    pub state: String,
    pub cpu_percent: f64,
    pub rss_bytes: u64,
    pub threads: u32,
    pub start_time_secs: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct GroupStatus {
    pub name: String,
    pub min_alive: u32,
    pub alive: u32,
    pub restarts: u64,
}

/// `part` as a percentage of `whole`, 0 when `whole` is 0.
pub fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// How bad a firing alert is.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
    Critical,
}

/// Where an alert instance is. `Inactive` and `Resolved` are only ever seen
/// in transitions: the engine keeps no state for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
    Resolved,
}

/// An alert change as the page and the WebSocket show it; what the hub
/// carries when an alert changes state (built by `alerts::service`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertEvent {
    pub rule: String,
    pub host_id: String,
    pub scope: String,
    pub severity: Severity,
    /// `pending`, `firing` or `resolved` (a pending alert whose condition
    /// went away reads as resolved).
    pub state: AlertState,
    pub value: f64,
    pub threshold: f64,
    pub peak: f64,
    pub started_at_ms: TimestampMs,
    pub ended_at_ms: Option<TimestampMs>,
    pub message: String,
    pub silenced: bool,
}

/// One silence. Every matcher that is set must match (globs allowed); at
/// least one must be set. `pool` matches only alerts of worker rules. The
/// matching itself is in `alerts::silence`; the store keeps silences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Silence {
    /// Assigned by `Engine::silence`; ignored on input.
    #[serde(default)]
    pub id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Host id or hostname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    pub expires_at_ms: TimestampMs,
    #[serde(default)]
    pub comment: String,
}

/// What an authenticated user or API token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything `read` may, and changes: silences, rules, tokens, commands.
    Admin,
    /// The dashboard, REST API and WebSocket, read-only.
    Read,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Read => "read",
        }
    }

    /// The stored form back; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Self::Admin),
            "read" => Some(Self::Read),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs(total: u64, used: u64, available: u64) -> Filesystem {
        Filesystem {
            mount_point: "/".into(),
            fs_type: "ext4".into(),
            device: "/dev/sda1".into(),
            total_bytes: total,
            available_bytes: available,
            used_bytes: used,
        }
    }

    #[test]
    fn filesystem_use_is_dfs() {
        // An ext4 with 5 % reserved for root: df shows 23 % (22.1 rounded
        // up), not the 26 % that (total − available) / total gives.
        let root = fs(1000, 210, 740);
        assert!((root.used_percent() - 22.105).abs() < 0.01);
        assert_eq!(root.reserved_bytes(), 50);
        // Full for users while root still has its reserve: 100 %.
        assert_eq!(fs(1000, 950, 0).used_percent(), 100.0);
        assert_eq!(fs(0, 0, 0).used_percent(), 0.0);
    }
}
