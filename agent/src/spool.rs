//! The bounded buffer of samples the aggregator has not acknowledged yet.
//!
//! Samples are grouped into numbered batches. While connected, each sample
//! becomes its own batch and is sent at once; while disconnected, samples
//! pile into the newest unsent batch (up to [`MAX_SAMPLES_PER_BATCH`]) so a
//! long outage is resent in few messages. When the buffer passes its byte
//! bound the oldest samples are dropped first, and counted.

use std::collections::VecDeque;

use fleetwatch_proto::{Batch, Sample};
use prost::Message;

/// Most samples in one batch.
pub const MAX_SAMPLES_PER_BATCH: usize = 60;
/// Most bytes in one batch; keeps a batch far below the aggregator's 8 MiB
/// message limit even with many workers per sample.
pub const MAX_BATCH_BYTES: usize = 1 << 20;

#[derive(Debug)]
struct Entry {
    batch: Batch,
    bytes: usize,
    /// Sent on the current connection (reset on reconnect).
    sent: bool,
}

#[derive(Debug)]
pub struct Spool {
    entries: VecDeque<Entry>,
    bytes: usize,
    max_bytes: usize,
    next_seq: u64,
    dropped_samples: u64,
}

impl Spool {
    pub fn new(max_bytes: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            bytes: 0,
            max_bytes,
            next_seq: 1,
            dropped_samples: 0,
        }
    }

    /// Adds a sample, dropping the oldest if the buffer is over its bound.
    pub fn push(&mut self, sample: Sample) {
        let size = sample.encoded_len() + 8;
        match self.entries.back_mut() {
            Some(last)
                if !last.sent
                    && last.batch.samples.len() < MAX_SAMPLES_PER_BATCH
                    && last.bytes + size <= MAX_BATCH_BYTES =>
            {
                last.batch.samples.push(sample);
                last.bytes += size;
            }
            _ => {
                let seq = self.next_seq;
                self.next_seq += 1;
                self.entries.push_back(Entry {
                    batch: Batch {
                        seq,
                        samples: vec![sample],
                    },
                    bytes: size,
                    sent: false,
                });
            }
        }
        self.bytes += size;
        while self.bytes > self.max_bytes && self.entries.len() > 1 {
            if let Some(oldest) = self.entries.pop_front() {
                self.bytes -= oldest.bytes;
                self.dropped_samples += oldest.batch.samples.len() as u64;
                tracing::warn!(
                    seq = oldest.batch.seq,
                    samples = oldest.batch.samples.len(),
                    dropped_total = self.dropped_samples,
                    "buffer full: dropped the oldest unacknowledged samples"
                );
            }
        }
    }

    /// The next batch not yet sent on this connection, marked as sent.
    pub fn next_unsent(&mut self) -> Option<Batch> {
        let entry = self.entries.iter_mut().find(|e| !e.sent)?;
        entry.sent = true;
        Some(entry.batch.clone())
    }

    pub fn has_unsent(&self) -> bool {
        self.entries.iter().any(|e| !e.sent)
    }

    /// Forgets the batch the aggregator has committed. Returns whether it was here.
    pub fn ack(&mut self, seq: u64) -> bool {
        match self.entries.iter().position(|e| e.batch.seq == seq) {
            Some(i) => {
                if let Some(entry) = self.entries.remove(i) {
                    self.bytes -= entry.bytes;
                }
                true
            }
            None => false,
        }
    }

    /// Drops a batch the aggregator refused as invalid, so it is not resent forever.
    pub fn reject(&mut self, seq: u64) -> Option<usize> {
        let i = self.entries.iter().position(|e| e.batch.seq == seq)?;
        let entry = self.entries.remove(i)?;
        self.bytes -= entry.bytes;
        self.dropped_samples += entry.batch.samples.len() as u64;
        Some(entry.batch.samples.len())
    }

    /// After a reconnect everything unacknowledged must be sent again.
    pub fn mark_all_unsent(&mut self) {
        for entry in &mut self.entries {
            entry.sent = false;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn pending_samples(&self) -> usize {
        self.entries.iter().map(|e| e.batch.samples.len()).sum()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn dropped_samples(&self) -> u64 {
        self.dropped_samples
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(ts: i64) -> Sample {
        Sample {
            timestamp_ms: ts,
            ..Default::default()
        }
    }

    #[test]
    fn sent_batches_are_resent_after_reconnect_until_acked() {
        let mut spool = Spool::new(1 << 20);
        spool.push(sample(1));
        let b1 = spool.next_unsent().expect("batch");
        assert_eq!((b1.seq, b1.samples.len()), (1, 1));
        // A sample after a send starts a new batch.
        spool.push(sample(2));
        let b2 = spool.next_unsent().expect("batch");
        assert_eq!(b2.seq, 2);
        assert!(spool.next_unsent().is_none());
        assert!(spool.ack(1));
        assert!(!spool.ack(1));
        spool.mark_all_unsent();
        let again = spool.next_unsent().expect("resend");
        assert_eq!(again.seq, 2);
        assert_eq!(again.samples[0].timestamp_ms, 2);
        assert!(spool.ack(2));
        assert!(spool.is_empty());
        assert_eq!(spool.bytes(), 0);
    }

    #[test]
    fn unsent_samples_share_a_batch() {
        let mut spool = Spool::new(1 << 20);
        for ts in 0..(MAX_SAMPLES_PER_BATCH as i64 + 5) {
            spool.push(sample(ts));
        }
        assert_eq!(spool.pending_samples(), MAX_SAMPLES_PER_BATCH + 5);
        let first = spool.next_unsent().expect("batch");
        assert_eq!(first.samples.len(), MAX_SAMPLES_PER_BATCH);
        let second = spool.next_unsent().expect("batch");
        assert_eq!(second.samples.len(), 5);
    }

    #[test]
    fn oldest_samples_go_first_when_full() {
        let one = sample(1).encoded_len() + 8;
        let mut spool = Spool::new(one * 3);
        for ts in 0..10 {
            spool.push(sample(ts));
            // Send each one so every sample is its own batch.
            spool.next_unsent();
        }
        assert!(spool.bytes() <= one * 3);
        assert_eq!(spool.pending_samples(), 3);
        assert_eq!(spool.dropped_samples(), 7);
        spool.mark_all_unsent();
        assert_eq!(
            spool.next_unsent().expect("batch").samples[0].timestamp_ms,
            7
        );
    }

    #[test]
    fn rejected_batch_is_dropped_and_counted() {
        let mut spool = Spool::new(1 << 20);
        spool.push(sample(1));
        let b = spool.next_unsent().expect("batch");
        assert_eq!(spool.reject(b.seq), Some(1));
        assert!(spool.is_empty());
        assert_eq!(spool.dropped_samples(), 1);
    }
}
