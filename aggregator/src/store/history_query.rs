//! What a history query may ask for: the metric names the API accepts, the
//! stored values behind each, the bucket size and the tier that serves it.

use super::rollup::{Retention, Tier};
use super::series::{Dictionary, Key, field};
use crate::model::TimestampMs;

/// A metric a history query can aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Metric {
    /// A host-wide value, by its name in [`COLUMNS`].
    Column(&'static str),
    /// `used_percent` of one filesystem, by mount point.
    Filesystem(String),
    /// Alive workers of one group.
    GroupAlive(String),
    /// Busy % of one core, from 0.
    Core(u16),
    /// CPU % of the worker process with this pid.
    WorkerCpu(u32),
    /// Resident memory of the worker process with this pid.
    WorkerRss(u32),
    /// Receive rate of one network interface.
    InterfaceRx(String),
    /// Send rate of one network interface.
    InterfaceTx(String),
}

/// Host-wide metrics a history query may name, with their field.
const HOST_FIELDS: &[(&str, u16)] = &[
    ("cpu_percent", field::CPU),
    ("load1", field::LOAD1),
    ("load5", field::LOAD5),
    ("load15", field::LOAD15),
    ("memory_used_bytes", field::MEM_USED),
    ("memory_available_bytes", field::MEM_AVAILABLE),
    ("memory_percent", field::MEM_PERCENT),
    ("swap_used_bytes", field::SWAP_USED),
    ("swap_percent", field::SWAP_PERCENT),
    ("disk_used_percent_max", field::DISK_MAX_PERCENT),
    ("disk_read_bytes_per_sec", field::DISK_READ),
    ("disk_write_bytes_per_sec", field::DISK_WRITE),
    ("net_rx_bytes_per_sec", field::NET_RX),
    ("net_tx_bytes_per_sec", field::NET_TX),
    ("process_count", field::PROCESSES),
    ("cpu_iowait_percent", field::CPU_IOWAIT),
    ("cpu_steal_percent", field::CPU_STEAL),
];

/// Names of the host-wide metrics.
pub const COLUMNS: &[&str] = &[
    "cpu_percent",
    "load1",
    "load5",
    "load15",
    "memory_used_bytes",
    "memory_available_bytes",
    "memory_percent",
    "swap_used_bytes",
    "swap_percent",
    "disk_used_percent_max",
    "disk_read_bytes_per_sec",
    "disk_write_bytes_per_sec",
    "net_rx_bytes_per_sec",
    "net_tx_bytes_per_sec",
    "process_count",
    "cpu_iowait_percent",
    "cpu_steal_percent",
];

impl Metric {
    /// The stored values behind the metric on a host: several when a
    /// filesystem was remounted or a pid reused.
    pub fn keys(&self, dict: &Dictionary) -> Vec<Key> {
        match self {
            Metric::Column(name) => HOST_FIELDS
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, f)| Key::host(*f))
                .collect(),
            Metric::Core(n) => vec![Key::host(field::CORE + n)],
            Metric::Filesystem(mount) => dict
                .filesystems_at(mount)
                .into_iter()
                .map(|sid| Key {
                    sid,
                    field: field::FS_USED_PERCENT,
                })
                .collect(),
            Metric::GroupAlive(group) => dict
                .group_sid(group)
                .map(|sid| Key {
                    sid,
                    field: field::GROUP_ALIVE,
                })
                .into_iter()
                .collect(),
            Metric::InterfaceRx(name) | Metric::InterfaceTx(name) => {
                let f = if matches!(self, Metric::InterfaceRx(_)) {
                    field::IF_RX
                } else {
                    field::IF_TX
                };
                dict.interface_sid(name)
                    .map(|sid| Key { sid, field: f })
                    .into_iter()
                    .collect()
            }
            Metric::WorkerCpu(pid) | Metric::WorkerRss(pid) => {
                let f = if matches!(self, Metric::WorkerCpu(_)) {
                    field::WORKER_CPU
                } else {
                    field::WORKER_RSS
                };
                dict.workers_with_pid(*pid)
                    .into_iter()
                    .map(|sid| Key { sid, field: f })
                    .collect()
            }
        }
    }

    /// Whether the metric is computed from other stored values.
    pub fn is_derived(&self) -> bool {
        match self {
            Metric::Column(name) => HOST_FIELDS
                .iter()
                .any(|(n, f)| n == name && super::series::derived(*f)),
            Metric::Filesystem(_) => true,
            _ => false,
        }
    }

    /// Parses `cpu_percent`, `fs_used_percent:/var`, `workers_alive:queue`,
    /// `cpu_core:0`, `worker_cpu_percent:PID`, `worker_rss_bytes:PID`.
    pub fn parse(name: &str) -> Result<Self, String> {
        if let Some(n) = name.strip_prefix("cpu_core:") {
            return match n.parse::<u16>() {
                Ok(n) if n < field::MAX_CORES => Ok(Self::Core(n)),
                _ => Err(format!(
                    "`cpu_core:` needs a core number from 0 to {}, as in cpu_core:0",
                    field::MAX_CORES - 1
                )),
            };
        }
        for (prefix, make) in [
            (
                "net_rx_bytes_per_sec:",
                Self::InterfaceRx as fn(String) -> Self,
            ),
            ("net_tx_bytes_per_sec:", Self::InterfaceTx),
        ] {
            if let Some(name) = name.strip_prefix(prefix) {
                return if name.is_empty() {
                    Err(format!(
                        "`{prefix}` needs an interface name, as in {prefix}eth0"
                    ))
                } else {
                    Ok(make(name.to_owned()))
                };
            }
        }
        for (prefix, make) in [
            ("worker_cpu_percent:", Self::WorkerCpu as fn(u32) -> Self),
            ("worker_rss_bytes:", Self::WorkerRss),
        ] {
            if let Some(pid) = name.strip_prefix(prefix) {
                return pid
                    .parse::<u32>()
                    .map(make)
                    .map_err(|_| format!("`{prefix}` needs a process id, as in {prefix}1234"));
            }
        }
        if let Some(mount) = name.strip_prefix("fs_used_percent:") {
            return if mount.is_empty() {
                Err("`fs_used_percent:` needs a mount point, as in fs_used_percent:/".to_owned())
            } else {
                Ok(Self::Filesystem(mount.to_owned()))
            };
        }
        if let Some(group) = name.strip_prefix("workers_alive:") {
            return if group.is_empty() {
                Err("`workers_alive:` needs a worker group name".to_owned())
            } else {
                Ok(Self::GroupAlive(group.to_owned()))
            };
        }
        COLUMNS
            .iter()
            .find(|c| **c == name)
            .map(|c| Self::Column(c))
            .ok_or_else(|| {
                format!(
                    "unknown metric `{name}`; one of {}, fs_used_percent:MOUNT, \
                     workers_alive:GROUP, cpu_core:N, worker_cpu_percent:PID, worker_rss_bytes:PID, \
                     net_rx_bytes_per_sec:IFACE, net_tx_bytes_per_sec:IFACE",
                    COLUMNS.join(", ")
                )
            })
    }
}

