//! The hand-off from ingest to the alert engine: it never makes ingest wait
//! and it is bounded.
//!
//! Ingest pushes each committed sample and each hello with a plain call
//! under a short `std::sync::Mutex` (no await, no channel that can be
//! full); the alert service's task takes everything pending when woken.
//!
//! **When the engine falls behind.** Up to `capacity` inputs wait in the
//! order they came. Once that queue is full, further inputs go to a
//! conflating map that keeps, per host, only the newest pending sample (by
//! sample time: an older backfilled sample never replaces a newer one) and
//! the newest hello. Every sample dropped that way is counted
//! ([`Intake::conflated`]) and the service logs the count at most once per
//! interval. So memory is bounded by `capacity` plus two entries per host,
//! evaluation always reaches each host's newest state, and what is given up
//! is evaluation of intermediate samples: a spike that came and went while
//! the engine was behind may raise no alert, and a `for` duration may be
//! judged from fewer samples. While the map holds anything, new inputs go
//! to it too, and the service takes the queue before the map, so a host's
//! inputs are evaluated in the order they came.
//!
//! Separately, [`Intake::heard`] records when the aggregator last received
//! anything from each host, so that the `offline` rule judges silence by
//! what ingest received, not by what the engine has got round to.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::model::{HostInfo, Sample, TimestampMs};

/// One thing for the engine to evaluate.
#[derive(Debug, Clone)]
pub enum Input {
    /// An agent connected and introduced its host.
    Hello(Arc<HostInfo>),
    /// A sample of the host was committed.
    Sample(Arc<HostInfo>, Arc<Sample>),
}

/// What waits for one host in the conflating map.
#[derive(Debug, Default)]
struct Slot {
    hello: Option<Arc<HostInfo>>,
    sample: Option<(Arc<HostInfo>, Arc<Sample>)>,
}

#[derive(Debug, Default)]
struct Pending {
    queue: VecDeque<Input>,
    /// By host id, so a drain is in a stable order.
    overflow: BTreeMap<String, Slot>,
    /// Samples replaced in (or kept out of) the map, since start.
    conflated: u64,
    /// When ingest last received something from each host, since the
    /// service last asked.
    heard: HashMap<String, TimestampMs>,
}

/// See the module docs. Shared between ingest (pushing) and the alert
/// service (taking) through an `Arc`.
#[derive(Debug)]
pub struct Intake {
    pending: Mutex<Pending>,
    wake: Notify,
    capacity: usize,
}

