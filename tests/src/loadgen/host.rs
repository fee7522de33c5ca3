//! One simulated host: what its agent would say in its Hello and the
//! samples it would send, moving like a real machine's numbers. Everything
//! follows from the seed and the host's number, so two runs with the same
//! seed send the same values.
//!
//! 2–16 cores, each spread around the host's CPU level; memory, swap and
//! load walking; 1–4 filesystems with real mounts, devices and types,
//! filling slowly and freed now and then (log rotation); disk and network
//! rates idling with bursts; and the worker pool of [`super::workers`].
//! Nothing reads the clock: the samples depend on the seed alone, and the
//! caller says when each was taken (now, or in the past for a backfill).

use fleetwatch_proto as wire;
use rand::rngs::SmallRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use super::walk::{Bursty, Walk};
use super::workers::{WorkerPool, page_aligned};

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// (os, kernel) pairs as fleets run them.
const SYSTEMS: [(&str, &str); 5] = [
    ("Debian GNU/Linux 12 (bookworm)", "6.1.0-26-amd64"),
    ("Ubuntu 22.04.4 LTS", "5.15.0-119-generic"),
    ("Ubuntu 24.04.1 LTS", "6.8.0-45-generic"),
    (
        "Rocky Linux 9.4 (Blue Onyx)",
        "5.14.0-427.33.1.el9_4.x86_64",
    ),
    ("Amazon Linux 2023", "6.1.109-118.189.amzn2023.x86_64"),
];
const ROLES: [&str; 5] = ["jobs", "worker", "batch", "etl", "queue"];
const DOMAINS: [&str; 3] = [
    "prod.internal",
    "eu-west-1.compute.internal",
    "dc1.example.net",
];
const CORES: [u32; 6] = [2, 4, 6, 8, 12, 16];

/// Mounts beside `/`: (mount, type, device suffix or full device, size range in GiB).
const EXTRA_MOUNTS: [(&str, &str, &str, f64, f64); 5] = [
    ("/boot", "ext4", "p1", 0.98, 0.98),
    ("/var/lib/docker", "xfs", "/dev/nvme1n1", 100.0, 500.0),
    ("/data", "xfs", "/dev/mapper/vg_data-data", 200.0, 4000.0),
    ("/var/log", "ext4", "/dev/mapper/vg0-log", 10.0, 50.0),
    ("/home", "btrfs", "/dev/sdb1", 50.0, 1000.0),
];
/// Root devices: (disk, root partition).
const ROOTS: [(&str, &str); 4] = [
    ("/dev/nvme0n1", "/dev/nvme0n1p2"),
    ("/dev/sda", "/dev/sda2"),
    ("/dev/vda", "/dev/vda2"),
    ("/dev/xvda", "/dev/xvda2"),
];

#[derive(Debug, Clone)]
struct Fs {
    mount: &'static str,
    fs_type: &'static str,
    device: String,
    total: f64,
    used: f64,
    /// Bytes per second it fills by on average (0 for `/boot`): 0.1–3 % of
    /// its size a day, so that disks fill over weeks as real ones do.
    fill_per_sec: f64,
}

/// A simulated host; [`SimHost::sample`] moves it one interval on.
#[derive(Debug, Clone)]
pub struct SimHost {
    rng: SmallRng,
    pub host_id: String,
    pub hostname: String,
    os: &'static str,
    kernel: &'static str,
    interval_secs: f64,
    cpu: Walk,
    core_offsets: Vec<Walk>,
    memory_total: f64,
    memory_used: Walk,
    swap_total: f64,
    swap_used: Walk,
    loads: [f64; 3],
    filesystems: Vec<Fs>,
    disk_read: Bursty,
    disk_write: Bursty,
    net_rx: Bursty,
    net_tx: Bursty,
    uptime_secs: f64,
    processes: Walk,
    workers: WorkerPool,
}

