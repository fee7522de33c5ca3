//! Finds the processes of each configured worker group and reports them.
//!
//! What makes per-process monitoring expensive is reading every process's
//! /proc files on every tick. This collector lists /proc (one directory read)
//! and classifies a pid only when it first appears: its command line is read
//! once, and once more on the next tick to catch a fork that `exec`s right
//! after we looked. Processes that match no group are never opened again.
//! Only the matched workers get their `/proc/PID/stat` and `status` read
//! each tick: stat for CPU time and state, status for VmRSS (what `ps`
//! shows; stat's rss is an approximate per-CPU counter on current kernels).
//!
//! A zombie or dead process is never alive: it counts as gone from the
//! first scan that sees it. Restarts are counted by the process-event
//! thread ([`super::restarts`]) when the agent may subscribe to the
//! kernel's events, else by comparing scans (which misses processes that
//! live and die between two ticks).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::sample::{GroupStatus, Worker};

use super::matcher::WorkerGroupConfig;
use super::matcher::{self, Classified};
use super::procfs::{self, Stat};
use super::restarts::EventWatcher;

/// What we know about a pid present in /proc.
#[derive(Debug)]
struct Known {
    /// The tick at which the pid was first listed.
    first_tick: u64,
    /// The tick at which the pid was last listed.
    seen_tick: u64,
    /// Set when the process belongs to a worker group.
    worker: Option<Tracked>,
    /// Seen exited (a zombie): counted as gone once, never looked at again.
    dead: bool,
}

#[derive(Debug)]
struct Tracked {
    group: usize,
    name: String,
    cmdline: String,
    start_ticks: u64,
    /// CPU ticks and time at the previous reading, for the CPU rate.
    prev: Option<(u64, Instant)>,
}

#[derive(Debug, Default, Clone)]
struct GroupCounters {
    restarts: u64,
    /// Workers that went away and have not been replaced yet.
    gone: u64,
}

/// One worker-group scan: the workers seen, one status per group, and how
/// many processes the host runs in all.
#[derive(Debug, Default)]
pub struct WorkerScan {
    pub workers: Vec<Worker>,
    pub groups: Vec<GroupStatus>,
    pub process_count: u32,
}

pub struct WorkerCollector {
    proc_root: PathBuf,
    groups: Vec<WorkerGroupConfig>,
    own_pid: u32,
    known: HashMap<u32, Known>,
    counters: Vec<GroupCounters>,
    tick: u64,
    clock_ticks: u64,
    page_size: u64,
    events: Option<EventWatcher>,
    boot_time_secs: u64,
    pids: Vec<u32>,
    buf: Vec<u8>,
}

impl WorkerCollector {
    pub fn new(groups: Vec<WorkerGroupConfig>, boot_time_secs: u64) -> Self {
        Self::with_proc_root(Path::new("/proc"), groups, boot_time_secs)
    }

    pub fn with_proc_root(
        proc_root: &Path,
        groups: Vec<WorkerGroupConfig>,
        boot_time_secs: u64,
    ) -> Self {
        let counters = vec![GroupCounters::default(); groups.len()];
        Self {
            proc_root: proc_root.to_owned(),
            groups,
            own_pid: std::process::id(),
            known: HashMap::new(),
            counters,
            tick: 0,
            clock_ticks: rustix::param::clock_ticks_per_second().max(1),
            page_size: rustix::param::page_size() as u64,
            events: None,
            boot_time_secs,
            pids: Vec::new(),
            buf: Vec::with_capacity(4096),
        }
    }

    /// The groups' names, in configuration order.
    pub fn group_names(&self) -> Vec<String> {
        self.groups.iter().map(|g| g.name.clone()).collect()
    }

    /// Restart counts start from `base` (as stored by an earlier run), one
    /// per group in configuration order.
    pub fn set_restart_base(&mut self, base: &[u64]) {
        for (counter, &b) in self.counters.iter_mut().zip(base) {
            counter.restarts = b;
        }
    }

