//! What a history query may ask for: the metric names the API accepts, the
//! SQL expression behind each, and the bucket size.

/// A metric a history query can aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Metric {
    /// A column of `host_samples`.
    Column(&'static str),
    /// `used_percent` of one filesystem, by mount point.
    Filesystem(String),
    /// Alive workers of one group.
    GroupAlive(String),
}

/// Columns of `host_samples` a history query may name. Only names from
/// this list ever reach SQL.
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
];

impl Metric {
    /// Parses `cpu_percent`, `fs_used_percent:/var`, `workers_alive:queue`.
    pub fn parse(name: &str) -> Result<Self, String> {
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
                    "unknown metric `{name}`; one of {}, fs_used_percent:MOUNT, workers_alive:GROUP",
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

#[cfg(test)]
mod tests {
    use super::*;

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