/// Points a history answer aims for when no step is given.
pub const DEFAULT_POINTS: i64 = 300;
/// Most buckets one query may return.
pub const MAX_POINTS: i64 = 10_000;

/// Bucket sizes the default step is rounded up to, in ms.
const NICE_STEPS_MS: &[i64] = &[
    1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000,
    1_800_000, 3_600_000, 7_200_000, 21_600_000, 43_200_000, 86_400_000,
];

/// The default bucket for a window: the smallest nice step that keeps the
/// window to at most [`DEFAULT_POINTS`] buckets (24 h gives 5 min buckets, 288 points).
pub fn default_step_ms(window_ms: i64) -> i64 {
    let wanted = (window_ms + DEFAULT_POINTS - 1) / DEFAULT_POINTS;
    NICE_STEPS_MS
        .iter()
        .copied()
        .find(|s| *s >= wanted)
        .unwrap_or_else(|| wanted.max(1))
}

/// The tier a query with this step is served from: the coarsest whose
/// buckets divide the step and that still keeps `from` (else the coarsest
/// that divides the step, so old windows still get what is kept).
pub fn choose_tier(
    from_ms: TimestampMs,
    step_ms: i64,
    now_ms: TimestampMs,
    retention: &Retention,
) -> Tier {
    let fits = |t: Tier| step_ms >= t.step_ms() && step_ms % t.step_ms() == 0;
    let keeps = |t: Tier| {
        let kept = i64::try_from(retention.of(t).as_millis()).unwrap_or(i64::MAX);
        from_ms >= now_ms.saturating_sub(kept)
    };
    let candidates: Vec<Tier> = Tier::ROLLUPS
        .into_iter()
        .rev()
        .filter(|t| fits(*t))
        .collect();
    if let Some(t) = candidates.iter().find(|t| keeps(**t)) {
        return *t;
    }
    if keeps(Tier::Raw) || candidates.is_empty() {
        return Tier::Raw;
    }
    candidates[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coarsest_tier_that_gives_the_step_serves() {
        let r = Retention::default();
        let now = 1_800_000_000_000;
        let day = 86_400_000;
        assert_eq!(choose_tier(now - 900_000, 5_000, now, &r), Tier::Raw);
        assert_eq!(choose_tier(now - day, 300_000, now, &r), Tier::Minute);
        assert_eq!(choose_tier(now - 7 * day, 3_600_000, now, &r), Tier::Hour);
        assert_eq!(choose_tier(now - 30 * day, 21_600_000, now, &r), Tier::Hour);
        // 90 s is no multiple of a minute: raw.
        assert_eq!(choose_tier(now - day, 90_000, now, &r), Tier::Raw);
        // Beyond every tier: the coarsest that divides the step serves what it keeps.
        assert_eq!(choose_tier(now - 60 * day, 300_000, now, &r), Tier::Minute);
        assert_eq!(choose_tier(now - 60 * day, 3_600_000, now, &r), Tier::Hour);
    }

    #[test]
    fn parses_metrics() {
        assert_eq!(
            Metric::parse("cpu_percent"),
            Ok(Metric::Column("cpu_percent"))
        );
        assert_eq!(
            Metric::parse("fs_used_percent:/var/lib"),
            Ok(Metric::Filesystem("/var/lib".to_owned()))
        );
        assert_eq!(
            Metric::parse("workers_alive:queue"),
            Ok(Metric::GroupAlive("queue".to_owned()))
        );
        assert_eq!(Metric::parse("cpu_core:3"), Ok(Metric::Core(3)));
        assert_eq!(
            Metric::parse("worker_rss_bytes:42"),
            Ok(Metric::WorkerRss(42))
        );
        assert!(Metric::parse("cpu_core:x").is_err());
        assert!(Metric::parse("worker_cpu_percent:-1").is_err());
        let err = Metric::parse("cpu; DROP TABLE hosts").expect_err("unknown");
        assert!(err.contains("unknown metric"));
        assert!(Metric::parse("fs_used_percent:").is_err());
    }

    #[test]
    fn default_step_keeps_a_day_to_a_few_hundred_points() {
        let day = 86_400_000;
        let step = default_step_ms(day);
        assert_eq!(step, 300_000);
        assert!(day / step <= DEFAULT_POINTS);
        assert_eq!(default_step_ms(60_000), 1_000);
        assert_eq!(default_step_ms(3_600_000), 15_000);
    }
}
