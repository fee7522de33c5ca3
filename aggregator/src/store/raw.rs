//! The raw tier's write path, independent of the database: which samples
//! are new, which chunk each goes into, and what one flush must write.
//!
//! Each host has one *open chunk*: a window of `CHUNK_SAMPLES` intervals
//! (staggered per host by whole seconds, so that hosts do not all close
//! their chunks in the same flush). New samples join it in memory
//! and are made durable by the flush's *journal* row (one row per flush for
//! all hosts, not one per sample). When a sample falls past the window, or
//! the window has been quiet for a while, the chunk is *closed*: written as
//! compressed columns with its rollups, in the same transaction that
//! advances the host's journal mark. Journal rows no open chunk needs any
//! more are deleted. After a crash, the open chunks are rebuilt from the
//! journal rows past each host's mark.
//!
//! A sample at or before the newest one already in a closed chunk (a
//! backfill, a resent batch) is *late*: the caller looks up which of those
//! timestamps are stored, and the rest are written at once as a chunk of
//! their own.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::chunk::{self, Row};
use super::codec::{self, DecodeError, Reader};
use super::rollup::{self, Bucket, Tier};
use super::series::{Dictionary, Entity, flatten};
use crate::model::{Sample, TimestampMs};

/// Samples one chunk holds at the host's interval.
pub const CHUNK_SAMPLES: i64 = 120;
const MINUTE: i64 = 60_000;
/// A chunk spans at least a minute and at most an hour.
const MIN_SPAN: i64 = MINUTE;
const MAX_SPAN: i64 = 60 * MINUTE;
const JOURNAL_VERSION: u64 = 1;

/// Width of a host's chunk windows: `CHUNK_SAMPLES` intervals, in whole
/// minutes.
pub fn span_ms(interval_ms: u32) -> i64 {
    let span = i64::from(interval_ms.max(100)) * CHUNK_SAMPLES;
    (span.clamp(MIN_SPAN, MAX_SPAN) / MINUTE) * MINUTE
}

/// Start of the window of a host (by its key `hk`) that holds `ts`. Each
/// host's windows are offset by a whole number of seconds of its own, so
/// that a fleet started together does not close all its chunks in the same
/// flush (a minute bucket then spans two chunks; its rollup row is merged,
/// exactly, when the second one closes).
pub fn window_start(hk: i64, span: i64, ts: TimestampMs) -> TimestampMs {
    let offset = (hk.wrapping_mul(7919) % (span / 1000)).abs() * 1000;
    (ts - offset).div_euclid(span) * span + offset
}

/// A chunk still taking samples, kept in memory.
#[derive(Debug, Clone)]
pub struct OpenChunk {
    pub start_ms: TimestampMs,
    pub end_ms: TimestampMs,
    pub rows: chunk::Builder,
    /// The oldest journal row holding samples of this chunk.
    pub first_journal: u64,
}

/// The raw tier's state of one host.
#[derive(Debug, Clone)]
pub struct HostRaw {
    pub hk: i64,
    pub interval_ms: u32,
    pub dict: Dictionary,
    pub open: Option<OpenChunk>,
    /// Newest timestamp in any written chunk.
    pub chunked_to_ms: Option<TimestampMs>,
    /// The newest sample stored, if any.
    pub newest: Option<Row>,
}

impl HostRaw {
    pub fn new(hk: i64, interval_ms: u32) -> Self {
        Self {
            hk,
            interval_ms,
            dict: Dictionary::default(),
            open: None,
            chunked_to_ms: None,
            newest: None,
        }
    }

    /// How long a quiet open chunk waits past its window before closing.
    fn grace_ms(&self) -> i64 {
        (3 * i64::from(self.interval_ms)).max(10_000)
    }
}

/// A chunk to write.
#[derive(Debug, Clone)]
pub struct ChunkRow {
    pub hk: i64,
    pub start_ms: TimestampMs,
    pub end_ms: TimestampMs,
    pub rows: Vec<Row>,
}

