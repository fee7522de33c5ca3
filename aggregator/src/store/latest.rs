//! The latest state of every host, in memory: what it said in its hello,
//! when it was first and last seen, and its newest committed sample (with
//! its worker groups and workers). Current values, the host list, worker
//! status and WebSocket snapshots are read from here, so they cost no query
//! and never wait on the writer's connections.
//!
//! Ingest keeps it up to date: [`Latest::hello`] when an agent introduces
//! itself (after the host row is stored) and [`Latest::committed`] for each
//! sample once its batch is committed. The newest sample per host wins: an
//! older sample backfilled after a reconnect never replaces a newer one. At
//! start-up [`Latest::load`] reads it once from the database. Whether a host
//! is online is not kept here; that is who has a stream open
//! (`connected::Connected`).
//!
//! A `std::sync::RwLock` over a `BTreeMap` (sorted by host id, as the API
//! lists hosts): readers clone the `Arc`s they need and let go at once, and
//! no lock is ever held across an await.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::samples::groups_of;
use super::{CurrentSample, GroupRecord, HostRecord, Result, SampleStore};
use crate::model::{HostInfo, Sample, TimestampMs};

/// One host's latest state; cheap to clone (two `Arc`s and two numbers).
#[derive(Debug, Clone)]
pub struct HostState {
    pub info: Arc<HostInfo>,
    pub first_seen_ms: TimestampMs,
    pub last_seen_ms: TimestampMs,
    /// The newest committed sample; `None` before the first one (or once
    /// retention has pruned it).
    pub newest: Option<Arc<Sample>>,
}

impl HostState {
    /// The host as the API lists it.
    pub fn record(&self) -> HostRecord {
        HostRecord {
            info: (*self.info).clone(),
            first_seen_ms: self.first_seen_ms,
            last_seen_ms: self.last_seen_ms,
        }
    }

    /// The newest sample's values, as `/api/metrics/current` shows them.
    pub fn current(&self) -> Option<CurrentSample> {
        let sample = self.newest.as_ref()?;
        let mut system = sample.system.clone();
        // As stored: one filesystem per mount point (the first reported),
        // in mount point order.
        system
            .filesystems
            .sort_by(|a, b| a.mount_point.cmp(&b.mount_point));
        system
            .filesystems
            .dedup_by(|a, b| a.mount_point == b.mount_point);
        Some(CurrentSample {
            host_id: self.info.host_id.clone(),
            timestamp_ms: sample.timestamp_ms,
            memory_percent: system.memory_percent(),
            swap_percent: system.swap_percent(),
            system,
        })
    }

    /// The newest sample's worker groups with their workers, by group name,
    /// workers by pid; `None` before the first sample.
    pub fn groups(&self) -> Option<(TimestampMs, Vec<GroupRecord>)> {
        let sample = self.newest.as_ref()?;
        Some((sample.timestamp_ms, groups_of(sample)))
    }
}

/// The latest state of every host; cheap to clone (an `Arc` inside).
#[derive(Debug, Clone, Default)]
pub struct Latest {
    hosts: Arc<RwLock<BTreeMap<String, HostState>>>,
}

impl Latest {
    /// Reads every host and its newest sample from the database: a query
    /// per host, once, at start-up.
    pub async fn load(store: &dyn SampleStore) -> Result<Self> {
        let mut newest: BTreeMap<String, CurrentSample> = store
            .current(None)
            .await?
            .into_iter()
            .map(|c| (c.host_id.clone(), c))
            .collect();
        let mut hosts = BTreeMap::new();
        for record in store.hosts().await? {
            let host_id = record.info.host_id.clone();
            let sample = match newest.remove(&host_id) {
                Some(current) => {
                    let groups = store
                        .worker_groups(&host_id)
                        .await?
                        .filter(|(ts, _)| *ts == current.timestamp_ms)
                        .map(|(_, groups)| groups)
                        .unwrap_or_default();
                    Some(Arc::new(Sample {
                        timestamp_ms: current.timestamp_ms,
                        system: current.system,
                        workers: groups.iter().flat_map(|g| g.workers.clone()).collect(),
                        groups: groups.into_iter().map(|g| g.status).collect(),
                    }))
                }
                None => None,
            };
            hosts.insert(
                host_id,
                HostState {
                    info: Arc::new(record.info),
                    first_seen_ms: record.first_seen_ms,
                    last_seen_ms: record.last_seen_ms,
                    newest: sample,
                },
            );
        }
        tracing::info!(hosts = hosts.len(), "latest host state loaded");
        Ok(Self {
            hosts: Arc::new(RwLock::new(hosts)),
        })
    }

