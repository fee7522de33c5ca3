//! Simulated worker processes: 1–3 groups per host of real-looking queue
//! workers (celery, sidekiq, `python -m rq worker`, node, gunicorn,
//! `java -jar`) with their command lines and flags, each process's CPU and
//! RSS walking, and now and then a process exiting and coming back a few
//! samples later as a new pid, which the group counts as a restart.

use fleetwatch_proto as wire;
use rand::rngs::SmallRng;
use rand::seq::IndexedRandom;
use rand::{Rng, seq::SliceRandom};

use super::walk::Walk;

/// How long a worker process lives on average before it exits (OOM kill,
/// `max-tasks-per-child`, a deploy).
const MEAN_LIFETIME_SECS: f64 = 3600.0;
/// Highest pid before the kernel wraps (`pid_max` on 64-bit hosts).
const PID_MAX: u32 = 4_194_304;

const MIB: f64 = 1024.0 * 1024.0;

/// The kinds of worker fleets run, each with its own command line shape,
/// memory and thread count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Celery,
    Sidekiq,
    Rq,
    Node,
    Gunicorn,
    Java,
}

const KINDS: [Kind; 6] = [
    Kind::Celery,
    Kind::Sidekiq,
    Kind::Rq,
    Kind::Node,
    Kind::Gunicorn,
    Kind::Java,
];
const APPS: [&str; 6] = ["shop", "billing", "ingest", "mailer", "reports", "search"];
const QUEUES: [&str; 6] = ["default", "high", "emails", "exports", "webhooks", "low"];

impl Kind {
    /// The group name operators would configure for it.
    fn group_name(self, app: &str, queue: &str) -> String {
        match self {
            Kind::Celery => format!("celery-{queue}"),
            Kind::Sidekiq => format!("sidekiq-{app}"),
            Kind::Rq => format!("rq-{queue}"),
            Kind::Node => format!("node-{app}"),
            Kind::Gunicorn => format!("gunicorn-{app}"),
            Kind::Java => format!("{app}-jvm"),
        }
    }

    /// Process name as `ps -o comm` shows it.
    fn process_name(self) -> &'static str {
        match self {
            Kind::Celery => "celery",
            Kind::Sidekiq => "ruby",
            Kind::Rq => "python3",
            Kind::Node => "node",
            Kind::Gunicorn => "gunicorn",
            Kind::Java => "java",
        }
    }

    /// Typical RSS range in MiB and thread count range.
    fn rss_mib(self) -> (f64, f64) {
        match self {
            Kind::Celery => (90.0, 450.0),
            Kind::Sidekiq => (180.0, 900.0),
            Kind::Rq => (60.0, 300.0),
            Kind::Node => (70.0, 600.0),
            Kind::Gunicorn => (80.0, 350.0),
            Kind::Java => (600.0, 2300.0),
        }
    }

    fn threads(self, rng: &mut SmallRng) -> u32 {
        match self {
            Kind::Celery => rng.random_range(3..=6),
            Kind::Sidekiq => rng.random_range(12..=16),
            Kind::Rq => 1,
            Kind::Node => rng.random_range(7..=11),
            Kind::Gunicorn => 9,
            Kind::Java => rng.random_range(35..=90),
        }
    }

    /// Highest CPU % one process of this kind reaches (percent of one core).
    fn cpu_max(self) -> f64 {
        match self {
            Kind::Node | Kind::Java | Kind::Sidekiq => 180.0,
            _ => 100.0,
        }
    }
}

/// What a group's command lines are built from.
#[derive(Debug, Clone)]
struct Spec {
    kind: Kind,
    app: &'static str,
    queue: &'static str,
    hostname: String,
    redis: String,
}