/// Everything one flush writes, in one transaction.
#[derive(Debug, Default)]
pub struct Plan {
    /// Entities named for the first time: (host key, number, entity).
    pub entities: Vec<(i64, u32, Entity)>,
    /// This flush's journal row: its id and bytes.
    pub journal: Option<(u64, Vec<u8>)>,
    pub chunks: Vec<ChunkRow>,
    /// Rollup partials to merge into what is stored.
    pub rollups: Vec<(Tier, i64, TimestampMs, Bucket)>,
    /// Hosts whose chunks advanced: (host key, journal mark, chunked-to).
    pub marks: Vec<(i64, u64, TimestampMs)>,
    /// Journal rows below this id are no longer needed.
    pub journal_keep_from: u64,
    /// Per batch and sample: whether it was new.
    pub stored: Vec<Vec<bool>>,
}

impl Plan {
    /// Whether the flush writes nothing at all.
    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
            && self.journal.is_none()
            && self.chunks.is_empty()
            && self.rollups.is_empty()
            && self.marks.is_empty()
    }
}

/// What the caller must look up before planning: per host key, the range
/// of late timestamps to check against the stored chunks.
pub type LateRanges = HashMap<i64, (TimestampMs, TimestampMs)>;

/// Timestamps already stored, per host key, within the late ranges.
pub type Stored = HashMap<i64, HashSet<TimestampMs>>;

#[derive(Debug, thiserror::Error)]
pub enum RawError {
    #[error("samples for host `{0}`, which has not said hello")]
    UnknownHost(String),
    #[error("journal row {id}: {source}")]
    Journal { id: u64, source: DecodeError },
}

/// The raw tier of every host.
#[derive(Debug, Default)]
pub struct Raw {
    pub hosts: HashMap<String, HostRaw>,
    /// Host id by host key.
    by_hk: HashMap<i64, String>,
    /// Id the next journal row gets.
    pub next_journal: u64,
}

impl Raw {
    pub fn new(next_journal: u64) -> Self {
        Self {
            hosts: HashMap::new(),
            by_hk: HashMap::new(),
            next_journal,
        }
    }

    /// Adds (or replaces) a host's state.
    pub fn insert_host(&mut self, host_id: String, host: HostRaw) {
        self.by_hk.insert(host.hk, host_id.clone());
        self.hosts.insert(host_id, host);
    }

    fn by_hk_mut(&mut self, hk: i64) -> Option<&mut HostRaw> {
        let id = self.by_hk.get(&hk)?;
        self.hosts.get_mut(id)
    }

    fn by_hk(&self, hk: i64) -> Option<&HostRaw> {
        self.hosts.get(self.by_hk.get(&hk)?)
    }

    /// The late ranges of these batches (see [`LateRanges`]).
    pub fn late_ranges(&self, batches: &[(&str, &[Sample])]) -> Result<LateRanges, RawError> {
        let mut out = LateRanges::new();
        for (host_id, samples) in batches {
            let host = self
                .hosts
                .get(*host_id)
                .ok_or_else(|| RawError::UnknownHost((*host_id).to_owned()))?;
            let Some(chunked_to) = host.chunked_to_ms else {
                continue;
            };
            for s in samples.iter().filter(|s| s.timestamp_ms <= chunked_to) {
                let ts = s.timestamp_ms;
                out.entry(host.hk)
                    .and_modify(|(lo, hi)| {
                        *lo = (*lo).min(ts);
                        *hi = (*hi).max(ts);
                    })
                    .or_insert((ts, ts));
            }
        }
        Ok(out)
    }

