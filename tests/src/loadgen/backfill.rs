//! History for the host the history queries read: before the live run,
//! its samples for a span before now (up to the 7 days ingest accepts),
//! sent oldest first in large batches, each acknowledged before the next,
//! as an agent resends its spool after an outage. So a 24-hour query reads
//! a full day instead of the run's few minutes, and the report says how
//! fast the aggregator took the backlog.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use fleetwatch_proto as wire;
use prost::Message;

use super::agent::{Run, open};
use super::host::SimHost;

/// Longest backfill: the aggregator refuses samples older than 7 days.
pub const MAX_SPAN: Duration = Duration::from_secs(7 * 86_400 - 3600);
/// Most samples a backfill sends, whatever the span and interval.
pub const MAX_SAMPLES: u64 = 1_000_000;
/// Largest batch, in encoded bytes and in samples (the aggregator takes up
/// to 8 MiB and 1,000 samples per batch).
const BATCH_BYTES: usize = 4 << 20;
const BATCH_SAMPLES: usize = 1000;
/// Longest the aggregator may take to acknowledge one batch.
const ACK_TIMEOUT: Duration = Duration::from_secs(60);

/// What a backfill sent and how long it took.
#[derive(Debug, Clone, Copy)]
pub struct Backfilled {
    pub samples: u64,
    pub batches: u64,
    pub took: Duration,
}

/// The grid timestamps a backfill of `span` before `now_ms` covers: from
/// the first grid point after `now_ms - span` up to two intervals before
/// `now_ms`, where the live samples take over; at most [`MAX_SAMPLES`].
pub fn timestamps(now_ms: i64, span: Duration, interval: Duration) -> impl Iterator<Item = i64> {
    let step = i64::try_from(interval.as_millis()).unwrap_or(1000).max(1);
    let span = i64::try_from(span.as_millis()).unwrap_or(0);
    let first = (now_ms - span).div_euclid(step) * step + step;
    let last = now_ms - 2 * step;
    (0..)
        .map(move |k| first + k * step)
        .take_while(move |ts| *ts <= last)
        .take(MAX_SAMPLES as usize)
}

/// Sends `host`'s samples for `span` before now, then closes the stream.
/// The same `host` then streams live, so its numbers carry on.
pub async fn backfill(host: &mut SimHost, run: &Run, span: Duration) -> Result<Backfilled> {
    if span > MAX_SPAN {
        bail!(
            "a backfill reaches back at most {}",
            humantime::format_duration(MAX_SPAN)
        );
    }
    let started = Instant::now();
    let (tx, mut inbound) = open(run, host).await?;
    let mut pending = Vec::new();
    let mut size = 0;
    let (mut samples, mut seq) = (0, 0);
    let mut stamps = timestamps(crate::now_ms(), span, run.interval).peekable();
    while let Some(ts) = stamps.next() {
        let sample = host.sample(ts);
        size += sample.encoded_len();
        pending.push(sample);
        samples += 1;
        let full = size >= BATCH_BYTES || pending.len() >= BATCH_SAMPLES;
        if full || stamps.peek().is_none() {
            seq += 1;
            let batch = wire::Batch {
                seq,
                samples: std::mem::take(&mut pending),
                // What a reconnecting agent's spool sends: stored, not alerted on.
                backfill: true,
                ..Default::default()
            };
            size = 0;
            tx.send(wire::AgentMessage {
                msg: Some(wire::agent_message::Msg::Batch(batch)),
            })
            .await
            .context("the stream closed during the backfill")?;
            let answer = tokio::time::timeout(ACK_TIMEOUT, inbound.message())
                .await
                .context("no ack for a backfill batch within a minute")??;
            match answer.and_then(|m| m.msg) {
                Some(wire::aggregator_message::Msg::Ack(ack)) if ack.seq == seq => {}
                other => bail!("backfill batch {seq}: expected its ack, got {other:?}"),
            }
        }
    }
    drop(tx);
    Ok(Backfilled {
        samples,
        batches: seq,
        took: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_the_span_on_the_grid_and_stops_before_the_live_samples() {
        let now = 1_800_000_000_500;
        let day: Vec<i64> =
            timestamps(now, Duration::from_secs(86_400), Duration::from_secs(1)).collect();
        assert_eq!(day.len(), 86_400 - 2);
        assert!(day.iter().all(|ts| ts % 1000 == 0));
        assert_eq!(day[0], 1_800_000_000_000 - 86_400_000 + 1000);
        assert_eq!(*day.last().unwrap_or(&0), 1_800_000_000_000 - 2000);
        assert!(day.windows(2).all(|w| w[1] - w[0] == 1000));
        let capped = timestamps(now, MAX_SPAN, Duration::from_millis(100)).count();
        assert_eq!(capped as u64, MAX_SAMPLES);
        assert_eq!(
            timestamps(now, Duration::ZERO, Duration::from_secs(1)).count(),
            0
        );
    }
}
