//! The aggregator's own health, counted where it happens and read by
//! `GET /metrics` (see [`exposition`]).
//!
//! Ingest, the store's writer and the WebSocket update a [`Telemetry`]
//! handle: plain atomics and the lock-free [`histogram::Histogram`], so
//! counting costs no lock on the hot path. Everything else a scrape shows
//! (agents connected, alerts firing, webhook deliveries, database size, the
//! fleet's latest values) is read at scrape time from the parts that already
//! keep it, never from a database query.
//!
//! - [`histogram`] — the atomic fixed-bucket histogram.
//! - [`exposition`] — the Prometheus / OpenMetrics text of one scrape.

pub mod exposition;
pub mod histogram;

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use histogram::{BATCH_BUCKETS, Histogram, LATENCY_BUCKETS};

use crate::alerts::notify::Notifier;

/// Why samples were refused (the `reason` label of
/// `fleetwatch_samples_refused_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The batch failed validation (a bad number, timestamp or size).
    Invalid,
    /// The store could not commit the batch; the agent resends it.
    StoreUnavailable,
}

impl Refusal {
    pub const ALL: [Refusal; 2] = [Refusal::Invalid, Refusal::StoreUnavailable];

    pub fn label(self) -> &'static str {
        match self {
            Self::Invalid => "invalid",
            Self::StoreUnavailable => "store_unavailable",
        }
    }
}

/// Counters and histograms since start; see the module doc.
#[derive(Debug)]
pub struct Counters {
    /// Samples in every batch an agent sent, refused ones included.
    pub samples_received: AtomicU64,
    /// Samples committed that the store did not have yet.
    pub samples_stored: AtomicU64,
    /// Samples committed that the store already had (a resent batch).
    pub samples_duplicate: AtomicU64,
    refused: [AtomicU64; Refusal::ALL.len()],
    /// Agent batches folded into each commit.
    pub batches_per_commit: Histogram,
    /// How long each commit of the writer took.
    pub write_seconds: Histogram,
    /// From a batch's arrival to its ack being queued for the agent.
    pub ack_seconds: Histogram,
    /// Batches handed to the writer and not yet taken by it.
    pub writer_queue: AtomicI64,
    /// WebSocket clients connected now.
    pub ws_clients: AtomicI64,
}

/// A handle to the counters; cheap to clone.
#[derive(Debug, Clone)]
pub struct Telemetry {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    counters: Counters,
    /// The database file, for its size; `None` in memory.
    db_path: Option<PathBuf>,
    /// The webhook notifier, for its delivery counters; set once at start.
    notifier: OnceLock<Notifier>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new(None)
    }
}

impl Telemetry {
    /// Counters for an aggregator whose database is the file `db_path`.
    pub fn new(db_path: Option<PathBuf>) -> Self {
        Self {
            inner: Arc::new(Inner {
                counters: Counters {
                    samples_received: AtomicU64::new(0),
                    samples_stored: AtomicU64::new(0),
                    samples_duplicate: AtomicU64::new(0),
                    refused: Default::default(),
                    batches_per_commit: Histogram::new(BATCH_BUCKETS),
                    write_seconds: Histogram::new(LATENCY_BUCKETS),
                    ack_seconds: Histogram::new(LATENCY_BUCKETS),
                    writer_queue: AtomicI64::new(0),
                    ws_clients: AtomicI64::new(0),
                },
                db_path,
                notifier: OnceLock::new(),
            }),
        }
    }

    pub fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    pub fn db_path(&self) -> Option<&std::path::Path> {
        self.inner.db_path.as_deref()
    }

    /// Reports this notifier's deliveries from now on (the first call wins).
    pub fn watch_notifier(&self, notifier: Notifier) {
        let _ = self.inner.notifier.set(notifier);
    }

    pub fn notifier(&self) -> Option<&Notifier> {
        self.inner.notifier.get()
    }

    /// An agent sent a batch of `n` samples.
    pub fn received(&self, n: usize) {
        add(&self.counters().samples_received, n);
    }

    /// `n` samples were refused for `why`.
    pub fn refused(&self, why: Refusal, n: usize) {
        let index = Refusal::ALL.iter().position(|r| *r == why).unwrap_or(0);
        if let Some(counter) = self.counters().refused.get(index) {
            add(counter, n);
        }
    }

    pub fn refused_count(&self, why: Refusal) -> u64 {
        let index = Refusal::ALL.iter().position(|r| *r == why).unwrap_or(0);
        self.counters()
            .refused
            .get(index)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// A batch was committed: `new` samples were new, `duplicate` known.
    pub fn stored(&self, new: usize, duplicate: usize) {
        add(&self.counters().samples_stored, new);
        add(&self.counters().samples_duplicate, duplicate);
    }

    /// The writer committed `batches` agent batches in `took`.
    pub fn committed(&self, batches: usize, took: Duration) {
        let c = self.counters();
        c.batches_per_commit.observe(batches as f64);
        c.write_seconds.observe(took.as_secs_f64());
    }

    /// A batch was acknowledged `took` after it arrived.
    pub fn acked(&self, took: Duration) {
        self.counters().ack_seconds.observe(took.as_secs_f64());
    }

    /// `n` batches joined (positive) or left (negative) the writer's queue.
    pub fn writer_queue(&self, n: i64) {
        self.counters().writer_queue.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts a WebSocket client for as long as the guard lives.
    pub fn ws_client(&self) -> WsClientGuard {
        self.counters().ws_clients.fetch_add(1, Ordering::Relaxed);
        WsClientGuard(self.clone())
    }
}

/// The store's writer reports through the same counters.
impl crate::store::writer::WriterStats for Telemetry {
    fn writer_queue(&self, n: i64) {
        Telemetry::writer_queue(self, n);
    }

    fn committed(&self, batches: usize, took: Duration) {
        Telemetry::committed(self, batches, took);
    }
}

fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
}

/// One connected WebSocket client; uncounted when dropped.
#[derive(Debug)]
pub struct WsClientGuard(Telemetry);

impl Drop for WsClientGuard {
    fn drop(&mut self) {
        self.0.counters().ws_clients.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_reason_and_ws_clients_while_connected() {
        let t = Telemetry::default();
        t.received(5);
        t.refused(Refusal::Invalid, 2);
        t.refused(Refusal::StoreUnavailable, 3);
        t.stored(4, 1);
        assert_eq!(t.counters().samples_received.load(Ordering::Relaxed), 5);
        assert_eq!(t.refused_count(Refusal::Invalid), 2);
        assert_eq!(t.refused_count(Refusal::StoreUnavailable), 3);
        assert_eq!(t.counters().samples_stored.load(Ordering::Relaxed), 4);
        assert_eq!(t.counters().samples_duplicate.load(Ordering::Relaxed), 1);
        let guard = t.ws_client();
        let second = t.ws_client();
        assert_eq!(t.counters().ws_clients.load(Ordering::Relaxed), 2);
        drop(guard);
        drop(second);
        assert_eq!(t.counters().ws_clients.load(Ordering::Relaxed), 0);
    }
}
