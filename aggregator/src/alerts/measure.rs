//! What a rule reads out of a sample (one reading per scope instance), the
//! thresholds it resolves to for that host or pool, and how values are
//! worded in alert messages.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use super::rules::{Metric, Rule, Severity};
use crate::model::{HostInfo, Sample, TimestampMs};

/// Sampling interval assumed for a host that declared none.
const FALLBACK_INTERVAL_MS: u32 = 5000;

/// A rule's thresholds as numbers for one instance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Levels {
    pub warning: Option<f64>,
    pub critical: Option<f64>,
    /// How far a level's threshold moves once the level is reached
    /// (`clear` minus the least severe threshold; never makes it stricter).
    pub hold_offset: f64,
}

impl Levels {
    pub fn get(&self, severity: Severity) -> Option<f64> {
        match severity {
            Severity::Warning => self.warning,
            Severity::Critical => self.critical,
        }
    }
}

/// One value of one scope instance (mount point, pool, or "" host-wide).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Reading {
    pub scope: String,
    pub value: f64,
    pub levels: Levels,
}

/// Resolves a rule's thresholds; `None` if one needs a context value that is
/// missing (such as `min_alive` outside a pool).
pub(super) fn levels(
    rule: &Rule,
    min_alive: Option<u32>,
    interval_ms: Option<u32>,
) -> Option<Levels> {
    let resolve = |t: Option<super::threshold::Threshold>| match t {
        None => Some(None),
        Some(t) => t.resolve(min_alive, interval_ms).map(Some),
    };
    let warning = resolve(rule.warning)?;
    let critical = resolve(rule.critical)?;
    let least = warning.or(critical)?;
    let clear = resolve(rule.clear)?.unwrap_or(least);
    let offset = clear - least;
    let hold_offset = if rule.comparison.is_upward() {
        offset.min(0.0)
    } else {
        offset.max(0.0)
    };
    Some(Levels {
        warning,
        critical,
        hold_offset,
    })
}

pub(super) fn interval(host_interval_ms: u32) -> u32 {
    if host_interval_ms == 0 {
        FALLBACK_INTERVAL_MS
    } else {
        host_interval_ms
    }
}

/// The `host_silence` reading for a host silent for `silent_ms`.
pub(super) fn silence_reading(rule: &Rule, interval_ms: u32, silent_ms: i64) -> Option<Reading> {
    Some(Reading {
        scope: String::new(),
        value: silent_ms.max(0) as f64 / 1000.0,
        levels: levels(rule, None, Some(interval(interval_ms)))?,
    })
}

