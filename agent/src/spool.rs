//! The durable, bounded spool of samples the aggregator has not acknowledged.
//!
//! Samples are grouped into numbered batches, and each batch is one segment
//! file under the spool directory ([`segment`] has the record format),
//! written before the batch is sent and deleted when its `Ack` arrives. While
//! connected, each sample becomes its own batch and is sent at once; while
//! disconnected, samples pile into the newest unsent batch (up to
//! [`MAX_SAMPLES_PER_BATCH`]) so a long outage is resent in few messages.
//!
//! After a (re)connect, every batch that was already here is *backlog*: new
//! (live) batches are sent first and the backlog is sent flagged `backfill`
//! at the rate the shipper allows. A restarted agent reloads the segments it
//! finds, skipping (and logging) torn or corrupt records.
//!
//! Past its byte bound or age bound the oldest batches go first; each drop
//! becomes a [`DroppedRange`] kept in the `dropped` file and sent with later
//! batches until one of them is acknowledged. When the disk refuses a write
//! (full, read-only) the samples are kept in memory instead, under the same
//! byte bound, and the spool tries the disk again with the next batch.
//!
//! Segments are not fsynced: they survive the agent's crash or `kill -9`
//! (the page cache belongs to the kernel), not a power loss.

mod segment;

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

use fleetwatch_proto::{Batch, DroppedRange, Sample};

pub use segment::{Contents, crc32};

/// Most samples in one batch.
pub const MAX_SAMPLES_PER_BATCH: usize = 60;
/// Most bytes in one batch; keeps a batch far below the aggregator's 8 MiB
/// message limit even with many workers per sample.
pub const MAX_BATCH_BYTES: usize = 1 << 20;
/// Extension of segment files.
const SEGMENT_EXT: &str = "seg";
/// The file holding dropped ranges not yet acknowledged.
const DROPPED_FILE: &str = "dropped";

/// Where a batch's samples are.
#[derive(Debug)]
enum Body {
    Disk(PathBuf),
    /// The disk refused the write; lost if the agent stops.
    Memory(Vec<Sample>),
}

#[derive(Debug)]
struct Entry {
    seq: u64,
    samples: usize,
    bytes: usize,
    first_ms: i64,
    last_ms: i64,
    /// Sent on the current connection (reset on reconnect).
    sent: bool,
    /// Was here before the current connection began: resent as backfill.
    backlog: bool,
    /// Takes no more samples.
    sealed: bool,
    body: Body,
    /// Dropped ranges sent with this batch on the current connection.
    carried: Vec<DroppedRange>,
}

/// The spool's bounds and home.
#[derive(Debug, Clone)]
pub struct SpoolConfig {
    /// Directory of the segment files; `None` keeps everything in memory.
    pub dir: Option<PathBuf>,
    /// Most bytes of unacknowledged samples (as encoded on disk).
    pub max_bytes: usize,
    /// Samples older than this are dropped.
    pub max_age: Duration,
    /// Most backlog samples per second the shipper sends after a reconnect.
    pub backfill_rate: u32,
}

#[derive(Debug)]
pub struct Spool {
    config: SpoolConfig,
    entries: VecDeque<Entry>,
    bytes: usize,
    next_seq: u64,
    dropped_samples: u64,
    /// Dropped ranges the aggregator has not acknowledged yet.
    pending_dropped: Vec<DroppedRange>,
    /// The newest segment's file, open for appending.
    open: Option<(u64, File)>,
    /// The last disk write failed: samples are going to memory.
    disk_failing: bool,
}

impl Spool {
    /// Opens the spool in `config.dir`, creating it, and reloads what an
    /// earlier run left there. A directory that cannot be used is logged and
    /// the spool runs in memory.
    pub fn open(config: SpoolConfig, now_ms: i64) -> Self {
        let mut spool = Self {
            config,
            entries: VecDeque::new(),
            bytes: 0,
            next_seq: 1,
            dropped_samples: 0,
            pending_dropped: Vec::new(),
            open: None,
            disk_failing: false,
        };
        if let Some(dir) = spool.config.dir.clone() {
            if let Err(e) = std::fs::create_dir_all(&dir) {
                tracing::error!(dir = %dir.display(), error = %e, "cannot create the spool directory; unacknowledged samples are kept in memory only");
                spool.config.dir = None;
            } else {
                spool.reload(&dir);
                spool.enforce_bounds(now_ms);
            }
        }
        spool
    }