impl SimHost {
    /// Host number `index` of a run seeded with `seed`, reporting `workers`
    /// worker processes every `interval_secs`.
    pub fn new(seed: u64, index: u32, workers: u32, interval_secs: f64) -> Self {
        let mut rng =
            SmallRng::seed_from_u64(seed ^ u64::from(index).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        // Like /etc/machine-id: 32 hex digits.
        let host_id = format!("{:016x}{:016x}", rng.random::<u64>(), rng.random::<u64>());
        let role = ROLES.choose(&mut rng).copied().unwrap_or("jobs");
        let domain = DOMAINS.choose(&mut rng).copied().unwrap_or("internal");
        let hostname = format!("{role}-{index:04}.{domain}");
        let (os, kernel) = SYSTEMS.choose(&mut rng).copied().unwrap_or(SYSTEMS[0]);
        let cores = CORES.choose(&mut rng).copied().unwrap_or(4);
        let memory_total = f64::from(cores) * [2.0, 4.0, 8.0].choose(&mut rng).unwrap_or(&4.0);
        let memory_total = memory_total * GIB - rng.random_range(150.0..400.0) * 1024.0 * 1024.0;
        let swap_total = *[0.0, 0.0, 2.0 * GIB, 4.0 * GIB]
            .choose(&mut rng)
            .unwrap_or(&0.0);
        let level = rng.random_range(3.0..60.0);
        let core_offsets = (0..cores)
            .map(|_| {
                let offset = rng.random_range(-15.0..15.0);
                Walk::new(offset, -40.0, 40.0, 0.08, 6.0, 0.01)
            })
            .collect();
        let filesystems = Self::filesystems(&mut rng);
        let disk_base = rng.random_range(20e3..3e6);
        let net_base = rng.random_range(10e3..5e6);
        let workers_pool = WorkerPool::new(&mut rng, workers, &hostname, interval_secs);
        let mem_level = rng.random_range(0.2..0.8) * memory_total;
        Self {
            host_id,
            hostname,
            os,
            kernel,
            interval_secs,
            cpu: Walk::new(level, 0.5, 98.0, 0.02, 4.0, 0.002),
            core_offsets,
            memory_total,
            memory_used: Walk::new(
                mem_level,
                0.1 * memory_total,
                0.95 * memory_total,
                0.01,
                0.002 * memory_total,
                0.0005,
            ),
            swap_total,
            swap_used: Walk::new(
                rng.random_range(0.0..0.1) * swap_total,
                0.0,
                0.5 * swap_total,
                0.001,
                0.0005 * swap_total,
                0.0,
            ),
            loads: [f64::from(cores) * level / 100.0; 3],
            filesystems,
            disk_read: Bursty::new(disk_base, 0.01),
            disk_write: Bursty::new(disk_base * 1.5, 0.02),
            net_rx: Bursty::new(net_base, 0.02),
            net_tx: Bursty::new(net_base * 0.6, 0.02),
            uptime_secs: rng.random_range(3_600.0..200.0 * 86_400.0),
            processes: Walk::new(
                rng.random_range(150.0..600.0),
                100.0,
                1200.0,
                0.02,
                3.0,
                0.001,
            ),
            workers: workers_pool,
            rng,
        }
    }

    fn filesystems(rng: &mut SmallRng) -> Vec<Fs> {
        let (disk, root_dev) = ROOTS.choose(rng).copied().unwrap_or(ROOTS[0]);
        let root_total = rng.random_range(20.0..200.0) * GIB;
        let mut list = vec![Fs {
            mount: "/",
            fs_type: ["ext4", "xfs"].choose(rng).copied().unwrap_or("ext4"),
            device: root_dev.to_owned(),
            total: root_total,
            used: rng.random_range(0.15..0.7) * root_total,
            fill_per_sec: fill_rate(rng, root_total),
        }];
        let extra = rng.random_range(0..=3usize);
        for (mount, fs_type, device, lo, hi) in EXTRA_MOUNTS.choose_multiple(rng, extra) {
            // `/boot` is the first partition of the root disk.
            let device = match *device {
                "p1" if disk.contains("nvme") => format!("{disk}p1"),
                "p1" => format!("{disk}1"),
                full => full.to_owned(),
            };
            let total = rng.random_range(*lo..=*hi) * GIB;
            let static_fs = *mount == "/boot";
            list.push(Fs {
                mount,
                fs_type,
                device,
                total,
                used: rng.random_range(0.1..0.75) * total,
                fill_per_sec: if static_fs {
                    0.0
                } else {
                    fill_rate(rng, total)
                },
            });
        }
        list
    }

    /// The Hello this host's agent opens its stream with.
    pub fn hello(&self, interval_ms: u32) -> wire::Hello {
        wire::Hello {
            host_id: self.host_id.clone(),
            hostname: self.hostname.clone(),
            os: self.os.to_owned(),
            kernel: self.kernel.to_owned(),
            cpu_count: self.core_offsets.len() as u32,
            memory_total_bytes: page_aligned(self.memory_total),
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            interval_ms,
            worker_groups: self.workers.hello_groups(),
        }
    }

    /// The next sample, taken at `timestamp_ms`.
    pub fn sample(&mut self, timestamp_ms: i64) -> wire::Sample {
        let rng = &mut self.rng;
        let dt = self.interval_secs;
        let level = self.cpu.next(rng);
        let cores: Vec<f64> = self
            .core_offsets
            .iter_mut()
            .map(|offset| {
                let noise = rng.random_range(-4.0..=4.0);
                let core = (level + offset.next(rng) + noise).clamp(0.0, 100.0);
                f64::from(core as f32)
            })
            .collect();
        let cpu = cores.iter().sum::<f64>() / cores.len().max(1) as f64;
        // The kernel's load averages: exponential decay towards the number
        // of runnable tasks over 1, 5 and 15 minutes.
        let runnable = cores.len() as f64 * level / 100.0 * rng.random_range(0.7..=1.5);
        for (load, minutes) in self.loads.iter_mut().zip([1.0, 5.0, 15.0]) {
            let decay = (-dt / (60.0 * minutes)).exp();
            *load = *load * decay + runnable * (1.0 - decay);
        }
        let memory_used = page_aligned(self.memory_used.next(rng));
        let memory_total = page_aligned(self.memory_total);
        let swap_used = page_aligned(self.swap_used.next(rng));
        let disk_write = self.disk_write.next(rng);
        for fs in &mut self.filesystems {
            // Writes land unevenly: some intervals add nothing, some twice
            // the average.
            fs.used += fs.fill_per_sec * dt * rng.random_range(0.0..2.0);
            // Log rotation or a cleanup job about once a day.
            if fs.fill_per_sec > 0.0 && rng.random_bool((dt / 86_400.0).min(1.0)) {
                fs.used *= rng.random_range(0.8..0.95);
            }
            fs.used = fs.used.min(fs.total * 0.99);
        }
        self.uptime_secs += dt;
        let (workers, groups) = self.workers.step(rng, timestamp_ms / 1000);
        let processes = self.processes.next(rng) as u32 + workers.len() as u32;
        let (net_rx, net_tx) = (self.net_rx.next(rng), self.net_tx.next(rng));
        wire::Sample {
            timestamp_ms,
            system: Some(wire::SystemMetrics {
                cpu_percent: f64::from(cpu as f32),
                cpu_per_core: cores,
                cpu_iowait_percent: round2(rng.random_range(0.0..2.0)),
                cpu_steal_percent: 0.0,
                interfaces: vec![wire::NetInterface {
                    name: "eth0".to_owned(),
                    rx_bytes_per_sec: net_rx,
                    tx_bytes_per_sec: net_tx,
                }],
                load1: round2(self.loads[0]),
                load5: round2(self.loads[1]),
                load15: round2(self.loads[2]),
                memory_total_bytes: memory_total,
                memory_used_bytes: memory_used,
                memory_available_bytes: memory_total.saturating_sub(memory_used),
                swap_total_bytes: page_aligned(self.swap_total),
                swap_used_bytes: swap_used,
                filesystems: self
                    .filesystems
                    .iter()
                    .map(|fs| {
                        let total = page_aligned(fs.total);
                        let used = page_aligned(fs.used);
                        // ext4 keeps 5 % for root: neither used nor available.
                        let reserved = if fs.fs_type == "ext4" { total / 20 } else { 0 };
                        wire::Filesystem {
                            mount_point: fs.mount.to_owned(),
                            fs_type: fs.fs_type.to_owned(),
                            device: fs.device.clone(),
                            total_bytes: total,
                            used_bytes: used,
                            available_bytes: total.saturating_sub(used).saturating_sub(reserved),
                        }
                    })
                    .collect(),
                disk_read_bytes_per_sec: self.disk_read.next(rng),
                disk_write_bytes_per_sec: disk_write,
                net_rx_bytes_per_sec: net_rx,
                net_tx_bytes_per_sec: net_tx,
                uptime_secs: self.uptime_secs as u64,
                process_count: processes,
                filesystems_omitted: 0,
            }),
            workers,
            groups,
        }
    }
}

/// How fast a filesystem of `total` bytes fills, in bytes per second.
fn fill_rate(rng: &mut SmallRng, total: f64) -> f64 {
    total * rng.random_range(0.001..0.03) / 86_400.0
}

/// Two decimals, as `/proc/loadavg` shows them.
fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use fleetwatch_aggregator::ingest::convert;

