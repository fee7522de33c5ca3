//! Exact restart counting from the kernel's process events.
//!
//! A restart is a process of a worker group that went away and was replaced
//! by a new one. [`Tracker`] keeps which pids belong to which group and, per
//! group, the restarts and the members gone but not yet replaced. It is fed
//! by [`EventWatcher`], a thread that reads the proc connector and
//! classifies every process the moment it execs, so lives of a millisecond
//! count too.
//!
//! A child forked from a member (a prefork server's worker) inherits its
//! parent's group without any /proc read, as a *tentative* member: if it
//! execs into something else it was never a worker (a shell running a
//! command); if it exits, or a /proc scan still sees it, it was one.
//!
//! What is still missed: a process that execs and is reaped before the
//! thread reads its command line (sub-millisecond lives on a loaded host;
//! a `process_name` matcher still works on a zombie), and events the
//! kernel drops when the socket's buffer overflows (logged).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::matcher;
use super::matcher::WorkerGroupConfig;
use super::proc_events::{Event, ProcEvents, ProcEventsError};

#[derive(Debug, Clone, Copy)]
struct Member {
    group: usize,
    tentative: bool,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counter {
    restarts: u64,
    gone: u64,
}

/// Group membership and restart counters, driven by process events.
#[derive(Debug, Default)]
pub struct Tracker {
    members: HashMap<u32, Member>,
    counters: Vec<Counter>,
}

impl Tracker {
    /// A tracker for `groups` groups whose counts start at `base`.
    pub fn new(base: &[u64]) -> Self {
        Self {
            members: HashMap::new(),
            counters: base
                .iter()
                .map(|&restarts| Counter { restarts, gone: 0 })
                .collect(),
        }
    }

    fn appeared(&mut self, group: usize) {
        if let Some(c) = self.counters.get_mut(group)
            && c.gone > 0
        {
            c.gone -= 1;
            c.restarts += 1;
        }
    }

    fn departed(&mut self, group: usize) {
        if let Some(c) = self.counters.get_mut(group) {
            c.gone += 1;
        }
    }

    /// A member that was running before the events started.
    pub fn seed(&mut self, pid: u32, group: usize) {
        self.members.insert(
            pid,
            Member {
                group,
                tentative: false,
            },
        );
    }

    pub fn on_fork(&mut self, parent: u32, child: u32) {
        if let Some(m) = self.members.get(&parent).copied() {
            self.members.insert(
                child,
                Member {
                    group: m.group,
                    tentative: true,
                },
            );
        }
    }

    /// `group` is what the new program matches, if anything.
    pub fn on_exec(&mut self, pid: u32, group: Option<usize>) {
        let old = self.members.remove(&pid);
        match (old, group) {
            (Some(old), Some(new)) if old.group == new => {
                if old.tentative {
                    self.appeared(new);
                }
            }
            (old, new) => {
                if let Some(old) = old
                    && !old.tentative
                {
                    self.departed(old.group);
                }
                match new {
                    Some(new) => self.appeared(new),
                    None => return,
                }
            }
        }
        if let Some(group) = group {
            self.members.insert(
                pid,
                Member {
                    group,
                    tentative: false,
                },
            );
        }
    }

    pub fn on_exit(&mut self, pid: u32) {
        if let Some(m) = self.members.remove(&pid) {
            if m.tentative {
                self.appeared(m.group);
            }
            self.departed(m.group);
        }
    }

    /// A /proc scan saw `pid` alive: a tentative member is a real one.
    pub fn confirm(&mut self, pid: u32) {
        if let Some(m) = self.members.get_mut(&pid)
            && m.tentative
        {
            m.tentative = false;
            let group = m.group;
            self.appeared(group);
        }
    }

