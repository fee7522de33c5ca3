//! CPU time from `/proc/stat`, read directly on every tick so that every
//! sample is fresh at any interval (sysinfo refreshes CPU at most every
//! 200 ms), and split the way `top` shows it: busy (user, nice, system, irq,
//! softirq), iowait and steal apart. Guest time is already inside user and
//! nice, so it is not added again.
//!
//! The collector keeps the previous reading: it is primed when created, so
//! the first sample covers the time since start like every later one.

use std::path::{Path, PathBuf};

/// One line of `/proc/stat`, in clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Times {
    pub busy: u64,
    pub iowait: u64,
    pub steal: u64,
    pub idle: u64,
}

impl Times {
    fn total(&self) -> u64 {
        self.busy + self.iowait + self.steal + self.idle
    }
}

/// The whole machine and each logical CPU, in the order of `/proc/stat`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reading {
    pub all: Times,
    pub cores: Vec<Times>,
}

/// Shares of CPU time between two readings, each 0-100.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    pub busy: f64,
    pub iowait: f64,
    pub steal: f64,
    pub per_core_busy: Vec<f64>,
}

/// Parses the `cpu` and `cpuN` lines of `/proc/stat`. Fields: user nice
/// system idle iowait irq softirq steal guest guest_nice; kernels older than
/// 2.6.33 have fewer, which read as 0.
pub fn parse(text: &str) -> Option<Reading> {
    let mut reading = Reading::default();
    let mut saw_all = false;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("cpu") else {
            continue;
        };
        let (label, fields) = rest.split_once(' ')?;
        let n: Vec<u64> = fields
            .split_ascii_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        let at = |i: usize| n.get(i).copied().unwrap_or(0);
        let times = Times {
            busy: at(0) + at(1) + at(2) + at(5) + at(6),
            idle: at(3),
            iowait: at(4),
            steal: at(7),
        };
        if label.is_empty() {
            reading.all = times;
            saw_all = true;
        } else {
            reading.cores.push(times);
        }
    }
    saw_all.then_some(reading)
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 * 100.0 / whole as f64).clamp(0.0, 100.0)
    }
}

/// What happened between two readings. Counters that went backwards (a CPU
/// taken offline and back) count as no time.
pub fn usage(prev: &Reading, now: &Reading) -> Usage {
    let delta = |a: &Times, b: &Times| Times {
        busy: b.busy.saturating_sub(a.busy),
        iowait: b.iowait.saturating_sub(a.iowait),
        steal: b.steal.saturating_sub(a.steal),
        idle: b.idle.saturating_sub(a.idle),
    };
    let all = delta(&prev.all, &now.all);
    let total = all.total();
    Usage {
        busy: share(all.busy, total),
        iowait: share(all.iowait, total),
        steal: share(all.steal, total),
        per_core_busy: now
            .cores
            .iter()
            .enumerate()
            .map(|(i, core)| {
                let d = prev.cores.get(i).map_or(*core, |p| delta(p, core));
                share(d.busy, d.total())
            })
            .collect(),
    }
}

/// Reads `/proc/stat` each tick and reports the usage since the last read.
pub struct CpuCollector {
    path: PathBuf,
    prev: Reading,
}

impl CpuCollector {
    /// Reads once, so the first [`collect`](Self::collect) has a baseline.
    pub fn new(proc_root: &Path) -> Self {
        let path = proc_root.join("stat");
        let prev = read(&path).unwrap_or_default();
        Self { path, prev }
    }

    /// Logical CPUs seen in the last reading.
    pub fn cores(&self) -> usize {
        self.prev.cores.len()
    }

    /// Usage since the previous call (or since `new`). A failed read gives
    /// zeros and keeps the old baseline.
    pub fn collect(&mut self) -> Usage {
        match read(&self.path) {
            Some(now) => {
                let usage = usage(&self.prev, &now);
                self.prev = now;
                usage
            }
            None => Usage {
                per_core_busy: vec![0.0; self.prev.cores.len()],
                ..Usage::default()
            },
        }
    }
}

fn read(path: &Path) -> Option<Reading> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text),
        Err(e) => {
            tracing::debug!(path = %path.display(), error = %e, "cannot read CPU times");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "cpu  100 0 50 800 20 0 10 20 0 0\n\
        cpu0 50 0 25 400 10 0 5 10 0 0\n\
        cpu1 50 0 25 400 10 0 5 10 0 0\n\
        intr 1 2 3\nctxt 99\n";
    const AFTER: &str = "cpu  160 10 70 900 40 0 20 100 50 0\n\
        cpu0 110 10 45 410 20 0 15 50 50 0\n\
        cpu1 50 0 25 490 20 0 5 50 0 0\n";

    #[test]
    fn splits_busy_iowait_and_steal() {
        let before = parse(BEFORE).expect("parses");
        let after = parse(AFTER).expect("parses");
        assert_eq!(before.cores.len(), 2);
        let u = usage(&before, &after);
        // Deltas: user 60 nice 10 system 20 idle 100 iowait 20 softirq 10
        // steal 80 (guest 50 is inside user): busy 100 of 300.
        assert!((u.busy - 100.0 / 3.0).abs() < 1e-9, "{u:?}");
        assert!((u.iowait - 20.0 / 3.0).abs() < 1e-9, "{u:?}");
        assert!((u.steal - 80.0 / 3.0).abs() < 1e-9, "{u:?}");
        // cpu0: busy 60+10+20+10 = 100 of 100+10+10+40 = 160.
        assert!((u.per_core_busy[0] - 62.5).abs() < 1e-9, "{u:?}");
        // cpu1: busy 0 of 90+10+40.
        assert_eq!(u.per_core_busy[1], 0.0);
    }

    #[test]
    fn a_steal_heavy_vm_is_not_busy() {
        // Half the time stolen, a tenth busy: busy must read 10 %, not 60 %.
        let before = parse("cpu 0 0 0 0 0 0 0 0 0 0\n").expect("parses");
        let after = parse("cpu 10 0 0 40 0 0 0 50 0 0\n").expect("parses");
        let u = usage(&before, &after);
        assert_eq!((u.busy, u.steal), (10.0, 50.0));
    }

    #[test]
    fn rejects_text_without_a_cpu_line() {
        assert!(parse("intr 1\n").is_none());
        let old_kernel = parse("cpu 1 2 3 4\n").expect("four fields");
        assert_eq!(old_kernel.all.busy, 6);
    }

    #[test]
    fn reads_this_machine() {
        let mut cpu = CpuCollector::new(Path::new("/proc"));
        assert!(cpu.cores() >= 1);
        let u = cpu.collect();
        assert_eq!(u.per_core_busy.len(), cpu.cores());
        assert!((0.0..=100.0).contains(&u.busy));
    }
}