impl Spec {
    fn cmdline(&self, slot: usize, pid: u32, cpu: f64) -> String {
        let Spec {
            app,
            queue,
            hostname,
            redis,
            ..
        } = self;
        match self.kind {
            Kind::Celery => format!(
                "/srv/{app}/venv/bin/python3 /srv/{app}/venv/bin/celery -A {app}.tasks worker \
                 --loglevel=INFO --concurrency=1 --prefetch-multiplier=4 --max-tasks-per-child=500 \
                 -Q {queue},celery -n {queue}-{slot}@{hostname}"
            ),
            // Sidekiq rewrites its process title with how busy it is.
            Kind::Sidekiq => {
                let busy = ((cpu / 180.0) * 10.0).round().clamp(0.0, 10.0);
                format!("sidekiq 7.2.4 {app} [{busy} of 10 busy]")
            }
            Kind::Rq => format!(
                "/usr/bin/python3 -m rq worker --url redis://{redis}:6379/0 --name {hostname}.{pid} \
                 --results-ttl 500 --with-scheduler {queue} default low"
            ),
            Kind::Node => format!(
                "node --max-old-space-size=1024 --enable-source-maps /srv/{app}/dist/worker.js \
                 --queue={queue} --prefetch=20 --worker-index={slot}"
            ),
            Kind::Gunicorn => format!(
                "/srv/{app}/venv/bin/python3 /srv/{app}/venv/bin/gunicorn --workers 4 \
                 --worker-class gthread --threads 8 --bind 127.0.0.1:8000 --timeout 30 \
                 --max-requests 1000 {app}.wsgi:application"
            ),
            Kind::Java => format!(
                "/usr/lib/jvm/java-17-openjdk-amd64/bin/java -Xms512m -Xmx2g -XX:+UseG1GC \
                 -XX:MaxGCPauseMillis=200 -Dspring.profiles.active=prod -Dworker.id={slot} \
                 -jar /opt/{app}/{app}-worker-3.4.1.jar --spring.config.location=/etc/{app}/application.yml"
            ),
        }
    }
}

/// One live process.
#[derive(Debug, Clone)]
struct Proc {
    pid: u32,
    /// Until the first sample: seconds before it, negated (see
    /// [`WorkerPool::anchored`]).
    start_time_secs: i64,
    cpu: Walk,
    rss: Walk,
    threads: u32,
    /// Built once: only sidekiq rewrites its title while it runs.
    cmdline: String,
}

/// One place in a group, with a process in it or waiting for the next one.
#[derive(Debug, Clone)]
struct Slot {
    proc: Option<Proc>,
    /// Samples until the replacement starts, while `proc` is `None`.
    down_for: u32,
}

#[derive(Debug, Clone)]
struct Group {
    name: String,
    spec: Spec,
    min_alive: u32,
    restarts: u64,
    slots: Vec<Slot>,
}

/// A host's worker groups and their processes.
#[derive(Debug, Clone)]
pub struct WorkerPool {
    groups: Vec<Group>,
    next_pid: u32,
    /// Chance per sample that one process exits.
    exit_chance: f64,
    /// Whether the first processes' start times have been set relative to
    /// the first sample's time: the pool is made before anyone knows when
    /// it will first be sampled (now, or a day ago for a backfill), and
    /// keeping the clock out makes the samples depend on the seed alone.
    anchored: bool,
}

