//! Tests of the spool through its public calls, on a real directory.

use std::io::Write;

use prost::Message;

use super::*;

// Small timestamps keep the expected values readable; all are "recent".
const NOW: i64 = 100_000;
const DAY: Duration = Duration::from_secs(86_400);

fn sample(ts: i64) -> Sample {
    Sample {
        timestamp_ms: ts,
        ..Default::default()
    }
}

fn config(dir: &Path, max_bytes: usize) -> SpoolConfig {
    SpoolConfig {
        dir: Some(dir.to_owned()),
        max_bytes,
        max_age: DAY,
        backfill_rate: 100,
    }
}

fn stamps(batch: &Batch) -> Vec<i64> {
    batch.samples.iter().map(|s| s.timestamp_ms).collect()
}

#[test]
fn sent_batches_are_resent_after_reconnect_until_acked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spool = Spool::open(config(dir.path(), 1 << 20), NOW);
    spool.push(sample(1), NOW);
    let b1 = spool.next_unsent().expect("batch");
    assert_eq!((b1.seq, b1.samples.len(), b1.backfill), (1, 1, false));
    // A sample after a send starts a new batch.
    spool.push(sample(2), NOW);
    let b2 = spool.next_unsent().expect("batch");
    assert_eq!(b2.seq, 2);
    assert!(spool.next_unsent().is_none());
    assert!(spool.ack(1));
    assert!(!spool.ack(1));
    spool.mark_all_unsent();
    let again = spool.next_unsent().expect("resend");
    assert_eq!(
        (again.seq, stamps(&again), again.backfill),
        (2, vec![2], true)
    );
    assert!(spool.ack(2));
    assert!(spool.is_empty());
    assert_eq!(spool.bytes(), 0);
    assert!(segment_files(dir.path()).expect("list").is_empty());
}

#[test]
fn unsent_samples_share_a_batch_and_a_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spool = Spool::open(config(dir.path(), 1 << 20), NOW);
    for ts in 0..(MAX_SAMPLES_PER_BATCH as i64 + 5) {
        spool.push(sample(ts), NOW);
    }
    assert_eq!(spool.pending_samples(), MAX_SAMPLES_PER_BATCH + 5);
    assert_eq!(segment_files(dir.path()).expect("list").len(), 2);
    let first = spool.next_unsent().expect("batch");
    assert_eq!(first.samples.len(), MAX_SAMPLES_PER_BATCH);
    let second = spool.next_unsent().expect("batch");
    assert_eq!(second.samples.len(), 5);
}

#[test]
fn a_restarted_spool_resumes_with_everything_unacknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spool = Spool::open(config(dir.path(), 1 << 20), NOW);
    for ts in 1..=70 {
        spool.push(sample(ts), NOW);
    }
    let first = spool.next_unsent().expect("batch");
    assert!(spool.ack(first.seq));
    // Dropped without shutdown, as a kill -9 would.
    drop(spool);
    let mut again = Spool::open(config(dir.path(), 1 << 20), NOW);
    assert_eq!(again.pending_samples(), 10);
    assert!(again.has_backlog() && !again.has_live());
    // New samples go first, the old ones follow flagged as backfill.
    again.push(sample(100), NOW);
    let live = again.next_unsent().expect("live");
    assert_eq!((stamps(&live), live.backfill), (vec![100], false));
    let old = again.next_unsent().expect("backlog");
    assert_eq!(stamps(&old), (61..=70).collect::<Vec<_>>());
    assert!(old.backfill);
    assert!(old.seq > first.seq && live.seq > old.seq);
}

#[test]
fn a_torn_tail_with_garbage_loses_only_the_torn_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spool = Spool::open(config(dir.path(), 1 << 20), NOW);
    for ts in 1..=5 {
        spool.push(sample(ts), NOW);
    }
    drop(spool);
    let files = segment_files(dir.path()).expect("list");
    assert_eq!(files.len(), 1);
    let len = std::fs::metadata(&files[0]).expect("meta").len();
    let file = OpenOptions::new()
        .write(true)
        .open(&files[0])
        .expect("open");
    file.set_len(len - 3).expect("truncate");
    let mut file = OpenOptions::new()
        .append(true)
        .open(&files[0])
        .expect("open");
    file.write_all(b"\x00\xffgarbage-after-a-torn-write")
        .expect("write");
    drop(file);

    let mut again = Spool::open(config(dir.path(), 1 << 20), NOW);
    assert_eq!(again.pending_samples(), 4);
    // The torn segment is closed; new samples start a new one.
    again.push(sample(6), NOW);
    assert_eq!(segment_files(dir.path()).expect("list").len(), 2);
    let live = again.next_unsent().expect("live");
    assert_eq!(stamps(&live), [6]);
    let old = again.next_unsent().expect("backlog");
    assert_eq!(stamps(&old), [1, 2, 3, 4]);
}

