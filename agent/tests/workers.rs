//! Worker groups through the agent's collectors, with real processes: exact
//! restart counts under churn (lives of 1 ms, 200 ms and 2 s), a zombie
//! never counted alive, and restart counts that survive an agent restart.
//!
//! The churn test's processes are reaped 50 ms after they are killed, and
//! matched by process name, which still reads on a zombie: the agent must
//! see each one before it is reaped, not within its millisecond of life
//! (which a loaded 2-core VM cannot promise; see the README).
//!
//! The churn test needs the kernel's process events (CAP_NET_ADMIN, as root
//! in CI); where they are not allowed it prints why and skips.

#![allow(clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use fleetwatch_agent::collect::workers::WorkerCollector;
use fleetwatch_agent::collect::{Collector, CollectorConfig};
use fleetwatch_agent::config::{Matcher, WorkerGroupConfig};
use regex::Regex;

fn boot_time() -> u64 {
    sysinfo::System::boot_time().expect("boot time")
}

/// A `sleep` argument no other process on the machine uses.
fn tag(n: u32) -> String {
    format!("{}.{n}{}", 50_000 + std::process::id() % 10_000, 7)
}

fn group(name: &str, tag: &str) -> WorkerGroupConfig {
    WorkerGroupConfig {
        name: name.to_owned(),
        matcher: Matcher::Cmdline(
            Regex::new(&format!("^sleep {}$", regex::escape(tag))).expect("regex"),
        ),
        min_alive: 1,
    }
}

/// A child process killed and reaped when dropped, so a failed assertion
/// leaves nothing running.
struct Proc(Child);

impl Proc {
    fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `sleep TAG` and returns once it runs `sleep` (`spawn` can return
/// before the child has exec'd).
fn start(tag: &str) -> Proc {
    let child = Proc(Command::new("sleep").arg(tag).spawn().expect("spawn sleep"));
    let path = format!("/proc/{}/cmdline", child.id());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !std::fs::read(&path).is_ok_and(|c| c.starts_with(b"sleep\0")) {
        assert!(Instant::now() < deadline, "sleep did not start");
        std::thread::yield_now();
    }
    child
}

fn stop(child: Proc) {
    drop(child);
}

/// A copy of `sleep` under a name of its own (its kernel name, `comm`), so
/// a group can match it by process name, which still works on a zombie.
fn renamed_sleep(dir: &Path, name: &str) -> PathBuf {
    let sleep = ["/usr/bin/sleep", "/bin/sleep"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("sleep is installed");
    let path = dir.join(name);
    std::fs::copy(sleep, &path).expect("copy sleep");
    path
}

/// Runs `count` processes of `program` one after the other, each living
/// `life` from its exec to its kill, and reaped `ZOMBIE_FOR` later, as a
/// supervisor that handles SIGCHLD on its next turn would.
fn churn(program: &Path, name: &str, count: u32, life: Duration) {
    const ZOMBIE_FOR: Duration = Duration::from_millis(50);
    for _ in 0..count {
        let mut child = Proc(Command::new(program).arg("1000").spawn().expect("spawn"));
        let comm = format!("/proc/{}/comm", child.id());
        let deadline = Instant::now() + Duration::from_secs(5);
        while !std::fs::read_to_string(&comm).is_ok_and(|c| c.trim_end() == name) {
            assert!(Instant::now() < deadline, "{name} did not start");
            std::thread::yield_now();
        }
        std::thread::sleep(life);
        child.0.kill().expect("kill");
        std::thread::sleep(ZOMBIE_FOR);
        child.0.wait().expect("reap");
    }
}

#[test]
fn churn_counts_every_restart_exactly() {
    let lives = [
        (Duration::from_millis(1), 100),
        (Duration::from_millis(200), 10),
        (Duration::from_secs(2), 3),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    // Names of at most 15 bytes (the kernel's limit), unique to this run.
    let names: Vec<String> = (0..lives.len())
        .map(|i| format!("fwc{}x{i}", std::process::id() % 100_000))
        .collect();
    let programs: Vec<PathBuf> = names.iter().map(|n| renamed_sleep(dir.path(), n)).collect();
    let groups = names
        .iter()
        .map(|name| WorkerGroupConfig {
            name: name.clone(),
            matcher: Matcher::ProcessName(name.clone()),
            min_alive: 1,
        })
        .collect();
    let mut collector = WorkerCollector::new(groups, boot_time());
    if let Err(e) = collector.count_restarts_from_events() {
        println!("SKIPPED: cannot subscribe to the kernel's process events ({e}); run as root");
        return;
    }
    collector.scan(Instant::now()).expect("scan");

    // The three lifetimes run side by side, as unrelated services would.
    std::thread::scope(|s| {
        for (((life, count), program), name) in lives.iter().zip(&programs).zip(&names) {
            s.spawn(move || churn(program, name, *count, *life));
        }
    });

    // n processes one after another are n − 1 restarts.
    let want: Vec<u64> = lives.iter().map(|(_, n)| u64::from(*n) - 1).collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got;
    loop {
        let scan = collector.scan(Instant::now()).expect("scan");
        got = scan.groups.iter().map(|g| g.restarts).collect::<Vec<_>>();
        assert!(scan.groups.iter().all(|g| g.alive == 0), "{scan:?}");
        if got == want || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(got, want, "restarts per group (1 ms, 200 ms, 2 s lives)");
    assert!(collector.counts_from_events());
}

#[test]
fn a_zombie_is_not_alive_from_the_first_scan_that_sees_it() {
    let tag = tag(7);
    let mut collector = WorkerCollector::new(vec![group("z", &tag)], boot_time());
    let mut child = start(&tag);
    let scan = collector.scan(Instant::now()).expect("scan");
    assert_eq!(scan.groups[0].alive, 1);

    // Killed and not reaped: a zombie until `wait`.
    child.0.kill().expect("kill");
    let stat = format!("/proc/{}/stat", child.id());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !std::fs::read_to_string(&stat).is_ok_and(|s| s.contains(") Z ")) {
        assert!(Instant::now() < deadline, "never became a zombie");
        std::thread::sleep(Duration::from_millis(5));
    }
    let scan = collector.scan(Instant::now()).expect("scan");
    assert_eq!(scan.groups[0].alive, 0, "a zombie is not alive: {scan:?}");
    assert!(scan.workers.is_empty());

    // Reaped later: still gone, and counted gone only once.
    child.0.wait().expect("reap");
    let replacement = start(&tag);
    let scan = collector.scan(Instant::now()).expect("scan");
    assert_eq!((scan.groups[0].alive, scan.groups[0].restarts), (1, 1));
    stop(replacement);
}

#[test]
fn restart_counts_survive_an_agent_restart() {
    let state = tempfile::tempdir().expect("tempdir");
    let tag = tag(8);
    let config = || CollectorConfig {
        groups: vec![group("kept", &tag)],
        state_dir: Some(state.path().to_owned()),
        process_events: false,
        ..CollectorConfig::default()
    };
    let restarts = |c: &mut Collector| c.sample(0).groups[0].restarts;

    let mut agent = Collector::new(config()).expect("collector");
    let mut child = start(&tag);
    for _ in 0..3 {
        restarts(&mut agent);
        stop(child);
        child = start(&tag);
    }
    assert_eq!(restarts(&mut agent), 3);
    drop(agent);

    let mut restarted = Collector::new(config()).expect("collector");
    assert_eq!(restarts(&mut restarted), 3, "kept across the restart");
    stop(child);
    let next = start(&tag);
    assert_eq!(restarts(&mut restarted), 4);
    stop(next);
}