/// Every reading `rule` takes from `sample`, already narrowed to the rule's
/// mount or pool pattern.
pub(super) fn readings(
    rule: &Rule,
    host: &HostInfo,
    sample: &Sample,
    restarts: &RestartTracker,
    now_ms: TimestampMs,
) -> Vec<Reading> {
    let sys = &sample.system;
    let host_wide = |value: f64| {
        levels(rule, None, None)
            .map(|levels| Reading {
                scope: String::new(),
                value,
                levels,
            })
            .into_iter()
            .collect()
    };
    let per_pool = |value: &dyn Fn(&str) -> f64| {
        sample
            .groups
            .iter()
            .filter(|g| rule.covers_scope(&g.name))
            .filter_map(|g| {
                Some(Reading {
                    scope: g.name.clone(),
                    value: value(&g.name),
                    levels: levels(rule, Some(g.min_alive), None)?,
                })
            })
            .collect()
    };
    let busiest = |group: &str, f: &dyn Fn(&crate::model::Worker) -> f64| {
        sample
            .workers
            .iter()
            .filter(|w| w.group == group)
            .map(f)
            .fold(0.0, f64::max)
    };
    match rule.metric {
        Metric::CpuPercent => host_wide(sys.cpu_percent),
        Metric::CpuStealPercent => host_wide(sys.cpu_steal_percent),
        Metric::CpuIowaitPercent => host_wide(sys.cpu_iowait_percent),
        Metric::MemoryPercent => host_wide(sys.memory_percent()),
        Metric::SwapPercent => host_wide(sys.swap_percent()),
        Metric::LoadPerCore => {
            let cores = match host.cpu_count {
                0 => sys.cpu_per_core.len().max(1) as f64,
                n => f64::from(n),
            };
            host_wide(sys.load1 / cores)
        }
        Metric::DiskReadBytesPerSec => host_wide(sys.disk_read_bytes_per_sec),
        Metric::DiskWriteBytesPerSec => host_wide(sys.disk_write_bytes_per_sec),
        Metric::NetRxBytesPerSec => host_wide(sys.net_rx_bytes_per_sec),
        Metric::NetTxBytesPerSec => host_wide(sys.net_tx_bytes_per_sec),
        Metric::HostSilence => silence_reading(rule, host.interval_ms, 0)
            .into_iter()
            .collect(),
        Metric::FilesystemUsedPercent => sys
            .filesystems
            .iter()
            .filter(|fs| rule.covers_scope(&fs.mount_point))
            .filter_map(|fs| {
                Some(Reading {
                    scope: fs.mount_point.clone(),
                    value: fs.used_percent(),
                    levels: levels(rule, None, None)?,
                })
            })
            .collect(),
        Metric::WorkerPoolAlive => per_pool(&|name| {
            sample
                .groups
                .iter()
                .find(|g| g.name == name)
                .map_or(0.0, |g| f64::from(g.alive))
        }),
        Metric::WorkerCpuPercent => per_pool(&|name| busiest(name, &|w| w.cpu_percent)),
        Metric::WorkerRssBytes => per_pool(&|name| busiest(name, &|w| w.rss_bytes as f64)),
        Metric::WorkerRestarts => {
            per_pool(&|name| restarts.increase(&host.host_id, name, now_ms, rule.restart_window()))
        }
    }
}

/// Recent `restarts` counter values per host and pool, for
/// `worker_restarts`. Only changes are kept (with the first value seen as
/// a baseline): a steady counter costs one entry, not one per sample.
#[derive(Debug, Default)]
pub(super) struct RestartTracker {
    history: HashMap<String, HashMap<String, VecDeque<(TimestampMs, u64)>>>,
    /// How far back to keep (the longest window of any rule).
    keep: Duration,
}

impl RestartTracker {
    pub fn new(keep: Duration) -> Self {
        Self {
            history: HashMap::new(),
            keep,
        }
    }

    /// Records the host's pool counters; forgets pools no longer reported.
    /// Touches only this host's pools, whatever the fleet's size.
    pub fn record(&mut self, host_id: &str, sample: &Sample, now_ms: TimestampMs) {
        let keep_ms = i64::try_from(self.keep.as_millis()).unwrap_or(i64::MAX);
        if !self.history.contains_key(host_id) {
            self.history.insert(host_id.to_owned(), HashMap::new());
        }
        let Some(pools) = self.history.get_mut(host_id) else {
            return;
        };
        pools.retain(|pool, _| sample.groups.iter().any(|g| &g.name == pool));
        for group in &sample.groups {
            if !pools.contains_key(&group.name) {
                pools.insert(group.name.clone(), VecDeque::new());
            }
            let Some(entries) = pools.get_mut(&group.name) else {
                continue;
            };
            match entries.back() {
                // A counter that went down means the agent restarted and counts afresh.
                Some(&(_, last)) if last > group.restarts => {
                    entries.clear();
                    entries.push_back((now_ms, group.restarts));
                }
                Some(&(_, last)) if last == group.restarts => {}
                _ => entries.push_back((now_ms, group.restarts)),
            }
            // Keep one entry at or before the oldest window start, as baseline.
            while entries.len() > 1 && entries[1].0 <= now_ms.saturating_sub(keep_ms) {
                entries.pop_front();
            }
        }
    }