    /// Restarts per group, including the base it started from.
    pub fn restarts(&self) -> Vec<u64> {
        self.counters.iter().map(|c| c.restarts).collect()
    }
}

/// The thread that feeds a [`Tracker`] from the proc connector; stops when
/// dropped.
pub struct EventWatcher {
    tracker: Arc<Mutex<Tracker>>,
    stop: Arc<AtomicBool>,
    alive: Arc<AtomicBool>,
}

impl EventWatcher {
    /// Subscribes to process events, seeds the tracker with the members
    /// running now and starts the thread. Fails where the agent may not
    /// subscribe (no CAP_NET_ADMIN, no netlink).
    pub fn start(
        groups: Vec<WorkerGroupConfig>,
        base: &[u64],
        proc_root: PathBuf,
    ) -> Result<Self, ProcEventsError> {
        let mut events = ProcEvents::subscribe(Duration::from_millis(200))?;
        let tracker = Arc::new(Mutex::new(Tracker::new(base)));
        // Subscribed first, then seeded: a process that starts in between is
        // both seeded and seen by an event, which the tracker tolerates.
        let mut buf = Vec::with_capacity(4096);
        let mut pids = Vec::new();
        if super::procfs::list_pids(&proc_root, &mut pids).is_ok()
            && let Ok(mut t) = tracker.lock()
        {
            for &pid in &pids {
                if let Some(c) = matcher::classify(&proc_root, &groups, pid, &mut buf)
                    && !c.zombie
                {
                    t.seed(pid, c.group);
                }
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let alive = Arc::new(AtomicBool::new(true));
        let (t, s, a) = (tracker.clone(), stop.clone(), alive.clone());
        let own_pid = std::process::id();
        let spawned = std::thread::Builder::new()
            .name("proc-events".into())
            .spawn(move || {
                raise_priority();
                let mut batch = Vec::new();
                while !s.load(Ordering::Relaxed) {
                    batch.clear();
                    match events.next(&mut batch) {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(
                                "the kernel dropped process events: restart counts may miss some"
                            );
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "process events stopped; restarts are counted by /proc scans from now on");
                            break;
                        }
                    }
                    for &event in &batch {
                        // Classify outside the lock: it reads /proc.
                        let exec_group = match event {
                            Event::Exec { pid } if pid != own_pid => {
                                matcher::classify(&proc_root, &groups, pid, &mut buf)
                                    .map(|c| c.group)
                            }
                            _ => None,
                        };
                        let Ok(mut t) = t.lock() else {
                            return;
                        };
                        match event {
                            Event::Fork { parent, child } => t.on_fork(parent, child),
                            Event::Exec { pid } => t.on_exec(pid, exec_group),
                            Event::Exit { pid } => t.on_exit(pid),
                        }
                    }
                }
                a.store(false, Ordering::Relaxed);
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the process-event thread");
            alive.store(false, Ordering::Relaxed);
        }
        Ok(Self {
            tracker,
            stop,
            alive,
        })
    }

    /// Whether the thread still runs; when it stopped, the caller counts
    /// restarts from /proc scans again.
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Relaxed)
    }

    /// Marks the pids a scan saw alive, and returns the restart counts.
    pub fn confirm_and_count(&self, alive_pids: &[u32]) -> Option<Vec<u64>> {
        let mut t = self.tracker.lock().ok()?;
        for &pid in alive_pids {
            t.confirm(pid);
        }
        Some(t.restarts())
    }
}

/// Nice level of the event thread where the agent may raise it.
const EVENT_THREAD_NICE: i32 = -20;

/// A process that lives a millisecond must be classified within that
/// millisecond: on a busy host a normal-priority thread waits longer than
/// that to run. The thread sleeps on the socket almost always, so a higher
/// priority costs the host nothing. Needs CAP_SYS_NICE; without it the
/// thread runs at the agent's priority and very short lives may be missed.
fn raise_priority() {
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), EVENT_THREAD_NICE) {
        tracing::debug!(error = %e, "cannot raise the process-event thread's priority");
    }
}

impl Drop for EventWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_replacements_not_growth() {
        let mut t = Tracker::new(&[5, 0]);
        t.seed(10, 0);
        // Two short-lived replacements, one after the other.
        t.on_exit(10);
        t.on_exec(11, Some(0));
        t.on_exit(11);
        t.on_exec(12, Some(0));
        assert_eq!(t.restarts(), [7, 0]);
        // Growth: a second member while none is missing.
        t.on_exec(13, Some(0));
        assert_eq!(t.restarts(), [7, 0]);
        // Something else entirely.
        t.on_exec(14, None);
        t.on_exit(14);
        assert_eq!(t.restarts(), [7, 0]);
    }

    #[test]
    fn forked_children_count_only_if_they_stay_workers() {
        let mut t = Tracker::new(&[0]);
        t.seed(1, 0); // a prefork master
        t.seed(2, 0); // its worker
        t.on_exit(2);
        // The master runs a shell command: fork, then exec away.
        t.on_fork(1, 3);
        t.on_exec(3, None);
        t.on_exit(3);
        assert_eq!(t.restarts(), [0]);
        // It forks a new worker, which a scan sees: a restart.
        t.on_fork(1, 4);
        t.confirm(4);
        assert_eq!(t.restarts(), [1]);
        // A worker that dies before any scan still counted.
        t.on_exit(4);
        t.on_fork(1, 5);
        t.on_exit(5);
        assert_eq!(t.restarts(), [2]);
        // A member that execs a program of its own group stays one.
        t.on_fork(1, 6);
        t.on_exec(6, Some(0));
        t.on_exec(6, Some(0));
        assert_eq!(t.restarts(), [3]);
    }
}