    use super::*;

    const T0: i64 = 1_800_000_000_000;

    fn run(host: &mut SimHost, samples: i64) -> Vec<wire::Sample> {
        (0..samples).map(|i| host.sample(T0 + i * 1000)).collect()
    }

    #[test]
    fn the_same_seed_and_number_give_the_same_host_and_samples() {
        let mut a = SimHost::new(42, 7, 20, 1.0);
        let mut b = SimHost::new(42, 7, 20, 1.0);
        assert_eq!(a.hello(1000), b.hello(1000));
        assert_eq!(run(&mut a, 50), run(&mut b, 50));
        let other = SimHost::new(42, 8, 20, 1.0);
        assert_ne!(a.host_id, other.host_id);
        assert_eq!(a.host_id.len(), 32);
    }

    #[test]
    fn every_sample_passes_the_aggregators_checks() {
        for index in 0..20 {
            let mut host = SimHost::new(1, index, 20, 1.0);
            let hello = host.hello(1000);
            assert!((2..=16).contains(&hello.cpu_count));
            let info = convert::hello(hello).expect("valid hello");
            let batch = wire::Batch {
                seq: 1,
                samples: run(&mut host, 300),
                ..Default::default()
            };
            convert::batch(batch, &info, T0 + 300_000).expect("valid samples");
        }
    }

