//! The one task that writes samples. Every ingest stream hands its batch to
//! the writer and waits for the commit; the writer takes every batch that is
//! waiting and stores them all in one transaction, so a hundred agents cost
//! one commit per round instead of a hundred. Between rounds, and at least
//! every second, it lets the store do its upkeep (closing the chunks of
//! quiet hosts, bounding the write-ahead log) on the same connection, so
//! upkeep never races a write.
//!
//! The writer runs on a thread of its own, with its own small runtime. On
//! the shared runtime it queued behind thousands of stream tasks at every
//! await (each statement is a round trip to SQLite's thread): at 3,000
//! hosts a commit's wall time was mostly waiting to be polled again, and
//! the writer, not the CPU, set the ceiling.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::samples::{HostBatch, SampleStore};
use super::{Result, StoreError};
use crate::model::{Sample, now_ms};

/// How often the store's upkeep runs when no batch comes.
const UPKEEP_EVERY: Duration = Duration::from_secs(1);

/// Batches folded into one transaction at most.
const MAX_JOBS_PER_COMMIT: usize = 512;
/// Batches waiting for the writer before senders wait too.
const QUEUE: usize = 1024;

struct Job {
    batch: HostBatch,
    done: oneshot::Sender<Result<Vec<(Sample, bool)>>>,
}

/// What the writer reports about its work: its queue depth, commit sizes
/// and commit times. The aggregator's telemetry implements it; the store
/// itself depends on no counter type.
pub trait WriterStats: Send + Sync + 'static {
    /// `n` batches joined (positive) or left (negative) the queue.
    fn writer_queue(&self, n: i64);
    /// `batches` agent batches were committed in `took`.
    fn committed(&self, batches: usize, took: Duration);
}

/// A handle to the writer task; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
    telemetry: Arc<dyn WriterStats>,
}

impl Writer {
    /// Starts the writer on its own thread. It ends when every handle is
    /// dropped. Its queue depth, commit sizes and commit times go to
    /// `telemetry`. Fails only if the thread or its runtime cannot be made.
    pub fn spawn(
        store: Arc<dyn SampleStore>,
        telemetry: impl WriterStats,
    ) -> std::io::Result<Self> {
        let telemetry: Arc<dyn WriterStats> = Arc::new(telemetry);
        let (tx, rx) = mpsc::channel(QUEUE);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("fleetwatch-writer-blocking")
            .build()?;
        let stats = telemetry.clone();
        std::thread::Builder::new()
            .name("fleetwatch-writer".into())
            .spawn(move || runtime.block_on(run(store, rx, stats)))?;
        Ok(Self { tx, telemetry })
    }

    /// Stores one batch; returns once it is committed, handing the samples
    /// back (for the hub and the alert engine, without a copy) each with
    /// whether it was new.
    pub async fn write(
        &self,
        host_id: String,
        samples: Vec<Sample>,
    ) -> Result<Vec<(Sample, bool)>> {
        let (done, wait) = oneshot::channel();
        let job = Job {
            batch: HostBatch { host_id, samples },
            done,
        };
        let mut queued = Queued::new(self.telemetry.as_ref());
        self.tx
            .send(job)
            .await
            .map_err(|_| StoreError::WriterGone)?;
        queued.taken_by_writer();
        wait.await.map_err(|_| StoreError::WriterGone)?
    }
}

/// Counts a batch in the writer's queue gauge; a send that fails or is
/// cancelled takes it out again, one that succeeds leaves it to the writer.
struct Queued<'a> {
    telemetry: &'a dyn WriterStats,
    sent: bool,
}

impl<'a> Queued<'a> {
    fn new(telemetry: &'a dyn WriterStats) -> Self {
        telemetry.writer_queue(1);
        Self {
            telemetry,
            sent: false,
        }
    }

    fn taken_by_writer(&mut self) {
        self.sent = true;
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if !self.sent {
            self.telemetry.writer_queue(-1);
        }
    }
}

async fn run(
    store: Arc<dyn SampleStore>,
    mut rx: mpsc::Receiver<Job>,
    telemetry: Arc<dyn WriterStats>,
) {
    let mut jobs = Vec::with_capacity(MAX_JOBS_PER_COMMIT);
    let mut upkeep = tokio::time::interval(UPKEEP_EVERY);
    upkeep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            n = rx.recv_many(&mut jobs, MAX_JOBS_PER_COMMIT) => {
                if n == 0 { break }
                telemetry.writer_queue(-i64::try_from(n).unwrap_or(i64::MAX));
            }
            _ = upkeep.tick() => {
                if let Err(e) = store.maintain(now_ms()).await {
                    tracing::warn!(error = %e, "store upkeep failed; will retry");
                }
                continue;
            }
        }
        let (batches, dones): (Vec<HostBatch>, Vec<_>) =
            jobs.drain(..).map(|j| (j.batch, j.done)).unzip();
        let started = std::time::Instant::now();
        match store.write_batches(&batches).await {
            Ok(stored) => {
                telemetry.committed(batches.len(), started.elapsed());
                tracing::debug!(batches = batches.len(), "committed");
                for ((done, batch), new) in dones.into_iter().zip(batches).zip(stored) {
                    let _ = done.send(Ok(batch.samples.into_iter().zip(new).collect()));
                }
            }
            Err(e) => {
                // Nobody is acknowledged: every agent keeps its batch and resends it.
                tracing::error!(error = %e, batches = batches.len(), "cannot store batches");
                let reason = e.to_string();
                for done in dones {
                    let _ = done.send(Err(StoreError::Write(reason.clone())));
                }
            }
        }
    }
}
