//! One simulated agent: opens a gRPC stream with the agent token, says
//! Hello, then sends one sample per interval until the run ends, timing
//! each batch from send to ack (the aggregator acks after commit). When
//! the run ends it waits a bounded time for the last acks, then closes.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use fleetwatch_proto as wire;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::host::SimHost;
use super::latency::Latencies;

/// How long an agent waits for its last acks after the run ends.
pub const DRAIN: Duration = Duration::from_secs(5);
/// Longest the aggregator may take to accept a connection and a stream.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Send times kept per host for the WebSocket clients to match.
const SENT_KEPT: usize = 32;

/// What every agent of a run shares.
#[derive(Debug)]
pub struct Run {
    /// `http://127.0.0.1:PORT` of the aggregator's gRPC listener.
    pub url: String,
    pub token: String,
    pub interval: Duration,
    /// Number of agents, to spread their samples over one interval.
    pub agents: u32,
    /// Each host on its own phase of the interval, instead of all on the
    /// same wall-clock grid as agents with synchronised clocks are.
    pub spread: bool,
    /// When agents stop sending.
    pub stop_at: Instant,
}

/// Counts over all agents.
#[derive(Debug, Default)]
pub struct Counters {
    pub sent: AtomicU64,
    /// Acknowledged, so committed to the store.
    pub acked: AtomicU64,
}

/// When each recent (host, timestamp) was sent, so that a WebSocket client
/// that sees the sample can tell how long it took to reach it.
#[derive(Debug)]
pub struct SentLog {
    index: HashMap<String, usize>,
    hosts: Vec<Mutex<VecDeque<(i64, Instant)>>>,
    enabled: bool,
}

impl SentLog {
    /// A log for these hosts (by number); records nothing unless `enabled`.
    pub fn new(host_ids: &[String], enabled: bool) -> Self {
        Self {
            index: host_ids
                .iter()
                .enumerate()
                .map(|(i, id)| (id.clone(), i))
                .collect(),
            hosts: host_ids.iter().map(|_| Mutex::default()).collect(),
            enabled,
        }
    }

    pub fn record(&self, host: usize, timestamp_ms: i64, at: Instant) {
        if !self.enabled {
            return;
        }
        if let Some(slot) = self.hosts.get(host) {
            let mut sent = slot.lock().unwrap_or_else(|e| e.into_inner());
            if sent.len() == SENT_KEPT {
                sent.pop_front();
            }
            sent.push_back((timestamp_ms, at));
        }
    }

    /// When `host_id`'s sample at `timestamp_ms` was sent, if it is recent.
    pub fn sent_at(&self, host_id: &str, timestamp_ms: i64) -> Option<Instant> {
        let slot = self.hosts.get(*self.index.get(host_id)?)?;
        let sent = slot.lock().unwrap_or_else(|e| e.into_inner());
        sent.iter()
            .rev()
            .find(|(ts, _)| *ts == timestamp_ms)
            .map(|(_, at)| *at)
    }
}

/// When a host samples and sends: on a fixed wall-clock grid, timestamp
/// k × interval (+ the host's phase when spread), sent a few milliseconds
/// later, the time its collectors take. A late send skips the grid points
/// it missed instead of shifting the later ones.
#[derive(Debug)]
struct Grid {
    interval_ms: i64,
    /// Where in the interval this host's grid sits (0 unless spread).
    phase_ms: i64,
    /// How long collecting takes on this host.
    collect: Duration,
    last: i64,
}

impl Grid {
    fn new(run: &Run, index: u32) -> Self {
        let interval_ms = i64::try_from(run.interval.as_millis())
            .unwrap_or(1000)
            .max(1);
        let phase_ms = if run.spread {
            interval_ms * i64::from(index) / i64::from(run.agents.max(1))
        } else {
            0
        };
        Self {
            interval_ms,
            phase_ms,
            // 2–20 ms, fixed per host.
            collect: Duration::from_millis(2 + u64::from(index.wrapping_mul(7919) % 19)),
            last: i64::MIN,
        }
    }

    /// The next grid timestamp after now (and after the last one).
    fn next_timestamp(&mut self) -> i64 {
        let now = crate::now_ms() - self.phase_ms;
        let k = now.div_euclid(self.interval_ms) + 1;
        let ts = (k * self.interval_ms + self.phase_ms).max(self.last + self.interval_ms);
        self.last = ts;
        ts
    }

    /// How long to wait before sending the sample taken at `ts`.
    fn until_send(&self, ts: i64) -> Duration {
        let wait_ms = u64::try_from(ts - crate::now_ms()).unwrap_or(0);
        Duration::from_millis(wait_ms) + self.collect
    }
}

/// Opens a stream for `host` with the run's token and says Hello; returns
/// the sending side and the aggregator's answers.
pub async fn open(
    run: &Run,
    host: &SimHost,
) -> Result<(
    mpsc::Sender<wire::AgentMessage>,
    tonic::Streaming<wire::AggregatorMessage>,
)> {
    let channel = tonic::transport::Endpoint::from_shared(run.url.clone())?
        .connect_timeout(CONNECT_TIMEOUT)
        .connect()
        .await?;
    // Backfill batches are large; the aggregator sets the real limit.
    let mut client = wire::IngestClient::new(channel).max_encoding_message_size(64 << 20);
    let (tx, rx) = mpsc::channel(64);
    let interval_ms = u32::try_from(run.interval.as_millis()).unwrap_or(1000);
    tx.send(wire::AgentMessage {
        msg: Some(wire::agent_message::Msg::Hello(host.hello(interval_ms))),
    })
    .await?;
    let mut request = tonic::Request::new(ReceiverStream::new(rx));
    request.metadata_mut().insert(
        wire::AUTHORIZATION_METADATA,
        format!("Bearer {}", run.token).parse()?,
    );
    let inbound = tokio::time::timeout(CONNECT_TIMEOUT, client.connect(request))
        .await
        .map_err(|_| anyhow::anyhow!("the aggregator did not answer the stream in time"))??
        .into_inner();
    Ok((tx, inbound))
}