    /// Reads the segments and dropped ranges of an earlier run.
    fn reload(&mut self, dir: &Path) {
        let mut segments: Vec<(u64, PathBuf)> = match std::fs::read_dir(dir) {
            Ok(list) => list
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == SEGMENT_EXT))
                .filter_map(|p| {
                    let seq = p.file_stem()?.to_str()?.parse().ok()?;
                    Some((seq, p))
                })
                .collect(),
            Err(e) => {
                tracing::error!(dir = %dir.display(), error = %e, "cannot list the spool directory");
                Vec::new()
            }
        };
        segments.sort_unstable();
        for (seq, path) in segments {
            self.next_seq = self.next_seq.max(seq + 1);
            let contents = match segment::read::<Sample>(&path) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "cannot read a spool segment; skipped");
                    continue;
                }
            };
            if contents.bad_stretches > 0 {
                tracing::warn!(
                    path = %path.display(),
                    skipped_bytes = contents.skipped_bytes,
                    bad_stretches = contents.bad_stretches,
                    kept_samples = contents.samples.len(),
                    "torn or corrupt records in a spool segment; skipped them"
                );
            }
            if contents.samples.is_empty() {
                remove(&path);
                continue;
            }
            let bytes = contents
                .samples
                .iter()
                .map(|s| segment::encode(s).len())
                .sum();
            let (first_ms, last_ms) = span(&contents.samples);
            self.bytes += bytes;
            self.entries.push_back(Entry {
                seq,
                samples: contents.samples.len(),
                bytes,
                first_ms,
                last_ms,
                sent: false,
                backlog: true,
                sealed: true,
                body: Body::Disk(path),
                carried: Vec::new(),
            });
        }
        let dropped_path = dir.join(DROPPED_FILE);
        if dropped_path.exists() {
            match segment::read::<DroppedRange>(&dropped_path) {
                Ok(c) => self.pending_dropped = c.samples,
                Err(e) => {
                    tracing::error!(path = %dropped_path.display(), error = %e, "cannot read the spool's dropped ranges");
                }
            }
        }
        if !self.entries.is_empty() || !self.pending_dropped.is_empty() {
            tracing::info!(
                dir = %dir.display(),
                batches = self.entries.len(),
                samples = self.pending_samples(),
                bytes = self.bytes,
                dropped_ranges = self.pending_dropped.len(),
                "resuming from the spool"
            );
        }
    }

    /// Adds a sample (written to disk first when the spool has a
    /// directory), then drops the oldest batches past the bounds.
    pub fn push(&mut self, sample: Sample, now_ms: i64) {
        let record = segment::encode(&sample);
        let size = record.len();
        let ts = sample.timestamp_ms;
        // A batch is also at most a quarter of the bound, so that overflow
        // drops a part of the spool, not most of it.
        let batch_cap = MAX_BATCH_BYTES.min(self.config.max_bytes / 4);
        let appended = match self.entries.back_mut() {
            Some(last)
                if !last.sent
                    && !last.sealed
                    && last.samples < MAX_SAMPLES_PER_BATCH
                    && last.bytes + size <= batch_cap =>
            {
                let written = match &mut last.body {
                    Body::Memory(samples) => {
                        samples.push(sample.clone());
                        true
                    }
                    Body::Disk(_) => match &mut self.open {
                        Some((seq, file)) if *seq == last.seq => {
                            match segment::append(file, &record) {
                                Ok(()) => true,
                                Err(e) => {
                                    tracing::warn!(seq = last.seq, error = %e, "cannot append to the spool segment");
                                    false
                                }
                            }
                        }
                        _ => false,
                    },
                };
                if written {
                    last.samples += 1;
                    last.bytes += size;
                    last.first_ms = last.first_ms.min(ts);
                    last.last_ms = last.last_ms.max(ts);
                } else {
                    last.sealed = true;
                    self.open = None;
                }
                written
            }
            _ => false,
        };
        if !appended {
            self.start_batch(sample, &record);
        }
        self.bytes += size;
        self.enforce_bounds(now_ms);
    }

    /// A new batch holding `sample`: a new segment file, or memory if the
    /// disk refuses it.
    fn start_batch(&mut self, sample: Sample, record: &[u8]) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.open = None;
        let body = match self
            .config
            .dir
            .as_ref()
            .map(|dir| create_segment(dir, seq, record))
        {
            Some(Ok((path, file))) => {
                if self.disk_failing {
                    self.disk_failing = false;
                    tracing::info!(seq, "the spool can write to disk again");
                }
                self.open = Some((seq, file));
                Body::Disk(path)
            }
            Some(Err(e)) => {
                if !self.disk_failing {
                    self.disk_failing = true;
                    tracing::warn!(
                        error = %e,
                        max_bytes = self.config.max_bytes,
                        "cannot write the spool to disk; holding samples in memory (lost if the agent stops)"
                    );
                }
                Body::Memory(vec![sample.clone()])
            }
            None => Body::Memory(vec![sample.clone()]),
        };
        self.entries.push_back(Entry {
            seq,
            samples: 1,
            bytes: record.len(),
            first_ms: sample.timestamp_ms,
            last_ms: sample.timestamp_ms,
            sent: false,
            backlog: false,
            sealed: false,
            body,
            carried: Vec::new(),
        });
    }

    /// Drops the oldest batches not in flight while the spool is over its
    /// byte bound or holds samples past its age bound. The newest batch
    /// always stays.
    fn enforce_bounds(&mut self, now_ms: i64) {
        let max_age_ms = i64::try_from(self.config.max_age.as_millis()).unwrap_or(i64::MAX);
        let oldest_allowed = now_ms.saturating_sub(max_age_ms);
        let mut changed = false;
        loop {
            let over = self.bytes > self.config.max_bytes;
            let last = self.entries.len().saturating_sub(1);
            let victim = self
                .entries
                .iter()
                .take(last)
                .position(|e| !e.sent && (over || e.last_ms < oldest_allowed));
            let Some(i) = victim else { break };
            let Some(entry) = self.entries.remove(i) else {
                break;
            };
            self.forget(&entry);
            self.dropped_samples += entry.samples as u64;
            let range = DroppedRange {
                from_ms: entry.first_ms,
                to_ms: entry.last_ms,
                samples: entry.samples as u64,
            };
            tracing::warn!(
                seq = entry.seq,
                from_ms = range.from_ms,
                to_ms = range.to_ms,
                samples = range.samples,
                dropped_total = self.dropped_samples,
                reason = if over { "size bound" } else { "age bound" },
                "spool full: dropped the oldest unacknowledged samples"
            );
            self.pending_dropped.push(range);
            changed = true;
        }
        if changed {
            self.save_dropped();
        }
    }

    /// Releases what an entry held: its bytes, its file.
    fn forget(&mut self, entry: &Entry) {
        self.bytes -= entry.bytes;
        if self.open.as_ref().is_some_and(|(seq, _)| *seq == entry.seq) {
            self.open = None;
        }
        if let Body::Disk(path) = &entry.body {
            remove(path);
        }
    }

    /// Writes the pending dropped ranges (atomically, by rename).
    fn save_dropped(&self) {
        let Some(dir) = &self.config.dir else { return };
        let path = dir.join(DROPPED_FILE);
        if self.pending_dropped.is_empty() {
            if path.exists() {
                remove(&path);
            }
            return;
        }
        let bytes: Vec<u8> = self
            .pending_dropped
            .iter()
            .flat_map(segment::encode)
            .collect();
        let tmp = dir.join(format!("{DROPPED_FILE}.tmp"));
        if let Err(e) = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, &path)) {
            tracing::warn!(path = %path.display(), error = %e, "cannot save the spool's dropped ranges; they are kept in memory");
        }
    }

    /// Whether a live (not backlog) batch waits to be sent.
    pub fn has_live(&self) -> bool {
        self.entries.iter().any(|e| !e.sent && !e.backlog)
    }

    /// Whether a backlog batch waits to be sent.
    pub fn has_backlog(&self) -> bool {
        self.entries.iter().any(|e| !e.sent && e.backlog)
    }

    pub fn has_unsent(&self) -> bool {
        self.entries.iter().any(|e| !e.sent)
    }

    /// The next batch to send on this connection, marked as sent: the
    /// oldest live batch, or else the oldest backlog batch.
    pub fn next_unsent(&mut self) -> Option<Batch> {
        let i = self
            .entries
            .iter()
            .position(|e| !e.sent && !e.backlog)
            .or_else(|| self.entries.iter().position(|e| !e.sent))?;
        let entry = self.entries.get_mut(i)?;
        entry.sent = true;
        entry.sealed = true;
        if self.open.as_ref().is_some_and(|(seq, _)| *seq == entry.seq) {
            self.open = None;
        }
        let samples = match &entry.body {
            Body::Memory(samples) => samples.clone(),
            Body::Disk(path) => match segment::read::<Sample>(path) {
                Ok(contents) => {
                    if contents.bad_stretches > 0 {
                        tracing::warn!(path = %path.display(), skipped_bytes = contents.skipped_bytes, "corrupt records in a spool segment; sending the rest");
                    }
                    contents.samples
                }
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "cannot read a spool segment; its samples are lost");
                    Vec::new()
                }
            },
        };
        entry.carried.clone_from(&self.pending_dropped);
        let batch = Batch {
            seq: entry.seq,
            samples,
            dropped: self.pending_dropped.clone(),
            backfill: entry.backlog,
        };
        if batch.samples.is_empty() {
            // Nothing to send: forget it and let the caller ask again.
            if let Some(entry) = self.entries.remove(i) {
                self.forget(&entry);
            }
            return self.next_unsent();
        }
        Some(batch)
    }

    /// Forgets the batch the aggregator has committed, and the dropped
    /// ranges it carried. Returns whether it was here.
    pub fn ack(&mut self, seq: u64) -> bool {
        let Some(i) = self.entries.iter().position(|e| e.seq == seq) else {
            return false;
        };
        let Some(entry) = self.entries.remove(i) else {
            return false;
        };
        self.forget(&entry);
        if !entry.carried.is_empty() {
            self.pending_dropped.retain(|r| !entry.carried.contains(r));
            self.save_dropped();
        }
        true
    }

    /// Drops a batch the aggregator refused as invalid, so it is not resent forever.
    pub fn reject(&mut self, seq: u64) -> Option<usize> {
        let i = self.entries.iter().position(|e| e.seq == seq)?;
        let entry = self.entries.remove(i)?;
        self.forget(&entry);
        self.dropped_samples += entry.samples as u64;
        Some(entry.samples)
    }

    /// After a reconnect everything unacknowledged must be sent again, as
    /// backlog behind whatever is sampled from now on.
    pub fn mark_all_unsent(&mut self) {
        for entry in &mut self.entries {
            entry.sent = false;
            entry.backlog = true;
            entry.sealed = true;
            entry.carried.clear();
        }
        self.open = None;
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn pending_samples(&self) -> usize {
        self.entries.iter().map(|e| e.samples).sum()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn dropped_samples(&self) -> u64 {
        self.dropped_samples
    }

    /// Dropped ranges not yet acknowledged by the aggregator.
    pub fn pending_dropped(&self) -> &[DroppedRange] {
        &self.pending_dropped
    }
}

/// Every sample in the segments of a spool directory, oldest batch first,
/// exactly as a restarted agent would find them (for tests and tools).
pub fn read_dir_samples(dir: &Path) -> std::io::Result<Vec<Sample>> {
    let mut segments: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == SEGMENT_EXT))
        .filter_map(|p| Some((p.file_stem()?.to_str()?.parse().ok()?, p)))
        .collect();
    segments.sort_unstable();
    let mut samples = Vec::new();
    for (_, path) in segments {
        samples.extend(segment::read::<Sample>(&path)?.samples);
    }
    Ok(samples)
}

/// The segment files of a spool directory, oldest first.
pub fn segment_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == SEGMENT_EXT))
        .collect();
    files.sort_unstable();
    Ok(files)
}

fn create_segment(dir: &Path, seq: u64, record: &[u8]) -> std::io::Result<(PathBuf, File)> {
    let path = dir.join(format!("{seq:020}.{SEGMENT_EXT}"));
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)?;
    if let Err(e) = segment::append(&mut file, record) {
        drop(file);
        remove(&path);
        return Err(e);
    }
    Ok((path, file))
}

fn remove(path: &Path) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "cannot delete a spool file");
    }
}

fn span(samples: &[Sample]) -> (i64, i64) {
    let first = samples.iter().map(|s| s.timestamp_ms).min().unwrap_or(0);
    let last = samples.iter().map(|s| s.timestamp_ms).max().unwrap_or(0);
    (first, last)
}

#[cfg(test)]
mod tests;