    /// Decides where every sample goes and what to write; updates the
    /// in-memory state as if the plan were committed (on failure the caller
    /// rebuilds it from the database). `stored` holds the timestamps of
    /// [`Self::late_ranges`] already in the database.
    pub fn plan(
        &mut self,
        batches: &[(&str, &[Sample])],
        stored: &Stored,
        now_ms: TimestampMs,
    ) -> Result<Plan, RawError> {
        let journal_id = self.next_journal;
        let mut plan = Plan::default();
        let mut journaled: BTreeMap<i64, Vec<Row>> = BTreeMap::new();
        let mut late: HashMap<i64, Vec<Row>> = HashMap::new();
        let mut late_seen: HashMap<i64, HashSet<TimestampMs>> = HashMap::new();
        let mut closed_hosts: HashSet<i64> = HashSet::new();
        for (host_id, samples) in batches {
            let host = self
                .hosts
                .get_mut(*host_id)
                .ok_or_else(|| RawError::UnknownHost((*host_id).to_owned()))?;
            let span = span_ms(host.interval_ms);
            let mut new_flags = Vec::with_capacity(samples.len());
            for sample in *samples {
                let ts = sample.timestamp_ms;
                let duplicate_open = host.open.as_ref().is_some_and(|o| o.rows.contains(ts));
                let is_late = host.chunked_to_ms.is_some_and(|c| ts <= c)
                    || host.open.as_ref().is_some_and(|o| ts < o.start_ms);
                if duplicate_open {
                    new_flags.push(false);
                    continue;
                }
                let mut new_entities = Vec::new();
                if is_late {
                    let known = stored.get(&host.hk).is_some_and(|s| s.contains(&ts))
                        || !late_seen.entry(host.hk).or_default().insert(ts);
                    if known {
                        new_flags.push(false);
                        continue;
                    }
                    let values = flatten(sample, &mut host.dict, &mut new_entities);
                    late.entry(host.hk).or_default().push(Row { ts, values });
                } else {
                    let values = flatten(sample, &mut host.dict, &mut new_entities);
                    let row = Row { ts, values };
                    // Past the open window: close it first.
                    if host.open.as_ref().is_some_and(|o| ts >= o.end_ms)
                        && let Some(open) = host.open.take()
                    {
                        close(host, open, &mut plan);
                        closed_hosts.insert(host.hk);
                        // What this flush journaled for the closed window
                        // went into its chunk.
                        journaled.remove(&host.hk);
                    }
                    let open = host.open.get_or_insert_with(|| {
                        let start = window_start(host.hk, span, ts);
                        OpenChunk {
                            start_ms: start,
                            end_ms: start + span,
                            rows: chunk::Builder::default(),
                            first_journal: journal_id,
                        }
                    });
                    if open.rows.is_empty() {
                        open.first_journal = journal_id;
                    }
                    open.rows.push(&row);
                    journaled.entry(host.hk).or_default().push(row.clone());
                    if host.newest.as_ref().is_none_or(|n| n.ts < ts) {
                        host.newest = Some(row);
                    }
                }
                plan.entities.extend(
                    new_entities
                        .into_iter()
                        .map(|(sid, entity)| (host.hk, sid, entity)),
                );
                new_flags.push(true);
            }
            plan.stored.push(new_flags);
        }
        // Late samples: one chunk per host, written now.
        for (hk, mut rows) in late {
            rows.sort_by_key(|r| r.ts);
            if let Some(host) = self.by_hk_mut(hk) {
                let last = rows.last().map_or(0, |r| r.ts);
                if host.newest.as_ref().is_none_or(|n| n.ts < last) {
                    host.newest = rows.last().cloned();
                }
            }
            push_chunk(&mut plan, hk, rows);
        }
        self.sweep_into(now_ms, &mut plan, &mut closed_hosts, &mut journaled);
        for hk in closed_hosts {
            if let Some(host) = self.by_hk(hk) {
                plan.marks.push((
                    hk,
                    journal_id.saturating_sub(1),
                    host.chunked_to_ms.unwrap_or(0),
                ));
            }
        }
        // The journal: what joined an open chunk and is still open.
        let mut entries: Vec<(i64, Vec<Row>)> = Vec::new();
        for (hk, rows) in journaled {
            if let Some(host) = self.by_hk(hk)
                && let Some(open) = &host.open
            {
                let rows: Vec<Row> = rows
                    .into_iter()
                    .filter(|r| r.ts >= open.start_ms && r.ts < open.end_ms)
                    .collect();
                if !rows.is_empty() {
                    entries.push((hk, rows));
                }
            }
        }
        if !entries.is_empty() {
            plan.journal = Some((journal_id, encode_journal(&entries)));
        }
        self.next_journal = journal_id + 1;
        plan.journal_keep_from = self
            .hosts
            .values()
            .filter_map(|h| h.open.as_ref().map(|o| o.first_journal))
            .min()
            .unwrap_or(self.next_journal);
        Ok(plan)
    }

    /// Closes the open chunks whose window ended more than a grace period
    /// ago: a host that went quiet still gets its samples chunked.
    fn sweep_into(
        &mut self,
        now_ms: TimestampMs,
        plan: &mut Plan,
        closed: &mut HashSet<i64>,
        journaled: &mut BTreeMap<i64, Vec<Row>>,
    ) {
        for host in self.hosts.values_mut() {
            let grace = host.grace_ms();
            if host
                .open
                .as_ref()
                .is_some_and(|o| o.end_ms + grace <= now_ms)
                && let Some(open) = host.open.take()
            {
                close(host, open, plan);
                closed.insert(host.hk);
                journaled.remove(&host.hk);
            }
        }
    }