impl Intake {
    /// An intake whose in-order queue holds up to `capacity` inputs.
    pub fn new(capacity: usize) -> Self {
        Self {
            pending: Mutex::new(Pending::default()),
            wake: Notify::new(),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        // Every update is a single push or insert: a panic elsewhere leaves
        // it consistent.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands an input to the engine; never waits.
    pub fn push(&self, input: Input) {
        {
            let mut p = self.lock();
            if p.overflow.is_empty() && p.queue.len() < self.capacity {
                p.queue.push_back(input);
            } else {
                p.conflate(input);
            }
        }
        self.wake.notify_one();
    }

    /// Notes that ingest received something from `host_id` at `at_ms`.
    pub fn heard(&self, host_id: &str, at_ms: TimestampMs) {
        let mut p = self.lock();
        match p.heard.get_mut(host_id) {
            Some(t) => *t = (*t).max(at_ms),
            None => {
                p.heard.insert(host_id.to_owned(), at_ms);
            }
        }
    }

    /// Everything pending, in the order to evaluate it: the queue, then
    /// per host its newest hello and newest sample.
    pub fn take(&self) -> Vec<Input> {
        let (queue, overflow) = {
            let mut p = self.lock();
            (
                std::mem::take(&mut p.queue),
                std::mem::take(&mut p.overflow),
            )
        };
        let mut out: Vec<Input> = queue.into();
        for slot in overflow.into_values() {
            out.extend(slot.hello.map(Input::Hello));
            out.extend(slot.sample.map(|(host, s)| Input::Sample(host, s)));
        }
        out
    }

    /// Hosts heard from since the last call, with when.
    pub fn take_heard(&self) -> HashMap<String, TimestampMs> {
        std::mem::take(&mut self.lock().heard)
    }

    /// Waits until something was pushed since the last wait.
    pub async fn ready(&self) {
        self.wake.notified().await;
    }

    /// Samples given up to conflation since start.
    pub fn conflated(&self) -> u64 {
        self.lock().conflated
    }

    /// Inputs waiting (queue and map entries).
    pub fn len(&self) -> usize {
        let p = self.lock();
        p.queue.len()
            + p.overflow
                .values()
                .map(|s| usize::from(s.hello.is_some()) + usize::from(s.sample.is_some()))
                .sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Pending {
    fn conflate(&mut self, input: Input) {
        match input {
            Input::Hello(host) => {
                let slot = self.overflow.entry(host.host_id.clone()).or_default();
                slot.hello = Some(host);
            }
            Input::Sample(host, sample) => {
                let slot = self.overflow.entry(host.host_id.clone()).or_default();
                match &slot.sample {
                    Some((_, kept)) if kept.timestamp_ms > sample.timestamp_ms => {}
                    Some(_) => slot.sample = Some((host, sample)),
                    None => {
                        slot.sample = Some((host, sample));
                        return;
                    }
                }
                self.conflated += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::alerts::fixtures::{cpu, host};

    fn push_sample(intake: &Intake, name: &str, ts: TimestampMs) {
        let mut s = cpu(ts as f64);
        s.timestamp_ms = ts;
        intake.push(Input::Sample(Arc::new(host(name)), Arc::new(s)));
    }

    /// (host, timestamp) of each sample taken, hellos as timestamp -1.
    fn brief(inputs: &[Input]) -> Vec<(String, TimestampMs)> {
        inputs
            .iter()
            .map(|i| match i {
                Input::Hello(h) => (h.hostname.clone(), -1),
                Input::Sample(h, s) => (h.hostname.clone(), s.timestamp_ms),
            })
            .collect()
    }

    #[test]
    fn in_order_until_full_then_the_newest_per_host() {
        let intake = Intake::new(4);
        for ts in 1..=4 {
            push_sample(&intake, "a", ts);
        }
        // Full: from here on one entry per host, whatever arrives.
        for ts in 5..=1000 {
            push_sample(&intake, if ts % 2 == 0 { "a" } else { "b" }, ts);
            assert!(intake.len() <= 4 + 2, "bounded: {} waiting", intake.len());
        }
        // A sample backfilled after a reconnect does not replace a newer one.
        push_sample(&intake, "b", 3);
        intake.push(Input::Hello(Arc::new(host("b"))));
        assert_eq!(intake.len(), 4 + 3);
        // 996 samples went to the map and 2 stayed; one more arrived late.
        assert_eq!(intake.conflated(), 996 + 1 - 2);
        assert_eq!(
            brief(&intake.take()),
            [
                ("a".into(), 1),
                ("a".into(), 2),
                ("a".into(), 3),
                ("a".into(), 4),
                ("a".into(), 1000),
                ("b".into(), -1),
                ("b".into(), 999),
            ]
        );
        assert!(intake.is_empty());
        // Caught up: in order again.
        push_sample(&intake, "a", 1001);
        push_sample(&intake, "a", 1002);
        assert_eq!(
            brief(&intake.take()),
            [("a".into(), 1001), ("a".into(), 1002)]
        );
    }

    #[test]
    fn heard_keeps_the_latest_time_per_host_until_taken() {
        let intake = Intake::new(4);
        intake.heard("a", 5_000);
        intake.heard("a", 4_000);
        intake.heard("b", 1_000);
        let heard = intake.take_heard();
        assert_eq!((heard["a"], heard["b"], heard.len()), (5_000, 1_000, 2));
        assert!(intake.take_heard().is_empty());
    }

    #[tokio::test]
    async fn a_push_wakes_the_waiting_service() {
        let intake = Arc::new(Intake::new(4));
        let waiter = tokio::spawn({
            let intake = intake.clone();
            async move {
                intake.ready().await;
                intake.take().len()
            }
        });
        push_sample(&intake, "a", 1);
        let taken = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("woken within 5 s")
            .unwrap();
        assert_eq!(taken, 1);
    }
}