    /// Forgets a host (it was removed).
    pub fn forget(&mut self, host_id: &str) {
        self.history.remove(host_id);
    }

    /// How much the counter rose within `window` before `now_ms`.
    pub fn increase(
        &self,
        host_id: &str,
        pool: &str,
        now_ms: TimestampMs,
        window: Duration,
    ) -> f64 {
        let Some(entries) = self.history.get(host_id).and_then(|pools| pools.get(pool)) else {
            return 0.0;
        };
        let start = now_ms.saturating_sub(i64::try_from(window.as_millis()).unwrap_or(i64::MAX));
        let baseline = entries
            .iter()
            .rev()
            .find(|(t, _)| *t <= start)
            .or(entries.front())
            .map_or(0, |&(_, v)| v);
        let current = entries.back().map_or(0, |&(_, v)| v);
        current.saturating_sub(baseline) as f64
    }
}

/// What a rule measures, for messages: "CPU", "disk /var", "pool api alive".
pub(super) fn subject(rule: &Rule, scope: &str) -> String {
    match rule.metric {
        Metric::CpuPercent => "CPU".into(),
        Metric::CpuStealPercent => "CPU steal".into(),
        Metric::CpuIowaitPercent => "CPU iowait".into(),
        Metric::MemoryPercent => "memory".into(),
        Metric::SwapPercent => "swap".into(),
        Metric::FilesystemUsedPercent => format!("disk {scope}"),
        Metric::LoadPerCore => "load per core".into(),
        Metric::DiskReadBytesPerSec => "disk read".into(),
        Metric::DiskWriteBytesPerSec => "disk write".into(),
        Metric::NetRxBytesPerSec => "network receive".into(),
        Metric::NetTxBytesPerSec => "network send".into(),
        Metric::WorkerPoolAlive => format!("workers alive in pool {scope}"),
        Metric::WorkerCpuPercent => format!("busiest worker CPU in pool {scope}"),
        Metric::WorkerRssBytes => format!("largest worker RSS in pool {scope}"),
        Metric::WorkerRestarts => format!(
            "restarts within {} in pool {scope}",
            humantime::format_duration(rule.restart_window())
        ),
        Metric::HostSilence => "no samples for".into(),
    }
}

/// A value in the metric's unit: "95.2%", "12.0 MiB/s", "45s", "3".
pub(super) fn format_value(metric: Metric, v: f64) -> String {
    match metric {
        Metric::CpuPercent
        | Metric::CpuStealPercent
        | Metric::CpuIowaitPercent
        | Metric::MemoryPercent
        | Metric::SwapPercent
        | Metric::FilesystemUsedPercent
        | Metric::WorkerCpuPercent => format!("{}%", number(v)),
        Metric::LoadPerCore => format!("{v:.2}"),
        Metric::DiskReadBytesPerSec
        | Metric::DiskWriteBytesPerSec
        | Metric::NetRxBytesPerSec
        | Metric::NetTxBytesPerSec => format!("{}/s", bytes(v)),
        Metric::WorkerRssBytes => bytes(v),
        Metric::WorkerPoolAlive | Metric::WorkerRestarts => format!("{v:.0}"),
        Metric::HostSilence => {
            humantime::format_duration(Duration::from_secs(v.max(0.0) as u64)).to_string()
        }
    }
}

/// One decimal, without a trailing ".0".
fn number(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0")
        .map_or_else(|| s.clone(), str::to_owned)
}