    /// Puts journal rows read back after a restart into the open chunks.
    /// `marks` is each host's journal mark.
    pub fn replay(
        &mut self,
        id: u64,
        data: &[u8],
        marks: &HashMap<i64, u64>,
    ) -> Result<(), RawError> {
        let entries = decode_journal(data).map_err(|source| RawError::Journal { id, source })?;
        for (hk, rows) in entries {
            if marks.get(&hk).is_some_and(|m| id <= *m) {
                continue;
            }
            let Some(host) = self.by_hk_mut(hk) else {
                continue;
            };
            let span = span_ms(host.interval_ms);
            for row in rows {
                let open = host.open.get_or_insert_with(|| {
                    let start = window_start(hk, span, row.ts);
                    OpenChunk {
                        start_ms: start,
                        end_ms: start + span,
                        rows: chunk::Builder::default(),
                        first_journal: id,
                    }
                });
                if host.newest.as_ref().is_none_or(|n| n.ts < row.ts) {
                    host.newest = Some(row.clone());
                }
                if !open.rows.contains(row.ts) {
                    open.rows.push(&row);
                }
            }
        }
        self.next_journal = self.next_journal.max(id + 1);
        Ok(())
    }

    /// The host's open chunk rows in `[from, to)`.
    pub fn open_rows(&self, host_id: &str, from: TimestampMs, to: TimestampMs) -> Vec<Row> {
        self.hosts
            .get(host_id)
            .and_then(|h| h.open.as_ref())
            .map(|o| o.rows.rows_in(from, to))
            .unwrap_or_default()
    }
}

/// Writes a closed open chunk into the plan.
fn close(host: &mut HostRaw, open: OpenChunk, plan: &mut Plan) {
    let rows: Vec<Row> = open.rows.rows();
    if let Some(last) = rows.last() {
        host.chunked_to_ms = Some(host.chunked_to_ms.map_or(last.ts, |c| c.max(last.ts)));
    }
    push_chunk(plan, host.hk, rows);
}

/// Adds a chunk of sorted rows, with its rollup partials, to the plan.
pub fn push_chunk(plan: &mut Plan, hk: i64, rows: Vec<Row>) {
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return;
    };
    let (start_ms, end_ms) = (first.ts, last.ts);
    for tier in Tier::ROLLUPS {
        let mut buckets = BTreeMap::new();
        rollup::accumulate(&rows, tier, &mut buckets);
        plan.rollups.extend(
            buckets
                .into_iter()
                .map(|(bucket, aggs)| (tier, hk, bucket, aggs)),
        );
    }
    plan.chunks.push(ChunkRow {
        hk,
        start_ms,
        end_ms,
        rows,
    });
}

fn encode_journal(entries: &[(i64, Vec<Row>)]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(entries.len() * 256);
    codec::put_u(&mut raw, JOURNAL_VERSION);
    codec::put_u(&mut raw, entries.len() as u64);
    let mut columns = Vec::new();
    for (hk, rows) in entries {
        codec::put_i(&mut raw, *hk);
        columns.clear();
        chunk::encode_raw(rows, &mut columns);
        codec::put_bytes(&mut raw, &columns);
    }
    codec::deflate(&raw, codec::LEVEL_FAST)
}