    /// Subscribes to the kernel's process events so that every restart is
    /// counted. Returns why not where the agent is not allowed to; restarts
    /// are then counted by comparing scans.
    pub fn count_restarts_from_events(
        &mut self,
    ) -> Result<(), super::proc_events::ProcEventsError> {
        let base: Vec<u64> = self.counters.iter().map(|c| c.restarts).collect();
        let watcher = EventWatcher::start(self.groups.clone(), &base, self.proc_root.clone())?;
        self.events = Some(watcher);
        Ok(())
    }

    /// Whether restarts come from process events (else from scans).
    pub fn counts_from_events(&self) -> bool {
        self.events.as_ref().is_some_and(EventWatcher::is_alive)
    }

    /// Scans /proc once. A failure to list /proc is returned; a process that
    /// vanishes or cannot be read in the middle of a scan is skipped.
    pub fn scan(&mut self, now: Instant) -> std::io::Result<WorkerScan> {
        self.tick += 1;
        let tick = self.tick;
        let mut pids = std::mem::take(&mut self.pids);
        procfs::list_pids(&self.proc_root, &mut pids)?;

        let mut new_in_group = vec![0u64; self.groups.len()];
        for &pid in &pids {
            if pid == self.own_pid {
                continue;
            }
            let recheck = match self.known.get_mut(&pid) {
                Some(known) => {
                    known.seen_tick = tick;
                    // Look once more at a pid first seen on the previous tick
                    // that matched nothing: it may have exec'd since.
                    known.worker.is_none() && !known.dead && known.first_tick + 1 == tick
                }
                None => {
                    self.known.insert(
                        pid,
                        Known {
                            first_tick: tick,
                            seen_tick: tick,
                            worker: None,
                            dead: false,
                        },
                    );
                    true
                }
            };
            if recheck && let Some(found) = self.classify(pid) {
                if tick > 1 {
                    new_in_group[found.group] += 1;
                }
                if let Some(known) = self.known.get_mut(&pid) {
                    if found.zombie {
                        // Started and exited between two scans.
                        self.counters[found.group].gone += 1;
                        known.dead = true;
                    } else {
                        known.worker = Some(self::tracked(found));
                    }
                }
            }
        }
        let process_count = u32::try_from(pids.len()).unwrap_or(u32::MAX);
        self.pids = pids;

        // Forget pids that are gone; a gone worker may come back as a new pid.
        let counters = &mut self.counters;
        self.known.retain(|_, known| {
            let alive = known.seen_tick == tick;
            if !alive && let Some(w) = &known.worker {
                counters[w.group].gone += 1;
            }
            alive
        });

        let mut workers = Vec::new();
        let mut alive = vec![0u32; self.groups.len()];
        let worker_pids: Vec<u32> = self
            .known
            .iter()
            .filter_map(|(pid, k)| k.worker.as_ref().map(|_| *pid))
            .collect();
        for pid in worker_pids {
            let Ok(stat) = procfs::read_stat(&self.proc_root, pid, &mut self.buf) else {
                // Exited since we listed it; the next scan counts it as gone.
                continue;
            };
            let Some(known) = self.known.get_mut(&pid) else {
                continue;
            };
            let Some(tracked) = known.worker.as_mut() else {
                continue;
            };
            if procfs::is_dead(stat.state) && stat.start_ticks == tracked.start_ticks {
                // Exited, not yet reaped: not alive from this scan on.
                self.counters[tracked.group].gone += 1;
                known.worker = None;
                known.dead = true;
                continue;
            }
            if stat.start_ticks != tracked.start_ticks {
                // The pid was reused by a new process between two scans.
                self.counters[tracked.group].gone += 1;
                known.worker = None;
                known.first_tick = tick;
                match self.classify(pid) {
                    Some(fresh) if !fresh.zombie => {
                        new_in_group[fresh.group] += 1;
                        if let Some(known) = self.known.get_mut(&pid) {
                            known.worker = Some(self::tracked(fresh));
                        }
                    }
                    _ => continue,
                }
            }
            let Some(tracked) = self.known.get_mut(&pid).and_then(|k| k.worker.as_mut()) else {
                continue;
            };
            let cpu_percent = cpu_percent(
                &stat,
                tracked.prev,
                now,
                self.clock_ticks,
                self.boot_time_secs,
            );
            tracked.prev = Some((stat.cpu_ticks, now));
            alive[tracked.group] += 1;
            let rss_bytes = match procfs::read_vm_rss(&self.proc_root, pid, &mut self.buf) {
                Ok(Some(bytes)) => bytes,
                _ => stat.rss_pages.saturating_mul(self.page_size),
            };
            workers.push(Worker {
                group: self.groups[tracked.group].name.clone(),
                pid,
                name: tracked.name.clone(),
                cmdline: tracked.cmdline.clone(),
                state: procfs::state_name(stat.state).to_owned(),
                cpu_percent,
                rss_bytes,
                threads: stat.threads,
                start_time_secs: i64::try_from(
                    self.boot_time_secs + stat.start_ticks / self.clock_ticks,
                )
                .unwrap_or(i64::MAX),
            });
        }
        workers.sort_unstable_by(|a, b| a.group.cmp(&b.group).then(a.pid.cmp(&b.pid)));

        // A new pid in a group that lost one is a restart; otherwise the
        // group grew. With process events, their exact counts replace the
        // scan's.
        let from_events = self.events.as_ref().filter(|w| w.is_alive()).and_then(|w| {
            let pids: Vec<u32> = workers.iter().map(|w| w.pid).collect();
            w.confirm_and_count(&pids)
        });
        if from_events.is_none() && self.events.take().is_some() {
            tracing::warn!("process events ended; counting restarts by /proc scans");
        }
        let groups = self
            .groups
            .iter()
            .enumerate()
            .map(|(i, group)| {
                let counters = &mut self.counters[i];
                let replaced = counters.gone.min(new_in_group[i]);
                counters.gone -= replaced;
                counters.restarts += replaced;
                if let Some(exact) = from_events.as_ref().and_then(|c| c.get(i)) {
                    counters.restarts = *exact;
                    counters.gone = 0;
                }
                GroupStatus {
                    name: group.name.clone(),
                    min_alive: group.min_alive,
                    alive: alive[i],
                    restarts: counters.restarts,
                    ..Default::default()
                }
            })
            .collect();

        Ok(WorkerScan {
            workers,
            groups,
            process_count,
        })
    }