impl WorkerPool {
    /// `workers` processes spread over 1–3 groups (fewer when there are
    /// fewer workers), sampled every `interval_secs`.
    pub fn new(rng: &mut SmallRng, workers: u32, hostname: &str, interval_secs: f64) -> Self {
        let mut pool = Self {
            groups: Vec::new(),
            next_pid: rng.random_range(900..200_000),
            exit_chance: (interval_secs / MEAN_LIFETIME_SECS).min(1.0),
            anchored: false,
        };
        if workers == 0 {
            return pool;
        }
        let count = rng.random_range(1..=3u32).min(workers);
        let mut kinds = KINDS;
        kinds.shuffle(rng);
        let redis = format!(
            "10.{}.{}.{}",
            rng.random_range(0..=255),
            rng.random_range(0..=255),
            rng.random_range(2..=254)
        );
        for (i, kind) in kinds.iter().take(count as usize).enumerate() {
            let size = workers / count + u32::from((i as u32) < workers % count);
            let spec = Spec {
                kind: *kind,
                app: APPS.choose(rng).copied().unwrap_or("app"),
                queue: QUEUES.choose(rng).copied().unwrap_or("default"),
                hostname: hostname.to_owned(),
                redis: redis.clone(),
            };
            // Running since some time before the first sample.
            let started = -rng.random_range(60..30 * 86_400);
            let slots = (0..size as usize)
                .map(|s| Slot {
                    proc: Some(pool.spawn(rng, &spec, s, started)),
                    down_for: 0,
                })
                .collect();
            pool.groups.push(Group {
                name: kind.group_name(spec.app, spec.queue),
                min_alive: size.saturating_sub((size / 5).max(1)).max(1),
                spec,
                restarts: 0,
                slots,
            });
        }
        pool
    }

    fn spawn(
        &mut self,
        rng: &mut SmallRng,
        spec: &Spec,
        slot: usize,
        start_time_secs: i64,
    ) -> Proc {
        let kind = spec.kind;
        // Other processes start too, so pids are not consecutive.
        self.next_pid += rng.random_range(1..=60);
        if self.next_pid >= PID_MAX {
            self.next_pid = rng.random_range(300..5_000);
        }
        let (lo, hi) = kind.rss_mib();
        let rss = rng.random_range(lo..=(lo + hi) / 2.0) * MIB;
        let idle = rng.random_range(0.5..=15.0);
        Proc {
            cmdline: spec.cmdline(slot, self.next_pid, idle),
            pid: self.next_pid,
            start_time_secs,
            cpu: Walk::new(idle, 0.0, kind.cpu_max(), 0.1, 6.0, 0.02),
            rss: Walk::new(rss, lo * MIB, hi * MIB, 0.01, 2.0 * MIB, 0.001),
            threads: kind.threads(rng),
        }
    }

    /// The groups as the Hello names them.
    pub fn hello_groups(&self) -> Vec<wire::WorkerGroup> {
        self.groups
            .iter()
            .map(|g| wire::WorkerGroup {
                name: g.name.clone(),
                min_alive: g.min_alive,
            })
            .collect()
    }

    /// Moves every process one sample on (exits and restarts included) and
    /// returns the workers and group statuses seen at `now_secs`.
    pub fn step(
        &mut self,
        rng: &mut SmallRng,
        now_secs: i64,
    ) -> (Vec<wire::Worker>, Vec<wire::GroupStatus>) {
        if !self.anchored {
            self.anchored = true;
            for group in &mut self.groups {
                for proc in group.slots.iter_mut().filter_map(|s| s.proc.as_mut()) {
                    proc.start_time_secs += now_secs;
                }
            }
        }
        let mut workers = Vec::new();
        let mut statuses = Vec::with_capacity(self.groups.len());
        let exit_chance = self.exit_chance;
        for g in 0..self.groups.len() {
            let kind = self.groups[g].spec.kind;
            let mut alive = 0;
            for s in 0..self.groups[g].slots.len() {
                let slot = &mut self.groups[g].slots[s];
                match &mut slot.proc {
                    Some(_) if rng.random_bool(exit_chance) => {
                        slot.proc = None;
                        slot.down_for = rng.random_range(1..=5);
                        continue;
                    }
                    Some(_) => {}
                    None if slot.down_for > 1 => {
                        slot.down_for -= 1;
                        continue;
                    }
                    None => {
                        let spec = self.groups[g].spec.clone();
                        let proc = self.spawn(rng, &spec, s, now_secs);
                        let group = &mut self.groups[g];
                        group.restarts += 1;
                        group.slots[s].proc = Some(proc);
                    }
                }
                let group = &mut self.groups[g];
                let Some(proc) = group.slots[s].proc.as_mut() else {
                    continue;
                };
                alive += 1;
                let cpu = proc.cpu.next(rng);
                let rss = proc.rss.next(rng);
                let state = if cpu > 50.0 && rng.random_bool(0.6) {
                    "running"
                } else {
                    "sleeping"
                };
                workers.push(wire::Worker {
                    group: group.name.clone(),
                    pid: proc.pid,
                    name: kind.process_name().to_owned(),
                    cmdline: if kind == Kind::Sidekiq {
                        group.spec.cmdline(s, proc.pid, cpu)
                    } else {
                        proc.cmdline.clone()
                    },
                    state: state.to_owned(),
                    cpu_percent: f64::from(cpu as f32),
                    rss_bytes: page_aligned(rss),
                    threads: proc.threads,
                    start_time_secs: proc.start_time_secs,
                });
            }
            let group = &self.groups[g];
            statuses.push(wire::GroupStatus {
                name: group.name.clone(),
                min_alive: group.min_alive,
                alive,
                restarts: group.restarts,
                omitted: 0,
            });
        }
        (workers, statuses)
    }
}