    #[test]
    fn cores_spread_around_the_host_level() {
        let mut host = SimHost::new(3, 0, 0, 1.0);
        let samples = run(&mut host, 200);
        let mut spread = 0.0;
        for s in &samples {
            let system = s.system.as_ref().unwrap();
            let cores = &system.cpu_per_core;
            let mean = cores.iter().sum::<f64>() / cores.len() as f64;
            assert!((mean - system.cpu_percent).abs() < 0.01);
            let (lo, hi) = cores
                .iter()
                .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
            spread += hi - lo;
        }
        assert!(spread / 200.0 > 3.0, "cores differ from each other");
    }

    #[test]
    fn filesystems_are_real_looking_and_fill_slowly() {
        let mut mounts = std::collections::HashSet::new();
        let (mut filled, mut checked) = (0, 0);
        for index in 0..40 {
            let mut host = SimHost::new(5, index, 0, 1.0);
            let samples = run(&mut host, 600);
            let first = samples[0].system.clone().unwrap().filesystems;
            let last = samples[599].system.clone().unwrap().filesystems;
            assert!((1..=4).contains(&first.len()));
            assert_eq!(first[0].mount_point, "/");
            for (a, b) in first.iter().zip(&last) {
                mounts.insert(a.mount_point.clone());
                assert!(a.device.starts_with("/dev/"), "{}", a.device);
                assert_eq!(a.total_bytes, b.total_bytes);
                // Ten minutes move a disk by well under 1 % of its size.
                let moved = a.available_bytes.abs_diff(b.available_bytes) as f64;
                assert!(
                    moved < a.total_bytes as f64 * 0.01,
                    "{} moved {moved}",
                    a.mount_point
                );
                if a.mount_point != "/boot" {
                    filled += u32::from(b.available_bytes < a.available_bytes);
                    checked += 1;
                }
            }
        }
        assert!(mounts.len() >= 4, "several kinds of mounts: {mounts:?}");
        // A cleanup now and then frees space; most disks still fill.
        assert!(filled * 10 > checked * 8, "{filled} of {checked} filled");
    }

    #[test]
    fn memory_and_rates_move() {
        let mut host = SimHost::new(9, 1, 0, 1.0);
        let samples = run(&mut host, 300);
        let systems: Vec<_> = samples.iter().map(|s| s.system.clone().unwrap()).collect();
        let distinct = |f: &dyn Fn(&wire::SystemMetrics) -> u64| {
            systems
                .iter()
                .map(f)
                .collect::<std::collections::HashSet<_>>()
                .len()
        };
        assert!(distinct(&|s| s.memory_used_bytes) > 100);
        assert!(distinct(&|s| s.net_rx_bytes_per_sec as u64) > 100);
        for s in &systems {
            assert_eq!(
                s.memory_total_bytes - s.memory_available_bytes,
                s.memory_used_bytes
            );
            assert!(s.load1 >= 0.0 && s.load15 >= 0.0);
        }
    }
}