    /// Decides which group, if any, a pid belongs to.
    fn classify(&mut self, pid: u32) -> Option<Classified> {
        matcher::classify(&self.proc_root, &self.groups, pid, &mut self.buf)
    }
}

fn tracked(c: Classified) -> Tracked {
    Tracked {
        group: c.group,
        name: c.name,
        cmdline: c.cmdline,
        start_ticks: c.start_ticks,
        prev: None,
    }
}

/// CPU use as a percentage of one core: over the last interval when there
/// was one, else averaged over the process's life so far.
fn cpu_percent(
    stat: &Stat,
    prev: Option<(u64, Instant)>,
    now: Instant,
    clock_ticks: u64,
    boot_time_secs: u64,
) -> f64 {
    let (ticks, secs) = match prev {
        Some((prev_ticks, at)) => (
            stat.cpu_ticks.saturating_sub(prev_ticks),
            now.duration_since(at).as_secs_f64(),
        ),
        None => {
            let now_secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            let started = boot_time_secs as f64 + stat.start_ticks as f64 / clock_ticks as f64;
            (stat.cpu_ticks, now_secs - started)
        }
    };
    if secs <= 0.0 {
        return 0.0;
    }
    (ticks as f64 / clock_ticks as f64 / secs * 100.0).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::matcher::Matcher;
    use regex::Regex;
    use std::process::{Child, Command};

    fn group(name: &str, re: &str, min: u32) -> WorkerGroupConfig {
        WorkerGroupConfig {
            name: name.to_owned(),
            matcher: Matcher::Cmdline(Regex::new(re).expect("regex")),
            min_alive: min,
        }
    }

    /// A `sleep` that is killed when dropped, returned once it has exec'd.
    struct Sleeper(Child);

    impl Sleeper {
        fn id(&self) -> u32 {
            self.0.id()
        }

        fn stop(mut self) {
            self.0.kill().expect("kill");
            self.0.wait().expect("reap");
        }
    }

    impl Drop for Sleeper {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn spawn_sleep(secs: &str) -> Sleeper {
        let child = Command::new("sleep")
            .arg(secs)
            .spawn()
            .expect("spawn sleep");
        let path = format!("/proc/{}/cmdline", child.id());
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        while !std::fs::read(&path).is_ok_and(|c| c.starts_with(b"sleep\0")) {
            assert!(Instant::now() < deadline, "sleep did not start");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        Sleeper(child)
    }

    fn boot_time() -> u64 {
        sysinfo::System::boot_time().expect("boot time")
    }

    #[test]
    fn counts_workers_and_restarts() {
        // A duration nobody else on the machine uses.
        let tag = format!("{}.{}", 70000 + std::process::id() % 10000, 271828);
        let re = format!("^sleep {}$", regex::escape(&tag));
        let mut collector = WorkerCollector::new(
            vec![
                group("sleepers", &re, 3),
                group("absent", "^no-such-process-xyz$", 1),
            ],
            boot_time(),
        );
        let a = spawn_sleep(&tag);
        let b = spawn_sleep(&tag);

        let scan = collector.scan(Instant::now()).expect("scan");
        assert!(scan.process_count > 2);
        let sleepers = &scan.groups[0];
        assert_eq!(
            (sleepers.alive, sleepers.min_alive, sleepers.restarts),
            (2, 3, 0)
        );
        assert_eq!(
            scan.groups[1].alive, 0,
            "a declared group with no process is reported"
        );
        let pids: Vec<u32> = scan.workers.iter().map(|w| w.pid).collect();
        assert!(pids.contains(&a.id()) && pids.contains(&b.id()));
        let w = &scan.workers[0];
        assert_eq!(w.name, "sleep");
        assert_eq!(w.cmdline, format!("sleep {tag}"));
        assert_eq!(w.threads, 1);
        assert!(w.rss_bytes > 0);
        assert!(w.start_time_secs > 1_600_000_000);

        a.stop();
        let scan = collector.scan(Instant::now()).expect("scan");
        assert_eq!((scan.groups[0].alive, scan.groups[0].restarts), (1, 0));

        let c = spawn_sleep(&tag);
        let scan = collector.scan(Instant::now()).expect("scan");
        assert_eq!((scan.groups[0].alive, scan.groups[0].restarts), (2, 1));

        // Growing the group is not a restart.
        let d = spawn_sleep(&tag);
        let scan = collector.scan(Instant::now()).expect("scan");
        assert_eq!((scan.groups[0].alive, scan.groups[0].restarts), (3, 1));

        for child in [b, c, d] {
            child.stop();
        }
        let scan = collector.scan(Instant::now()).expect("scan");
        assert_eq!(scan.groups[0].alive, 0);
    }

    #[test]
    fn matches_by_process_name() {
        let tag = format!("{}.5", 80000 + std::process::id() % 10000);
        let child = spawn_sleep(&tag);
        let mut collector = WorkerCollector::new(
            vec![WorkerGroupConfig {
                name: "by-name".to_owned(),
                matcher: Matcher::ProcessName("sleep".to_owned()),
                min_alive: 1,
            }],
            boot_time(),
        );
        let scan = collector.scan(Instant::now()).expect("scan");
        assert!(scan.workers.iter().any(|w| w.pid == child.id()));
        child.stop();
    }

    #[test]
    fn ignores_its_own_process() {
        let mut collector = WorkerCollector::new(vec![group("all", ".", 1)], boot_time());
        let scan = collector.scan(Instant::now()).expect("scan");
        assert!(scan.workers.iter().all(|w| w.pid != std::process::id()));
        assert!(!scan.workers.is_empty());
    }
}