#[test]
fn oldest_samples_go_first_when_full_and_the_range_is_reported_until_acked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let one = segment::encode(&sample(1000)).len();
    let mut spool = Spool::open(config(dir.path(), one * 3), NOW);
    for ts in 0..10 {
        spool.push(sample(1000 + ts), NOW);
        // Seal each batch, as a send does, so each sample is its own batch.
        spool.next_unsent();
        spool.mark_all_unsent();
    }
    assert!(spool.bytes() <= one * 3);
    assert_eq!(spool.pending_samples(), 3);
    assert_eq!(spool.dropped_samples(), 7);
    let dropped: u64 = spool.pending_dropped().iter().map(|r| r.samples).sum();
    assert_eq!(dropped, 7);
    assert_eq!(spool.pending_dropped()[0].from_ms, 1000);
    assert_eq!(spool.pending_dropped().last().map(|r| r.to_ms), Some(1006));

    // The ranges survive a restart, travel with the next batch, and are
    // forgotten once that batch is acknowledged.
    drop(spool);
    let mut again = Spool::open(config(dir.path(), one * 3), NOW);
    assert_eq!(again.pending_dropped().len(), 7);
    let batch = again.next_unsent().expect("batch");
    assert_eq!(stamps(&batch), [1007]);
    assert_eq!(batch.dropped.len(), 7);
    assert!(again.ack(batch.seq));
    assert!(again.pending_dropped().is_empty());
    assert!(!dir.path().join(DROPPED_FILE).exists());
    let next = again.next_unsent().expect("batch");
    assert!(next.dropped.is_empty());
}

#[test]
fn samples_past_the_age_bound_are_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spool = Spool::open(config(dir.path(), 1 << 20), NOW);
    let old = NOW - 2 * 86_400_000;
    spool.push(sample(old), NOW);
    spool.next_unsent();
    spool.mark_all_unsent();
    spool.push(sample(NOW), NOW);
    assert_eq!(spool.pending_samples(), 1);
    assert_eq!(
        spool.pending_dropped(),
        [DroppedRange {
            from_ms: old,
            to_ms: old,
            samples: 1
        }]
    );
}

#[test]
fn a_disk_that_refuses_writes_falls_back_to_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool_dir = dir.path().join("spool");
    let mut spool = Spool::open(config(&spool_dir, 1 << 20), NOW);
    spool.push(sample(1), NOW);
    spool.next_unsent();
    // The directory goes away: every new segment fails to be created.
    std::fs::remove_dir_all(&spool_dir).expect("remove");
    for ts in 2..=4 {
        spool.push(sample(ts), NOW);
    }
    assert_eq!(spool.pending_samples(), 4);
    let batch = spool.next_unsent().expect("batch");
    assert_eq!(stamps(&batch), [2, 3, 4]);
    // And when the disk is back, new batches go to disk again.
    std::fs::create_dir_all(&spool_dir).expect("mkdir");
    spool.push(sample(5), NOW);
    assert_eq!(segment_files(&spool_dir).expect("list").len(), 1);
    assert_eq!(stamps(&spool.next_unsent().expect("batch")), [5]);
}

#[test]
fn rejected_batch_is_dropped_and_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spool = Spool::open(config(dir.path(), 1 << 20), NOW);
    spool.push(sample(1), NOW);
    let b = spool.next_unsent().expect("batch");
    assert_eq!(spool.reject(b.seq), Some(1));
    assert!(spool.is_empty());
    assert_eq!(spool.dropped_samples(), 1);
    assert!(segment_files(dir.path()).expect("list").is_empty());
}

#[test]
fn record_overhead_is_small() {
    let s = sample(NOW);
    assert_eq!(segment::encode(&s).len(), s.encoded_len() + segment::HEADER);
}