/// Streams host number `index` until `run.stop_at`, then drains its acks.
pub async fn stream(
    mut host: SimHost,
    index: u32,
    run: Arc<Run>,
    counters: Arc<Counters>,
    acks: Arc<Latencies>,
    sent_log: Arc<SentLog>,
) -> Result<()> {
    let (tx, mut inbound) = open(&run, &host).await?;
    let pending: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();

    let reader = {
        let counters = counters.clone();
        let pending = pending.clone();
        tokio::spawn(async move {
            while let Some(msg) = inbound.message().await? {
                let Some(wire::aggregator_message::Msg::Ack(ack)) = msg.msg else {
                    continue;
                };
                counters.acked.fetch_add(1, Ordering::Relaxed);
                let sent = {
                    let mut pending = pending.lock().unwrap_or_else(|e| e.into_inner());
                    let i = pending.iter().position(|(seq, _)| *seq == ack.seq);
                    i.map(|i| pending.swap_remove(i).1)
                };
                if let Some(at) = sent {
                    acks.record(at.elapsed());
                }
            }
            Ok::<(), tonic::Status>(())
        })
    };

    let mut grid = Grid::new(&run, index);
    let mut seq = 0;
    let mut result = Ok(());
    loop {
        let ts = grid.next_timestamp();
        let until_stop = run.stop_at.saturating_duration_since(Instant::now());
        tokio::time::sleep(grid.until_send(ts).min(until_stop)).await;
        if Instant::now() >= run.stop_at {
            break;
        }
        seq += 1;
        let batch = wire::Batch {
            seq,
            samples: vec![host.sample(ts)],
            ..Default::default()
        };
        let now = Instant::now();
        pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((seq, now));
        sent_log.record(index as usize, ts, now);
        let message = wire::AgentMessage {
            msg: Some(wire::agent_message::Msg::Batch(batch)),
        };
        // A stalled aggregator must not keep the agent past the run's end.
        let deadline = tokio::time::Instant::from_std(run.stop_at + DRAIN);
        match tokio::time::timeout_at(deadline, tx.send(message)).await {
            Ok(Ok(())) => {
                counters.sent.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err(_)) => {
                result = Err(anyhow::anyhow!("the stream closed after {seq} batches"));
                break;
            }
            Err(_) => break,
        }
    }
    // Wait for the last acks (bounded), then close the stream.
    let deadline = Instant::now() + DRAIN;
    while Instant::now() < deadline && !reader.is_finished() {
        if pending.lock().unwrap_or_else(|e| e.into_inner()).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(tx);
    // Closing our side ends the stream cleanly; an error status before
    // that (a refused batch, a revoked token) is why the agent failed.
    if let Ok(Ok(Err(status))) = tokio::time::timeout(Duration::from_secs(2), reader).await {
        return Err(anyhow::anyhow!(
            "the aggregator ended the stream: {}",
            status.message()
        ));
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(spread: bool) -> Run {
        Run {
            url: String::new(),
            token: String::new(),
            interval: Duration::from_millis(500),
            agents: 4,
            spread,
            stop_at: Instant::now(),
        }
    }

    #[test]
    fn samples_sit_on_the_wall_clock_grid() {
        let mut grid = Grid::new(&run(false), 3);
        let now = crate::now_ms();
        let first = grid.next_timestamp();
        assert_eq!(first % 500, 0);
        assert!(first > now && first <= now + 500, "{now} -> {first}");
        let wait = grid.until_send(first);
        assert!(wait >= grid.collect && wait <= Duration::from_millis(500) + grid.collect);
        // Asked again before the grid point passed: the next one, never the same.
        assert_eq!(grid.next_timestamp(), first + 500);
    }

    #[test]
    fn spread_hosts_each_keep_their_own_phase() {
        let phases: Vec<i64> = (0..4)
            .map(|i| Grid::new(&run(true), i).next_timestamp().rem_euclid(500))
            .collect();
        assert_eq!(phases, vec![0, 125, 250, 375]);
    }

    #[test]
    fn the_sent_log_keeps_recent_samples_per_host() {
        let ids = vec!["a".to_owned(), "b".to_owned()];
        let log = SentLog::new(&ids, true);
        let t0 = Instant::now();
        for ts in 0..100 {
            log.record(0, ts, t0 + Duration::from_millis(ts as u64));
        }
        assert_eq!(log.sent_at("a", 99), Some(t0 + Duration::from_millis(99)));
        assert_eq!(log.sent_at("a", 99 - SENT_KEPT as i64), None, "forgotten");
        assert_eq!(log.sent_at("b", 99), None);
        assert_eq!(log.sent_at("c", 99), None);
        let off = SentLog::new(&ids, false);
        off.record(0, 1, t0);
        assert_eq!(off.sent_at("a", 1), None);
    }
}
