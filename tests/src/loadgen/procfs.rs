//! CPU time and memory of a process and of each of its threads, read from
//! `/proc` (Linux): `/proc/PID/stat` for utime + stime, `/proc/PID/status`
//! for VmRSS, `/proc/PID/task/*/stat` per thread with the thread's name.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result};

/// CPU seconds (user + system) from the text of a `stat` file, and the
/// name between its parentheses.
pub fn parse_stat(stat: &str) -> Result<(String, f64)> {
    let (head, rest) = stat.rsplit_once(") ").context("no `) ` in stat")?;
    let name = head
        .split_once(" (")
        .map_or("", |(_, name)| name)
        .to_owned();
    // Fields after the name, from the third (state): utime is the 14th
    // field of the file and stime the 15th.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .context("stat is too short")?
            .parse::<u64>()
            .context("stat field is not a number")
    };
    let total = ticks(11)? + ticks(12)?;
    let hz = rustix::param::clock_ticks_per_second() as f64;
    Ok((name, total as f64 / hz))
}

/// CPU seconds a process has used so far (`self` for this process).
pub fn cpu_secs(pid: &str) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("read /proc/{pid}/stat"))?;
    Ok(parse_stat(&stat)?.1)
}

/// Resident memory of a process in bytes (VmRSS).
pub fn rss_bytes(pid: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .context("no VmRSS")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .context("VmRSS is not a number")?;
    Ok(kib * 1024)
}

/// CPU seconds of every thread of a process, by thread id, with its name.
/// Threads that end while they are read are left out.
pub fn threads(pid: &str) -> Result<HashMap<u32, (String, f64)>> {
    let mut all = HashMap::new();
    let dir = format!("/proc/{pid}/task");
    for entry in std::fs::read_dir(&dir).with_context(|| format!("read {dir}"))? {
        let Ok(entry) = entry else { continue };
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        if let Ok(stat) = std::fs::read_to_string(entry.path().join("stat"))
            && let Ok(parsed) = parse_stat(&stat)
        {
            all.insert(tid, parsed);
        }
    }
    Ok(all)
}

/// CPU used by thread name between two readings of [`threads`], as % of
/// one core over `elapsed`, busiest first: (name, threads, percent).
pub fn busiest_threads(
    before: &HashMap<u32, (String, f64)>,
    after: &HashMap<u32, (String, f64)>,
    elapsed: Duration,
) -> Vec<(String, usize, f64)> {
    let mut by_name: HashMap<&str, (usize, f64)> = HashMap::new();
    for (tid, (name, secs)) in after {
        let start = before.get(tid).map_or(0.0, |(_, s)| *s);
        let entry = by_name.entry(name).or_default();
        entry.0 += 1;
        entry.1 += secs - start;
    }
    let secs = elapsed.as_secs_f64().max(1e-9);
    let mut list: Vec<(String, usize, f64)> = by_name
        .into_iter()
        .map(|(name, (n, used))| (name.to_owned(), n, used / secs * 100.0))
        .collect();
    list.sort_by(|a, b| b.2.total_cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    list
}

/// The whole machine's CPU time so far, all cores together, in clock
/// ticks: (busy, total). Busy leaves out idle and iowait, as `top` does;
/// steal counts as busy (someone else had the core).
pub fn machine_ticks() -> Result<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").context("read /proc/stat")?;
    parse_machine(&stat)
}

fn parse_machine(stat: &str) -> Result<(u64, u64)> {
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .context("no cpu line in /proc/stat")?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8) // user nice system idle iowait irq softirq steal
        .map(|v| v.parse().context("a /proc/stat field is not a number"))
        .collect::<Result<_>>()?;
    let total: u64 = ticks.iter().sum();
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    Ok((total - idle, total))
}

/// Share of the machine busy between two [`machine_ticks`] readings, in %
/// of all its cores.
pub fn machine_busy_percent(before: (u64, u64), after: (u64, u64)) -> f64 {
    let total = after.1.saturating_sub(before.1);
    if total == 0 {
        return 0.0;
    }
    after.0.saturating_sub(before.0) as f64 / total as f64 * 100.0
}

/// Raises this process's open-file limit to its hard limit (children
/// started afterwards inherit it) and returns the limit now in force.
/// Every simulated agent and WebSocket client is a socket here and in the
/// aggregator.
pub fn raise_open_files() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let raised = rustix::process::Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    if limit.current != limit.maximum && setrlimit(Resource::Nofile, raised).is_ok() {
        return limit.maximum.unwrap_or(u64::MAX);
    }
    limit.current.unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn parses_a_stat_line_with_spaces_and_parens_in_the_name() {
        let hz = rustix::param::clock_ticks_per_second() as f64;
        let line = "4242 (tokio (worker) 1) S 1 2 3 4 5 6 7 8 9 10 300 100 0 0 20 0 9";
        let (name, secs) = parse_stat(line).unwrap();
        assert_eq!(name, "tokio (worker) 1");
        assert!((secs - 400.0 / hz).abs() < 1e-9);
        assert!(parse_stat("garbage").is_err());
    }

    #[test]
    fn reads_this_process_and_its_threads() {
        // Burn a little CPU so the counters move.
        let start = cpu_secs("self").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut x = 0u64;
        while cpu_secs("self").unwrap() <= start && std::time::Instant::now() < deadline {
            for i in 0..1_000_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
        }
        assert!(x != 1, "keep the loop");
        assert!(cpu_secs("self").unwrap() > start);
        assert!(rss_bytes("self").unwrap() > 1 << 20);
        let pid = std::process::id().to_string();
        let threads = threads(&pid).unwrap();
        assert!(threads.contains_key(&std::process::id()));
    }

    #[test]
    fn the_open_file_limit_ends_at_the_hard_limit() {
        let raised = raise_open_files();
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        assert_eq!(Some(raised), limit.current);
        assert_eq!(limit.current, limit.maximum);
    }

    #[test]
    fn reads_how_busy_the_machine_is() {
        let stat = "cpu  300 0 100 500 100 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n";
        assert_eq!(parse_machine(stat).unwrap(), (400, 1000));
        assert!(parse_machine("intr 1").is_err());
        assert_eq!(machine_busy_percent((400, 1000), (700, 1400)), 75.0);
        assert_eq!(machine_busy_percent((1, 1), (1, 1)), 0.0);
        let (busy, total) = machine_ticks().unwrap();
        assert!(busy <= total && total > 0);
    }

    #[test]
    fn groups_threads_by_name_busiest_first() {
        let t = |name: &str, s: f64| (name.to_owned(), s);
        let before = HashMap::from([(1, t("a", 1.0)), (2, t("w", 0.0)), (3, t("w", 0.0))]);
        let after = HashMap::from([
            (1, t("a", 1.5)),
            (2, t("w", 1.0)),
            (3, t("w", 0.5)),
            (4, t("new", 0.2)),
        ]);
        let list = busiest_threads(&before, &after, Duration::from_secs(2));
        assert_eq!(list[0], ("w".to_owned(), 2, 75.0));
        assert_eq!(list[1], ("a".to_owned(), 1, 25.0));
        assert_eq!(list[2].0, "new");
        assert!((list[2].2 - 10.0).abs() < 1e-9);
    }
}