/// Bytes rounded down to whole 4 KiB pages, as the kernel counts memory.
pub fn page_aligned(bytes: f64) -> u64 {
    (bytes.max(0.0) as u64) & !4095
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashSet;

    use rand::SeedableRng;

    use super::*;

    #[test]
    fn workers_spread_over_one_to_three_named_groups() {
        for seed in 0..50 {
            let mut rng = SmallRng::seed_from_u64(seed);
            let mut pool = WorkerPool::new(&mut rng, 20, "jobs-0001.prod.internal", 1.0);
            let groups = pool.hello_groups();
            assert!((1..=3).contains(&groups.len()));
            let names: HashSet<_> = groups.iter().map(|g| g.name.clone()).collect();
            assert_eq!(names.len(), groups.len(), "group names are unique");
            let (workers, statuses) = pool.step(&mut rng, 1_800_000_000);
            assert!(workers.len() >= 18, "nearly all alive: {}", workers.len());
            let pids: HashSet<_> = workers.iter().map(|w| w.pid).collect();
            assert_eq!(pids.len(), workers.len(), "pids are unique");
            assert_eq!(
                statuses.iter().map(|s| s.alive).sum::<u32>() as usize,
                workers.len()
            );
            for w in &workers {
                assert!(
                    w.cmdline.len() > 20 && w.cmdline.len() < 4096,
                    "{}",
                    w.cmdline
                );
                assert!(names.contains(&w.group));
                assert!(w.rss_bytes > 50 << 20 && w.rss_bytes % 4096 == 0);
            }
        }
    }

    #[test]
    fn no_workers_means_no_groups() {
        let mut rng = SmallRng::seed_from_u64(1);
        let mut pool = WorkerPool::new(&mut rng, 0, "h", 1.0);
        assert!(pool.hello_groups().is_empty());
        assert_eq!(pool.step(&mut rng, 0), (Vec::new(), Vec::new()));
    }

    #[test]
    fn exited_workers_come_back_as_new_pids_and_count_as_restarts() {
        let mut rng = SmallRng::seed_from_u64(3);
        // A one-minute interval: a process exits about once an hour, so
        // 20 processes over 2,000 samples see many restarts.
        let mut pool = WorkerPool::new(&mut rng, 20, "h", 60.0);
        let mut seen_pids = HashSet::new();
        let mut dipped = false;
        let mut last = Vec::new();
        for i in 0..2_000 {
            let (workers, statuses) = pool.step(&mut rng, 1_800_000_000 + i * 60);
            dipped |= workers.len() < 20;
            seen_pids.extend(workers.iter().map(|w| w.pid));
            last = statuses;
        }
        let restarts: u64 = last.iter().map(|s| s.restarts).sum();
        assert!(dipped, "some samples miss an exited worker");
        assert!(restarts > 100, "restarts {restarts}");
        assert_eq!(
            seen_pids.len() as u64,
            20 + restarts,
            "every restart is a new pid"
        );
    }
}
