//! How a sample becomes a list of integers and back.
//!
//! Every value of a sample has a [`Key`]: the entity it belongs to (`sid`
//! 0 is the host itself; filesystems, worker groups, worker processes and
//! process states are entities of the host's [`Dictionary`], stored once
//! and referenced by number) and a field number. Values are quantised to
//! integers so that columns delta-encode well and rollup sums are exact:
//! percentages and load averages to 0.01, rates to 1 B/s, bytes and counts
//! exactly. Derived values (memory %, filesystem use %) are not stored raw;
//! [`with_derived`] adds them for rollups and history.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::model::{
    Filesystem, GroupStatus, NetInterface, Sample, SystemMetrics, TimestampMs, Worker, percent,
};

/// Where a value belongs: an entity of the host and one of its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub sid: u32,
    pub field: u16,
}

impl Key {
    pub const fn host(field: u16) -> Self {
        Self { sid: 0, field }
    }
}

/// Field numbers. Each kind of entity has its own range, so a key says
/// what it is without a dictionary look-up.
pub mod field {
    pub const CPU: u16 = 0;
    pub const LOAD1: u16 = 1;
    pub const LOAD5: u16 = 2;
    pub const LOAD15: u16 = 3;
    pub const MEM_TOTAL: u16 = 4;
    pub const MEM_USED: u16 = 5;
    pub const MEM_AVAILABLE: u16 = 6;
    pub const SWAP_TOTAL: u16 = 7;
    pub const SWAP_USED: u16 = 8;
    pub const DISK_READ: u16 = 9;
    pub const DISK_WRITE: u16 = 10;
    pub const NET_RX: u16 = 11;
    pub const NET_TX: u16 = 12;
    pub const UPTIME: u16 = 13;
    pub const PROCESSES: u16 = 14;
    /// Derived: memory used / total.
    pub const MEM_PERCENT: u16 = 15;
    /// Derived: swap used / total.
    pub const SWAP_PERCENT: u16 = 16;
    /// Derived: the fullest filesystem's use %.
    pub const DISK_MAX_PERCENT: u16 = 17;
    pub const CPU_IOWAIT: u16 = 18;
    pub const CPU_STEAL: u16 = 19;
    /// Core `n` is `CORE + n`.
    pub const CORE: u16 = 1000;
    pub const MAX_CORES: u16 = 999;

    pub const FS_TOTAL: u16 = 2000;
    pub const FS_AVAILABLE: u16 = 2001;
    /// Derived: df's used / (used + available).
    pub const FS_USED_PERCENT: u16 = 2002;
    /// df's used (total − free); absent in samples of agents before it.
    pub const FS_USED: u16 = 2003;

    pub const GROUP_MIN_ALIVE: u16 = 2100;
    pub const GROUP_ALIVE: u16 = 2101;
    pub const GROUP_RESTARTS: u16 = 2102;

    pub const WORKER_CPU: u16 = 2200;
    pub const WORKER_RSS: u16 = 2201;
    pub const WORKER_THREADS: u16 = 2202;
    /// The sid of the worker's `State` entity.
    pub const WORKER_STATE: u16 = 2203;
    /// The sid of the `Text` entity of the worker's command line (which a
    /// process may change: sidekiq shows how busy it is there).
    pub const WORKER_CMDLINE: u16 = 2204;

    /// One interface's receive and send rates.
    pub const IF_RX: u16 = 2300;
    pub const IF_TX: u16 = 2301;
}

/// Values scaled by 100 (0.01 resolution).
fn centi(field: u16) -> bool {
    use field::*;
    matches!(
        field,
        CPU | CPU_IOWAIT
            | CPU_STEAL
            | LOAD1
            | LOAD5
            | LOAD15
            | MEM_PERCENT
            | SWAP_PERCENT
            | DISK_MAX_PERCENT
            | FS_USED_PERCENT
            | WORKER_CPU
    ) || (CORE..CORE + MAX_CORES).contains(&field)
}

