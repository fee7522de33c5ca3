//! The sample side of the store: hosts, their samples, history and
//! retention, as one trait every backend implements.

use async_trait::async_trait;
use serde::Serialize;

use super::Result;
use super::history_query::Metric;
use super::rollup::Tier;
use crate::model::{GroupStatus, HostInfo, Sample, SystemMetrics, TimestampMs, Worker};

/// One agent's batch, as handed to [`SampleStore::write_batches`].
#[derive(Debug, Clone)]
pub struct HostBatch {
    pub host_id: String,
    pub samples: Vec<Sample>,
}

/// A host as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HostRecord {
    #[serde(flatten)]
    pub info: HostInfo,
    pub first_seen_ms: TimestampMs,
    pub last_seen_ms: TimestampMs,
}

/// The newest sample of a host, as stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CurrentSample {
    pub host_id: String,
    pub timestamp_ms: TimestampMs,
    #[serde(flatten)]
    pub system: SystemMetrics,
    pub memory_percent: f64,
    pub swap_percent: f64,
}

impl CurrentSample {
    pub fn of(host_id: &str, sample: &Sample) -> Self {
        Self {
            host_id: host_id.to_owned(),
            timestamp_ms: sample.timestamp_ms,
            system: sample.system.clone(),
            memory_percent: sample.system.memory_percent(),
            swap_percent: sample.system.swap_percent(),
        }
    }
}

/// A worker group's state in a host's newest sample.
#[derive(Debug, Clone, Serialize)]
pub struct GroupRecord {
    #[serde(flatten)]
    pub status: GroupStatus,
    pub workers: Vec<Worker>,
}

/// A sample's groups as stored: one per name (the first reported wins),
/// sorted by name, each with its workers by pid (a process matched by two
/// groups is in both; reported twice in one group, the first wins), and
/// only workers of a group the sample reports.
pub fn groups_of(sample: &Sample) -> Vec<GroupRecord> {
    let mut statuses = sample.groups.clone();
    statuses.sort_by(|a, b| a.name.cmp(&b.name));
    statuses.dedup_by(|a, b| a.name == b.name);
    let mut workers = sample.workers.clone();
    workers.sort_by(|a, b| (a.pid, &a.group).cmp(&(b.pid, &b.group)));
    workers.dedup_by(|a, b| a.pid == b.pid && a.group == b.group);
    let mut out: Vec<GroupRecord> = statuses
        .into_iter()
        .map(|status| GroupRecord {
            status,
            workers: Vec::new(),
        })
        .collect();
    for worker in workers {
        if let Ok(i) = out.binary_search_by(|g| g.status.name.as_str().cmp(&worker.group)) {
            out[i].workers.push(worker);
        }
    }
    out
}

/// One time bucket of a history query.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Bucket {
    /// Start of the bucket, ms since the epoch.
    pub t: TimestampMs,
    pub avg: f64,
    pub min: f64,
    pub max: f64,
    /// Samples that fell in the bucket.
    pub count: i64,
}

/// What a history query asks for.
#[derive(Debug, Clone)]
pub struct HistoryQuery<'a> {
    pub host_id: &'a str,
    pub metric: &'a Metric,
    pub from_ms: TimestampMs,
    pub to_ms: TimestampMs,
    pub step_ms: i64,
    /// Serve from this tier instead of the one [`super::history_query::choose_tier`]
    /// picks. A rollup tier needs a step that is a multiple of its buckets.
    pub tier: Option<Tier>,
}

/// A history answer and the tier that served it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryAnswer {
    pub tier: Tier,
    pub buckets: Vec<Bucket>,
}

/// What one pass of retention deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub chunks: u64,
    pub minute_rows: u64,
    pub hour_rows: u64,
}

/// Hosts and samples.
#[async_trait]
pub trait SampleStore: Send + Sync {
    /// Records a host as it introduces itself; keeps its first-seen time.
    async fn upsert_host(&self, host: &HostInfo, now_ms: TimestampMs) -> Result<()>;

    /// Stores many agents' batches durably, in one transaction. Returns, per
    /// batch and sample, whether the sample was new: a sample whose (host,
    /// timestamp) is stored already is skipped, so a resent batch stores
    /// nothing twice.
    async fn write_batches(&self, batches: &[HostBatch]) -> Result<Vec<Vec<bool>>>;

    /// Background upkeep between writes: closes the chunks of hosts that
    /// went quiet and keeps the write-ahead log bounded.
    async fn maintain(&self, now_ms: TimestampMs) -> Result<()>;

    async fn hosts(&self) -> Result<Vec<HostRecord>>;

    async fn host(&self, host_id: &str) -> Result<Option<HostRecord>>;

    /// The newest sample of every host, or of one.
    async fn current(&self, host_id: Option<&str>) -> Result<Vec<CurrentSample>>;

    /// The worker groups of a host's newest sample, with their workers;
    /// `None` when the host has sent no sample yet.
    async fn worker_groups(&self, host_id: &str)
    -> Result<Option<(TimestampMs, Vec<GroupRecord>)>>;

    /// Buckets of `step_ms` (aligned to multiples of the step since the
    /// epoch) with avg, min and max of the metric over `[from, to)`, from
    /// the coarsest tier that gives the step.
    async fn history(&self, query: &HistoryQuery<'_>) -> Result<HistoryAnswer>;

    /// Deletes what each tier keeps no longer (see [`super::Retention`]).
    async fn prune(&self, now_ms: TimestampMs) -> Result<Pruned>;

    /// Whether the database takes a write now; `Err` says why not. A real
    /// (tiny, durable) write, and a failure while the last sample flush
    /// failed; answers are reused for a second, as anyone may ask.
    async fn probe_write(&self) -> std::result::Result<(), String>;
}