    // A panic while holding the lock leaves the map as consistent as any
    // single update (each is one insert or field write); keep serving.
    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<String, HostState>> {
        self.hosts.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<String, HostState>> {
        self.hosts.write().unwrap_or_else(|e| e.into_inner())
    }

    /// An agent introduced its host (as `SqliteStore::upsert_host` records
    /// it): the new info replaces the old, the first-seen time stays.
    pub fn hello(&self, info: Arc<HostInfo>, now_ms: TimestampMs) {
        let mut hosts = self.write();
        match hosts.get_mut(&info.host_id) {
            Some(host) => {
                host.info = info;
                host.last_seen_ms = host.last_seen_ms.max(now_ms);
            }
            None => {
                hosts.insert(
                    info.host_id.clone(),
                    HostState {
                        info,
                        first_seen_ms: now_ms,
                        last_seen_ms: now_ms,
                        newest: None,
                    },
                );
            }
        }
    }

    /// A sample of `host_id` was committed. It becomes the host's newest
    /// unless a newer one is already there. A host that never said hello
    /// is ignored (the database has no row to update either).
    pub fn committed(&self, host_id: &str, sample: Arc<Sample>) {
        let mut hosts = self.write();
        let Some(host) = hosts.get_mut(host_id) else {
            return;
        };
        host.last_seen_ms = host.last_seen_ms.max(sample.timestamp_ms);
        let newer = host
            .newest
            .as_ref()
            .is_none_or(|n| n.timestamp_ms < sample.timestamp_ms);
        if newer {
            host.newest = Some(sample);
        }
    }

    /// Drops newest samples taken before `before_ms`, as retention deletes
    /// them from the database; the hosts stay, as their rows do.
    pub fn prune(&self, before_ms: TimestampMs) {
        for host in self.write().values_mut() {
            if host
                .newest
                .as_ref()
                .is_some_and(|n| n.timestamp_ms < before_ms)
            {
                host.newest = None;
            }
        }
    }

    /// One host's state.
    pub fn host(&self, host_id: &str) -> Option<HostState> {
        self.read().get(host_id).cloned()
    }

    pub fn contains(&self, host_id: &str) -> bool {
        self.read().contains_key(host_id)
    }

    /// Every host, by host id.
    pub fn hosts(&self) -> Vec<HostState> {
        self.read().values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::model::{Filesystem, GroupStatus, SystemMetrics, Worker, WorkerGroup};
    use crate::store::{HostBatch, SqliteStore};

    fn info(host_id: &str, hostname: &str) -> Arc<HostInfo> {
        Arc::new(HostInfo {
            host_id: host_id.into(),
            hostname: hostname.into(),
            os: "Linux".into(),
            kernel: "6".into(),
            cpu_count: 2,
            memory_total_bytes: 1000,
            agent_version: "0".into(),
            interval_ms: 1000,
            worker_groups: vec![WorkerGroup {
                name: "api".into(),
                min_alive: 1,
            }],
        })
    }

    fn worker(group: &str, pid: u32) -> Worker {
        Worker {
            group: group.into(),
            pid,
            name: format!("w{pid}"),
            cmdline: format!("/usr/bin/w --id {pid}"),
            state: "sleeping".into(),
            cpu_percent: 1.5,
            rss_bytes: 4096,
            threads: 2,
            start_time_secs: 100,
        }
    }

    fn group(name: &str, alive: u32) -> GroupStatus {
        GroupStatus {
            name: name.into(),
            min_alive: 1,
            alive,
            restarts: 0,
        }
    }

    fn fs(mount: &str, available: u64) -> Filesystem {
        Filesystem {
            mount_point: mount.into(),
            fs_type: "ext4".into(),
            device: format!("/dev/{}", mount.len()),
            total_bytes: 100,
            available_bytes: available,
            used_bytes: 100 - available,
        }
    }

    fn sample(ts: TimestampMs, cpu: f64) -> Sample {
        Sample {
            timestamp_ms: ts,
            system: SystemMetrics {
                cpu_percent: cpu,
                cpu_per_core: vec![cpu, cpu],
                cpu_iowait_percent: 0.0,
                cpu_steal_percent: 0.0,
                interfaces: Vec::new(),
                load1: 0.5,
                load5: 0.4,
                load15: 0.3,
                memory_total_bytes: 1000,
                memory_used_bytes: 250,
                memory_available_bytes: 750,
                swap_total_bytes: 200,
                swap_used_bytes: 50,
                // Out of order, and "/" twice: stored once, the first wins.
                filesystems: vec![fs("/var", 10), fs("/", 40), fs("/", 90)],
                disk_read_bytes_per_sec: 1.0,
                disk_write_bytes_per_sec: 2.0,
                net_rx_bytes_per_sec: 3.0,
                net_tx_bytes_per_sec: 4.0,
                uptime_secs: 100,
                process_count: 10,
            },
            // Out of order; pid 9 in two groups; a worker of a group not reported.
            workers: vec![
                worker("web", 12),
                worker("api", 9),
                worker("api", 3),
                worker("web", 9),
                worker("gone", 20),
            ],
            groups: vec![group("web", 1), group("api", 2)],
        }
    }

    fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
        serde_json::to_value(value).unwrap()
    }

    #[test]
    fn the_newest_sample_wins_and_a_backfilled_one_does_not_replace_it() {
        let latest = Latest::default();
        latest.committed("web-1", Arc::new(sample(1_000, 10.0)));
        assert!(latest.is_empty(), "no hello, no host");
        latest.hello(info("web-1", "web"), 500);
        latest.committed("web-1", Arc::new(sample(3_000, 30.0)));
        latest.committed("web-1", Arc::new(sample(2_000, 20.0)));
        let host = latest.host("web-1").unwrap();
        let newest = host.newest.as_ref().unwrap();
        assert_eq!(
            (newest.timestamp_ms, newest.system.cpu_percent),
            (3_000, 30.0)
        );
        assert_eq!((host.first_seen_ms, host.last_seen_ms), (500, 3_000));

        // A second hello replaces the info, keeps first seen and the sample.
        latest.hello(info("web-1", "web-renamed"), 4_000);
        let host = latest.host("web-1").unwrap();
        assert_eq!(host.info.hostname, "web-renamed");
        assert_eq!((host.first_seen_ms, host.last_seen_ms), (500, 4_000));
        assert_eq!(host.newest.unwrap().timestamp_ms, 3_000);

        latest.prune(3_001);
        assert!(latest.host("web-1").unwrap().newest.is_none());
        assert_eq!(latest.len(), 1, "pruning keeps the host");
    }

    #[test]
    fn hosts_are_listed_by_id() {
        let latest = Latest::default();
        for id in ["c", "a", "b"] {
            latest.hello(info(id, id), 1);
        }
        let ids: Vec<String> = latest
            .hosts()
            .iter()
            .map(|h| h.info.host_id.clone())
            .collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert!(latest.contains("b") && !latest.contains("d"));
    }

    /// What memory answers equals what the store answers for the same
    /// writes, field for field, duplicates and ordering included.
    #[tokio::test]
    async fn answers_like_the_store_and_loads_from_it() {
        let store = SqliteStore::in_memory().await.unwrap();
        let latest = Latest::default();
        let web = info("web-1", "web");
        store.upsert_host(&web, 500).await.unwrap();
        latest.hello(web.clone(), 500);
        store.upsert_host(&info("idle", "idle"), 600).await.unwrap();
        latest.hello(info("idle", "idle"), 600);
        for (ts, cpu) in [(2_000, 20.0), (1_000, 10.0)] {
            let s = sample(ts, cpu);
            store
                .write_batches(&[HostBatch {
                    host_id: "web-1".into(),
                    samples: vec![s.clone()],
                }])
                .await
                .unwrap();
            latest.committed("web-1", Arc::new(s));
        }
        let loaded = Latest::load(&store).await.unwrap();
        for memory in [&latest, &loaded] {
            let records: Vec<HostRecord> = memory.hosts().iter().map(HostState::record).collect();
            assert_eq!(json(&records), json(&store.hosts().await.unwrap()));
            let current: Vec<CurrentSample> = memory
                .hosts()
                .iter()
                .filter_map(HostState::current)
                .collect();
            assert_eq!(json(&current), json(&store.current(None).await.unwrap()));
            for id in ["web-1", "idle"] {
                let groups = memory.host(id).unwrap().groups();
                assert_eq!(
                    json(&groups),
                    json(&store.worker_groups(id).await.unwrap()),
                    "{id}"
                );
            }
        }
        let (_, groups) = latest.host("web-1").unwrap().groups().unwrap();
        let pids: Vec<Vec<u32>> = groups
            .iter()
            .map(|g| g.workers.iter().map(|w| w.pid).collect())
            .collect();
        assert_eq!(pids, [vec![3, 9], vec![9, 12]], "api then web, by pid");
    }
}