/// Whether a field is computed from others rather than stored raw.
pub fn derived(field: u16) -> bool {
    use field::*;
    matches!(
        field,
        MEM_PERCENT | SWAP_PERCENT | DISK_MAX_PERCENT | FS_USED_PERCENT
    )
}

/// Whether a field is kept in the rollup tiers (what history serves).
pub fn rolled(field: u16) -> bool {
    use field::*;
    field <= CPU_STEAL && field != UPTIME
        || (CORE..CORE + MAX_CORES).contains(&field)
        || matches!(
            field,
            FS_USED_PERCENT | GROUP_ALIVE | WORKER_CPU | WORKER_RSS | IF_RX | IF_TX
        )
}

/// The stored integer of a value.
pub fn quantise(field: u16, v: f64) -> i64 {
    if centi(field) {
        (v * 100.0).round() as i64
    } else {
        v.round() as i64
    }
}

/// The value of a stored integer.
pub fn value(field: u16, q: f64) -> f64 {
    if centi(field) { q / 100.0 } else { q }
}

fn bytes(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn unsigned(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// What a host's sample refers to by number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entity {
    Filesystem {
        mount: String,
        fs_type: String,
        device: String,
    },
    Group {
        name: String,
    },
    Worker {
        group: String,
        pid: u32,
        name: String,
        start: i64,
    },
    State {
        name: String,
    },
    /// A command line.
    Text {
        text: String,
    },
    /// A network interface.
    Interface {
        name: String,
    },
}

/// One host's entities, by number (from 1) and by identity.
#[derive(Debug, Default, Clone)]
pub struct Dictionary {
    entities: Vec<Entity>,
    filesystems: HashMap<String, Vec<u32>>,
    groups: HashMap<String, u32>,
    states: HashMap<String, u32>,
    texts: HashMap<String, u32>,
    interfaces: HashMap<String, u32>,
    workers: HashMap<(u32, i64), Vec<u32>>,
}

impl Dictionary {
    pub fn get(&self, sid: u32) -> Option<&Entity> {
        self.entities
            .get(usize::try_from(sid).ok()?.checked_sub(1)?)
    }

    pub fn len(&self) -> usize {
        self.entities.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    /// Every entity with its number.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Entity)> {
        self.entities
            .iter()
            .enumerate()
            .map(|(i, e)| (u32::try_from(i + 1).unwrap_or(u32::MAX), e))
    }

    /// Adds an entity read back from the database under its number. The
    /// numbers of one host are dense from 1, so it must be the next one.
    pub fn restore(&mut self, sid: u32, entity: Entity) -> Result<(), String> {
        if usize::try_from(sid).ok() != Some(self.entities.len() + 1) {
            return Err(format!(
                "entity {sid} out of order (expected {})",
                self.entities.len() + 1
            ));
        }
        self.index(sid, &entity);
        self.entities.push(entity);
        Ok(())
    }

    fn index(&mut self, sid: u32, entity: &Entity) {
        match entity {
            Entity::Filesystem { mount, .. } => {
                self.filesystems.entry(mount.clone()).or_default().push(sid)
            }
            Entity::Group { name } => {
                self.groups.insert(name.clone(), sid);
            }
            Entity::State { name } => {
                self.states.insert(name.clone(), sid);
            }
            Entity::Text { text } => {
                self.texts.insert(text.clone(), sid);
            }
            Entity::Interface { name } => {
                self.interfaces.insert(name.clone(), sid);
            }
            Entity::Worker { pid, start, .. } => {
                self.workers.entry((*pid, *start)).or_default().push(sid)
            }
        }
    }

    fn add(&mut self, entity: Entity, new: &mut Vec<(u32, Entity)>) -> u32 {
        let sid = u32::try_from(self.entities.len() + 1).unwrap_or(u32::MAX);
        self.index(sid, &entity);
        new.push((sid, entity.clone()));
        self.entities.push(entity);
        sid
    }

    fn filesystem(&mut self, fs: &Filesystem, new: &mut Vec<(u32, Entity)>) -> u32 {
        if let Some(sids) = self.filesystems.get(fs.mount_point.as_str()) {
            for sid in sids {
                if let Some(Entity::Filesystem {
                    fs_type, device, ..
                }) = self.get(*sid)
                    && *fs_type == fs.fs_type
                    && *device == fs.device
                {
                    return *sid;
                }
            }
        }
        self.add(
            Entity::Filesystem {
                mount: fs.mount_point.clone(),
                fs_type: fs.fs_type.clone(),
                device: fs.device.clone(),
            },
            new,
        )
    }

    fn group(&mut self, name: &str, new: &mut Vec<(u32, Entity)>) -> u32 {
        match self.groups.get(name) {
            Some(sid) => *sid,
            None => self.add(
                Entity::Group {
                    name: name.to_owned(),
                },
                new,
            ),
        }
    }

    fn state(&mut self, name: &str, new: &mut Vec<(u32, Entity)>) -> u32 {
        match self.states.get(name) {
            Some(sid) => *sid,
            None => self.add(
                Entity::State {
                    name: name.to_owned(),
                },
                new,
            ),
        }
    }

    fn interface(&mut self, name: &str, new: &mut Vec<(u32, Entity)>) -> u32 {
        match self.interfaces.get(name) {
            Some(sid) => *sid,
            None => self.add(
                Entity::Interface {
                    name: name.to_owned(),
                },
                new,
            ),
        }
    }

    /// The number of the interface called `name`.
    pub fn interface_sid(&self, name: &str) -> Option<u32> {
        self.interfaces.get(name).copied()
    }

    fn text(&mut self, text: &str, new: &mut Vec<(u32, Entity)>) -> u32 {
        match self.texts.get(text) {
            Some(sid) => *sid,
            None => self.add(
                Entity::Text {
                    text: text.to_owned(),
                },
                new,
            ),
        }
    }

    fn worker(&mut self, w: &Worker, new: &mut Vec<(u32, Entity)>) -> u32 {
        if let Some(sids) = self.workers.get(&(w.pid, w.start_time_secs)) {
            for sid in sids {
                if let Some(Entity::Worker { group, name, .. }) = self.get(*sid)
                    && *group == w.group
                    && *name == w.name
                {
                    return *sid;
                }
            }
        }
        self.add(
            Entity::Worker {
                group: w.group.clone(),
                pid: w.pid,
                name: w.name.clone(),
                start: w.start_time_secs,
            },
            new,
        )
    }

    /// Numbers of the filesystems mounted at `mount`.
    pub fn filesystems_at(&self, mount: &str) -> Vec<u32> {
        self.filesystems.get(mount).cloned().unwrap_or_default()
    }

    pub fn group_sid(&self, name: &str) -> Option<u32> {
        self.groups.get(name).copied()
    }

    /// Numbers of the worker processes with this pid (one per life).
    pub fn workers_with_pid(&self, pid: u32) -> Vec<u32> {
        self.iter()
            .filter(|(_, e)| matches!(e, Entity::Worker { pid: p, .. } if *p == pid))
            .map(|(sid, _)| sid)
            .collect()
    }
}

/// A sample's stored values, sorted by key, without derived ones.
pub type Values = Vec<(Key, i64)>;

/// The stored values of a sample; entities it names for the first time
/// are added to `dict` and to `new`.
pub fn flatten(sample: &Sample, dict: &mut Dictionary, new: &mut Vec<(u32, Entity)>) -> Values {
    use field::*;
    let s = &sample.system;
    let mut out = Vec::with_capacity(
        20 + s.cpu_per_core.len() + 2 * s.filesystems.len() + 4 * sample.workers.len(),
    );
    let mut host = |f: u16, v: i64| out.push((Key::host(f), v));
    host(CPU, quantise(CPU, s.cpu_percent));
    host(LOAD1, quantise(LOAD1, s.load1));
    host(LOAD5, quantise(LOAD5, s.load5));
    host(LOAD15, quantise(LOAD15, s.load15));
    host(MEM_TOTAL, bytes(s.memory_total_bytes));
    host(MEM_USED, bytes(s.memory_used_bytes));
    host(MEM_AVAILABLE, bytes(s.memory_available_bytes));
    host(SWAP_TOTAL, bytes(s.swap_total_bytes));
    host(SWAP_USED, bytes(s.swap_used_bytes));
    host(DISK_READ, quantise(DISK_READ, s.disk_read_bytes_per_sec));
    host(DISK_WRITE, quantise(DISK_WRITE, s.disk_write_bytes_per_sec));
    host(NET_RX, quantise(NET_RX, s.net_rx_bytes_per_sec));
    host(NET_TX, quantise(NET_TX, s.net_tx_bytes_per_sec));
    host(UPTIME, bytes(s.uptime_secs));
    host(PROCESSES, i64::from(s.process_count));
    host(CPU_IOWAIT, quantise(CPU_IOWAIT, s.cpu_iowait_percent));
    host(CPU_STEAL, quantise(CPU_STEAL, s.cpu_steal_percent));
    for (n, core) in s.cpu_per_core.iter().enumerate().take(MAX_CORES.into()) {
        let f = CORE + u16::try_from(n).unwrap_or(MAX_CORES);
        host(f, quantise(f, *core));
    }
    for fs in &s.filesystems {
        let sid = dict.filesystem(fs, new);
        out.push((
            Key {
                sid,
                field: FS_TOTAL,
            },
            bytes(fs.total_bytes),
        ));
        out.push((
            Key {
                sid,
                field: FS_AVAILABLE,
            },
            bytes(fs.available_bytes),
        ));
        out.push((
            Key {
                sid,
                field: FS_USED,
            },
            bytes(fs.used_bytes),
        ));
    }
    for net in &s.interfaces {
        let sid = dict.interface(&net.name, new);
        out.push((
            Key { sid, field: IF_RX },
            quantise(IF_RX, net.rx_bytes_per_sec),
        ));
        out.push((
            Key { sid, field: IF_TX },
            quantise(IF_TX, net.tx_bytes_per_sec),
        ));
    }
    for g in &sample.groups {
        let sid = dict.group(&g.name, new);
        out.push((
            Key {
                sid,
                field: GROUP_MIN_ALIVE,
            },
            i64::from(g.min_alive),
        ));
        out.push((
            Key {
                sid,
                field: GROUP_ALIVE,
            },
            i64::from(g.alive),
        ));
        out.push((
            Key {
                sid,
                field: GROUP_RESTARTS,
            },
            bytes(g.restarts),
        ));
    }
    for w in &sample.workers {
        let state = dict.state(&w.state, new);
        let cmdline = dict.text(&w.cmdline, new);
        let sid = dict.worker(w, new);
        out.push((
            Key {
                sid,
                field: WORKER_CPU,
            },
            quantise(WORKER_CPU, w.cpu_percent),
        ));
        out.push((
            Key {
                sid,
                field: WORKER_RSS,
            },
            bytes(w.rss_bytes),
        ));
        out.push((
            Key {
                sid,
                field: WORKER_THREADS,
            },
            i64::from(w.threads),
        ));
        out.push((
            Key {
                sid,
                field: WORKER_STATE,
            },
            i64::from(state),
        ));
        out.push((
            Key {
                sid,
                field: WORKER_CMDLINE,
            },
            i64::from(cmdline),
        ));
    }
    out.sort_unstable_by_key(|(k, _)| *k);
    // A sample naming the same pid twice keeps the first.
    out.dedup_by_key(|(k, _)| *k);
    out
}

/// The values plus the derived ones, sorted by key.
pub fn with_derived(values: &[(Key, i64)]) -> Values {
    use field::*;
    let get = |f: u16| {
        values
            .binary_search_by_key(&Key::host(f), |(k, _)| *k)
            .map_or(0, |i| values[i].1)
    };
    let pct = |part: i64, whole: i64| quantise(CPU, percent(unsigned(part), unsigned(whole)));
    let mut out: Values = values.to_vec();
    out.push((Key::host(MEM_PERCENT), pct(get(MEM_USED), get(MEM_TOTAL))));
    out.push((
        Key::host(SWAP_PERCENT),
        pct(get(SWAP_USED), get(SWAP_TOTAL)),
    ));
    let mut fullest = 0;
    let mut i = 0;
    while i < values.len() {
        let sid = values[i].0.sid;
        let mut end = i;
        while end < values.len() && values[end].0.sid == sid {
            end += 1;
        }
        let of = |f: u16| {
            values[i..end]
                .iter()
                .find(|(k, _)| k.field == f)
                .map(|(_, v)| unsigned(*v))
        };
        if sid != 0
            && let (Some(total), Some(available)) = (of(FS_TOTAL), of(FS_AVAILABLE))
        {
            let used = of(FS_USED).unwrap_or_else(|| total.saturating_sub(available));
            let pct = quantise(
                FS_USED_PERCENT,
                percent(used, used.saturating_add(available)),
            );
            fullest = fullest.max(pct);
            out.push((
                Key {
                    sid,
                    field: FS_USED_PERCENT,
                },
                pct,
            ));
        }
        i = end;
    }
    out.push((Key::host(DISK_MAX_PERCENT), fullest));
    out.sort_unstable_by_key(|(k, _)| *k);
    out
}

/// The sample the stored values describe. Filesystems come sorted by
/// mount point, groups by name, workers by group and pid.
pub fn rebuild(timestamp_ms: TimestampMs, values: &[(Key, i64)], dict: &Dictionary) -> Sample {
    use field::*;
    let get = |f: u16| {
        values
            .binary_search_by_key(&Key::host(f), |(k, _)| *k)
            .map_or(0, |i| values[i].1)
    };
    let f64_of = |f: u16| value(f, get(f) as f64);
    let mut cores = Vec::new();
    let mut filesystems: Vec<Filesystem> = Vec::new();
    let mut groups: Vec<GroupStatus> = Vec::new();
    let mut workers: Vec<Worker> = Vec::new();
    let mut interfaces: Vec<NetInterface> = Vec::new();
    let mut i = 0;
    while i < values.len() {
        let (key, v) = values[i];
        // All the fields of one entity are adjacent (sorted by sid, then field).
        let mut end = i;
        while end < values.len() && values[end].0.sid == key.sid {
            end += 1;
        }
        let fields = &values[i..end];
        let of = |f: u16| fields.iter().find(|(k, _)| k.field == f).map(|(_, v)| *v);
        if key.sid == 0 {
            for (k, v) in fields {
                if (CORE..CORE + MAX_CORES).contains(&k.field) {
                    let n = usize::from(k.field - CORE);
                    if cores.len() <= n {
                        cores.resize(n + 1, 0.0);
                    }
                    cores[n] = value(k.field, *v as f64);
                }
            }
        } else {
            match dict.get(key.sid) {
                Some(Entity::Filesystem {
                    mount,
                    fs_type,
                    device,
                }) => filesystems.push(Filesystem {
                    mount_point: mount.clone(),
                    fs_type: fs_type.clone(),
                    device: device.clone(),
                    total_bytes: unsigned(of(FS_TOTAL).unwrap_or(0)),
                    available_bytes: unsigned(of(FS_AVAILABLE).unwrap_or(0)),
                    used_bytes: unsigned(of(FS_USED).unwrap_or_else(|| {
                        of(FS_TOTAL).unwrap_or(0) - of(FS_AVAILABLE).unwrap_or(0)
                    })),
                }),
                Some(Entity::Interface { name }) => interfaces.push(NetInterface {
                    name: name.clone(),
                    rx_bytes_per_sec: value(IF_RX, of(IF_RX).unwrap_or(0) as f64),
                    tx_bytes_per_sec: value(IF_TX, of(IF_TX).unwrap_or(0) as f64),
                }),
                Some(Entity::Group { name }) => groups.push(GroupStatus {
                    name: name.clone(),
                    min_alive: u32::try_from(of(GROUP_MIN_ALIVE).unwrap_or(0)).unwrap_or(0),
                    alive: u32::try_from(of(GROUP_ALIVE).unwrap_or(0)).unwrap_or(0),
                    restarts: unsigned(of(GROUP_RESTARTS).unwrap_or(0)),
                }),
                Some(Entity::Worker {
                    group,
                    pid,
                    name,
                    start,
                }) => {
                    let entity = |f: u16| {
                        of(f)
                            .and_then(|s| u32::try_from(s).ok())
                            .and_then(|s| dict.get(s))
                    };
                    let state = entity(WORKER_STATE);
                    let cmdline = match entity(WORKER_CMDLINE) {
                        Some(Entity::Text { text }) => text.clone(),
                        _ => String::new(),
                    };
                    workers.push(Worker {
                        group: group.clone(),
                        pid: *pid,
                        name: name.clone(),
                        cmdline,
                        state: match state {
                            Some(Entity::State { name }) => name.clone(),
                            _ => String::new(),
                        },
                        cpu_percent: value(WORKER_CPU, of(WORKER_CPU).unwrap_or(0) as f64),
                        rss_bytes: unsigned(of(WORKER_RSS).unwrap_or(0)),
                        threads: u32::try_from(of(WORKER_THREADS).unwrap_or(0)).unwrap_or(0),
                        start_time_secs: *start,
                    });
                }
                Some(Entity::State { .. } | Entity::Text { .. }) | None => {
                    tracing::debug!(sid = key.sid, v, "value of an unknown entity skipped");
                }
            }
        }
        i = end;
    }
    filesystems.sort_by(|a, b| a.mount_point.cmp(&b.mount_point));
    interfaces.sort_by(|a, b| a.name.cmp(&b.name));
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    workers.sort_by(|a, b| (&a.group, a.pid).cmp(&(&b.group, b.pid)));
    Sample {
        timestamp_ms,
        system: SystemMetrics {
            cpu_percent: f64_of(CPU),
            cpu_per_core: cores,
            cpu_iowait_percent: f64_of(CPU_IOWAIT),
            cpu_steal_percent: f64_of(CPU_STEAL),
            interfaces,
            load1: f64_of(LOAD1),
            load5: f64_of(LOAD5),
            load15: f64_of(LOAD15),
            memory_total_bytes: unsigned(get(MEM_TOTAL)),
            memory_used_bytes: unsigned(get(MEM_USED)),
            memory_available_bytes: unsigned(get(MEM_AVAILABLE)),
            swap_total_bytes: unsigned(get(SWAP_TOTAL)),
            swap_used_bytes: unsigned(get(SWAP_USED)),
            filesystems,
            disk_read_bytes_per_sec: f64_of(DISK_READ),
            disk_write_bytes_per_sec: f64_of(DISK_WRITE),
            net_rx_bytes_per_sec: f64_of(NET_RX),
            net_tx_bytes_per_sec: f64_of(NET_TX),
            uptime_secs: unsigned(get(UPTIME)),
            process_count: u32::try_from(get(PROCESSES)).unwrap_or(0),
        },
        workers,
        groups,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{GroupStatus, Worker};

    pub fn sample(ts: i64, cpu: f64) -> Sample {
        Sample {
            timestamp_ms: ts,
            system: SystemMetrics {
                cpu_percent: cpu,
                cpu_per_core: vec![cpu, 1.5],
                cpu_iowait_percent: 1.25,
                cpu_steal_percent: 0.5,
                interfaces: vec![NetInterface {
                    name: "eth0".to_owned(),
                    rx_bytes_per_sec: 1200.0,
                    tx_bytes_per_sec: 300.0,
                }],
                load1: 0.5,
                load5: 0.25,
                load15: 0.12,
                memory_total_bytes: 1000,
                memory_used_bytes: 250,
                memory_available_bytes: 750,
                swap_total_bytes: 0,
                swap_used_bytes: 0,
                filesystems: vec![
                    Filesystem {
                        mount_point: "/var".to_owned(),
                        fs_type: "xfs".to_owned(),
                        device: "/dev/sdb1".to_owned(),
                        total_bytes: 400,
                        available_bytes: 100,
                        used_bytes: 300,
                    },
                    Filesystem {
                        mount_point: "/".to_owned(),
                        fs_type: "ext4".to_owned(),
                        device: "/dev/sda1".to_owned(),
                        total_bytes: 10,
                        available_bytes: 1,
                        used_bytes: 8,
                    },
                ],
                disk_read_bytes_per_sec: 1.0e6,
                disk_write_bytes_per_sec: 2.0,
                net_rx_bytes_per_sec: 3.0,
                net_tx_bytes_per_sec: 4.0,
                uptime_secs: 99,
                process_count: 120,
            },
            workers: vec![
                Worker {
                    group: "q".to_owned(),
                    pid: 20,
                    name: "celery".to_owned(),
                    cmdline: "celery -A app worker".to_owned(),
                    state: "running".to_owned(),
                    cpu_percent: 12.5,
                    rss_bytes: 1 << 30,
                    threads: 4,
                    start_time_secs: 1_700_000_000,
                },
                Worker {
                    group: "q".to_owned(),
                    pid: 10,
                    name: "celery".to_owned(),
                    cmdline: "celery -A app worker".to_owned(),
                    state: "sleeping".to_owned(),
                    cpu_percent: 0.25,
                    rss_bytes: 4096,
                    threads: 1,
                    start_time_secs: 1_700_000_001,
                },
            ],
            groups: vec![GroupStatus {
                name: "q".to_owned(),
                min_alive: 2,
                alive: 2,
                restarts: 3,
            }],
        }
    }

    #[test]
    fn a_sample_survives_flatten_and_rebuild() {
        let mut dict = Dictionary::default();
        let mut new = Vec::new();
        let s = sample(5000, 42.25);
        let values = flatten(&s, &mut dict, &mut new);
        // 2 filesystems, 1 interface, 1 group, 2 states, 1 command line,
        // 2 workers: each stored once.
        assert_eq!(new.len(), 9);
        let back = rebuild(5000, &values, &dict);
        let mut expected = s.clone();
        expected
            .system
            .filesystems
            .sort_by(|a, b| a.mount_point.cmp(&b.mount_point));
        expected.workers.sort_by_key(|w| w.pid);
        assert_eq!(back, expected);
        // The same identities again add nothing.
        new.clear();
        let again = flatten(&s, &mut dict, &mut new);
        assert!(new.is_empty());
        assert_eq!(again, values);
        // A new pid is a new entity; a dictionary rebuilt from what was
        // stored resolves the same numbers.
        let mut restored = Dictionary::default();
        for (sid, e) in dict.iter() {
            restored.restore(sid, e.clone()).unwrap();
        }
        let mut moved = s.clone();
        moved.workers[0].pid = 21;
        // A new command line is a new text, not a new process.
        moved.workers[1].cmdline = "celery -A app worker [busy]".to_owned();
        let mut new_a = Vec::new();
        let mut new_b = Vec::new();
        assert_eq!(
            flatten(&moved, &mut dict, &mut new_a),
            flatten(&moved, &mut restored, &mut new_b)
        );
        assert_eq!(new_a, new_b);
        assert_eq!(new_a.len(), 2);
        assert!(
            restored
                .restore(99, Entity::State { name: "x".into() })
                .is_err()
        );
    }

    #[test]
    fn derived_values_are_what_the_api_shows() {
        let mut dict = Dictionary::default();
        let values = with_derived(&flatten(&sample(1, 1.0), &mut dict, &mut Vec::new()));
        let get = |k: Key| values.iter().find(|(kk, _)| *kk == k).map(|(_, v)| *v);
        assert_eq!(get(Key::host(field::MEM_PERCENT)), Some(2500));
        // df's use: "/" has 8 used, 1 available (1 reserved): 88.89 %.
        assert_eq!(get(Key::host(field::DISK_MAX_PERCENT)), Some(8889));
        let var = dict.filesystems_at("/var")[0];
        assert_eq!(
            get(Key {
                sid: var,
                field: field::FS_USED_PERCENT
            }),
            Some(7500)
        );
    }
}