fn bytes(v: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = v;
    let mut unit = 0;
    while v.abs() >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{} {}", number(v), UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::rules::Comparison;
    use crate::alerts::threshold::Threshold;
    use crate::model::GroupStatus;

    fn rule(
        comparison: Comparison,
        warning: Option<f64>,
        critical: Option<f64>,
        clear: Option<f64>,
    ) -> Rule {
        let mut r = crate::alerts::config::builtin_rules().remove(0);
        r.comparison = comparison;
        r.warning = warning.map(Threshold::Value);
        r.critical = critical.map(Threshold::Value);
        r.clear = clear.map(Threshold::Value);
        r
    }

    #[test]
    fn levels_resolve_clear_as_an_offset() {
        let l = levels(
            &rule(Comparison::Ge, Some(80.0), Some(90.0), Some(70.0)),
            None,
            None,
        );
        assert_eq!(
            l.map(|l| (l.warning, l.critical, l.hold_offset)),
            Some((Some(80.0), Some(90.0), -10.0))
        );
        let l = levels(&rule(Comparison::Ge, None, Some(90.0), None), None, None);
        assert_eq!(l.map(|l| l.hold_offset), Some(0.0));
        let l = levels(
            &rule(Comparison::Lt, Some(3.0), Some(1.0), Some(5.0)),
            None,
            None,
        );
        assert_eq!(l.map(|l| l.hold_offset), Some(2.0));
        // A clear on the wrong side never makes holding stricter than raising.
        let l = levels(
            &rule(Comparison::Lt, Some(3.0), None, Some(1.0)),
            None,
            None,
        );
        assert_eq!(l.map(|l| l.hold_offset), Some(0.0));
    }

    #[test]
    fn restart_increase_counts_within_the_window_only() {
        let mut t = RestartTracker::new(Duration::from_secs(300));
        let sample = |restarts| Sample {
            timestamp_ms: 0,
            system: crate::alerts::fixtures::system(),
            workers: Vec::new(),
            groups: vec![GroupStatus {
                name: "api".into(),
                min_alive: 1,
                alive: 1,
                restarts,
            }],
        };
        let w = Duration::from_secs(300);
        t.record("h", &sample(7), 0);
        assert_eq!(t.increase("h", "api", 0, w), 0.0);
        t.record("h", &sample(8), 60_000);
        t.record("h", &sample(10), 120_000);
        assert_eq!(t.increase("h", "api", 120_000, w), 3.0);
        t.record("h", &sample(10), 400_000);
        assert_eq!(t.increase("h", "api", 400_000, w), 2.0);
        t.record("h", &sample(10), 700_000);
        assert_eq!(t.increase("h", "api", 700_000, w), 0.0);
        // The agent restarted: its counter starts again from 0.
        t.record("h", &sample(1), 710_000);
        assert_eq!(t.increase("h", "api", 710_000, w), 0.0);
        assert_eq!(t.increase("h", "other", 710_000, w), 0.0);
        // A steady counter keeps one entry, however many samples come.
        for i in 0..1_000 {
            t.record("h", &sample(1), 720_000 + i * 1_000);
        }
        assert_eq!(t.history["h"]["api"].len(), 1);
        t.record("h", &sample(4), 1_800_000);
        assert_eq!(t.increase("h", "api", 1_800_000, w), 3.0);
        // Another host's pools are its own; a forgotten host has none.
        t.record("g", &sample(50), 1_800_000);
        assert_eq!(t.increase("h", "api", 1_800_000, w), 3.0);
        t.forget("h");
        assert_eq!(t.increase("h", "api", 1_800_000, w), 0.0);
        assert_eq!(t.increase("g", "api", 1_800_000, w), 0.0);
    }

    #[test]
    fn values_are_worded_in_their_unit() {
        assert_eq!(format_value(Metric::CpuPercent, 95.24), "95.2%");
        assert_eq!(format_value(Metric::CpuPercent, 90.0), "90%");
        assert_eq!(
            format_value(Metric::NetRxBytesPerSec, 3.0 * 1024.0 * 1024.0),
            "3 MiB/s"
        );
        assert_eq!(format_value(Metric::WorkerRssBytes, 1536.0), "1.5 KiB");
        assert_eq!(format_value(Metric::HostSilence, 75.0), "1m 15s");
        assert_eq!(format_value(Metric::WorkerPoolAlive, 2.0), "2");
        assert_eq!(format_value(Metric::LoadPerCore, 1.5), "1.50");
    }
}