fn decode_journal(data: &[u8]) -> Result<Vec<(i64, Vec<Row>)>, DecodeError> {
    let raw = codec::inflate(data)?;
    let mut r = Reader::new(&raw);
    if r.u()? != JOURNAL_VERSION {
        return Err(DecodeError("unknown journal version"));
    }
    let n = r.len()?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let hk = r.i()?;
        let rows = chunk::decode_raw(r.bytes()?)?;
        out.push((hk, rows));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::series::tests::sample;

    fn raw_with_host() -> Raw {
        let mut raw = Raw::new(1);
        raw.insert_host("a".into(), HostRaw::new(3, 1000));
        raw
    }

    fn batch(ts: &[i64]) -> Vec<Sample> {
        ts.iter().map(|t| sample(*t, 1.0)).collect()
    }

    #[test]
    fn windows_are_staggered_by_whole_seconds() {
        assert_eq!(span_ms(1000), 120_000);
        assert_eq!(span_ms(5000), 600_000);
        assert_eq!(span_ms(100), 60_000);
        assert_eq!(span_ms(3_600_000), 3_600_000);
        let a = window_start(1, 120_000, 1_000_000_000);
        let b = window_start(2, 120_000, 1_000_000_000);
        assert_eq!(a % 1000, 0);
        assert_ne!(a, b);
        // A thousand hosts spread over (nearly) every second of the window.
        let phases: std::collections::HashSet<i64> = (1..=1000)
            .map(|hk| window_start(hk, 120_000, 0).rem_euclid(120_000))
            .collect();
        assert!(phases.len() >= 100, "{}", phases.len());
        for hk in 0..10 {
            let s = window_start(hk, 600_000, 1_000_123_456);
            assert!(s <= 1_000_123_456 && 1_000_123_456 < s + 600_000);
        }
    }

    #[test]
    fn samples_go_to_the_journal_then_to_a_chunk() {
        let mut raw = raw_with_host();
        let t0 = window_start(3, 120_000, 10_000_000);
        let first = batch(&[t0, t0 + 1000]);
        let plan = raw.plan(&[("a", &first)], &Stored::new(), t0).unwrap();
        assert_eq!(plan.stored, vec![vec![true, true]]);
        assert!(plan.chunks.is_empty());
        let (id, journal) = plan.journal.expect("journaled");
        assert_eq!(plan.journal_keep_from, id);
        // The same again: nothing new, nothing journaled.
        let again = raw.plan(&[("a", &first)], &Stored::new(), t0).unwrap();
        assert_eq!(again.stored, vec![vec![false, false]]);
        assert!(again.journal.is_none());
        // Past the window: the chunk closes with both samples; the new one
        // is journaled; the old journal row may go.
        let next = batch(&[t0 + 120_000]);
        let plan = raw
            .plan(&[("a", &next)], &Stored::new(), t0 + 120_000)
            .unwrap();
        assert_eq!(plan.chunks.len(), 1);
        assert_eq!(plan.chunks[0].rows.len(), 2);
        assert_eq!(plan.marks, vec![(3, id + 1, t0 + 1000)]);
        assert!(plan.journal_keep_from > id);
        // Rollups: one minute bucket, one hour bucket, each of 2 samples.
        assert_eq!(plan.rollups.len(), 2);
        // A resend of the first two is late now; stored ones are skipped.
        let late = raw.late_ranges(&[("a", &first)]).unwrap();
        assert_eq!(late[&3], (t0, t0 + 1000));
        let stored: Stored = [(3, [t0].into_iter().collect())].into();
        let plan = raw.plan(&[("a", &first)], &stored, t0 + 121_000).unwrap();
        assert_eq!(plan.stored, vec![vec![false, true]]);
        assert_eq!(plan.chunks.len(), 1);
        // Replaying the first journal row into a fresh state rebuilds the
        // open chunk unless the mark says it was chunked.
        let mut fresh = raw_with_host();
        fresh.replay(id, &journal, &HashMap::new()).unwrap();
        assert_eq!(fresh.open_rows("a", 0, i64::MAX).len(), 2);
        let mut marked = raw_with_host();
        marked.replay(id, &journal, &[(3, id)].into()).unwrap();
        assert!(marked.open_rows("a", 0, i64::MAX).is_empty());
    }

    #[test]
    fn a_quiet_host_is_chunked_after_its_grace() {
        let mut raw = raw_with_host();
        let t0 = window_start(3, 120_000, 10_000_000);
        raw.plan(&[("a", &batch(&[t0]))], &Stored::new(), t0)
            .unwrap();
        let idle = raw.plan(&[], &Stored::new(), t0 + 125_000).unwrap();
        assert!(idle.chunks.is_empty());
        let idle = raw.plan(&[], &Stored::new(), t0 + 130_000).unwrap();
        assert_eq!(idle.chunks.len(), 1);
        assert_eq!(idle.journal_keep_from, raw.next_journal);
        assert!(
            raw.plan(&[("b", &batch(&[t0]))], &Stored::new(), t0)
                .is_err()
        );
    }
}
