//! Latencies as they are recorded, each with the moment it was recorded,
//! so that a report can take percentiles of the whole run or of a window
//! (the last ten seconds, the seconds after a connection storm).

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A growing list of (recorded at, latency), both in whole units so that
/// millions of them stay small: milliseconds since the start, microseconds.
#[derive(Debug)]
pub struct Latencies {
    start: Instant,
    items: Mutex<Vec<(u32, u32)>>,
}

impl Latencies {
    pub fn new(start: Instant) -> Self {
        Self {
            start,
            items: Mutex::new(Vec::new()),
        }
    }

    pub fn record(&self, latency: Duration) {
        let at = u32::try_from(self.start.elapsed().as_millis()).unwrap_or(u32::MAX);
        let us = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
        self.lock().push((at, us));
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Percentiles of everything recorded.
    pub fn summary(&self) -> Summary {
        Summary::of(self.lock().iter().map(|(_, us)| *us).collect())
    }

    /// Percentiles of what was recorded from `from` to `to` after the start.
    pub fn between(&self, from: Duration, to: Duration) -> Summary {
        let (from, to) = (from.as_millis(), to.as_millis());
        Summary::of(
            self.lock()
                .iter()
                .filter(|(at, _)| (from..to).contains(&u128::from(*at)))
                .map(|(_, us)| *us)
                .collect(),
        )
    }

    /// Percentiles of what was recorded after the first `skip` entries,
    /// and how many entries there are now.
    pub fn since(&self, skip: usize) -> (Summary, usize) {
        let items = self.lock();
        let tail = items.get(skip..).unwrap_or_default();
        (
            Summary::of(tail.iter().map(|(_, us)| *us).collect()),
            items.len(),
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(u32, u32)>> {
        // A panic elsewhere leaves the list as it was: still worth reading.
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Count and percentiles of some latencies, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Summary {
    /// Nearest-rank percentiles of `us` (microseconds).
    pub fn of(mut us: Vec<u32>) -> Self {
        us.sort_unstable();
        let rank = |p: f64| {
            let i = ((p * us.len() as f64).ceil() as usize).saturating_sub(1);
            us.get(i).map_or(0.0, |v| f64::from(*v) / 1000.0)
        };
        Self {
            count: us.len(),
            p50_ms: rank(0.5),
            p99_ms: rank(0.99),
            max_ms: rank(1.0),
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.count == 0 {
            return write!(f, "none");
        }
        write!(
            f,
            "{} / {} / {} ms (n={})",
            ms(self.p50_ms),
            ms(self.p99_ms),
            ms(self.max_ms),
            self.count
        )
    }
}

/// Milliseconds with as many decimals as make sense.
pub fn ms(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.2}")
    } else if v < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s = Summary::of((1..=100).map(|ms| ms * 1000).collect());
        assert_eq!(s.count, 100);
        assert_eq!(s.p50_ms, 50.0);
        assert_eq!(s.p99_ms, 99.0);
        assert_eq!(s.max_ms, 100.0);
        assert_eq!(Summary::of(vec![]), Summary::default());
        assert_eq!(Summary::of(vec![1500]).p99_ms, 1.5);
    }

    #[test]
    fn windows_take_only_their_part() {
        let lat = Latencies::new(Instant::now() - Duration::from_secs(5));
        lat.record(Duration::from_millis(3));
        lat.record(Duration::from_millis(9));
        let (all, len) = lat.since(0);
        assert_eq!((all.count, len), (2, 2));
        assert_eq!(lat.since(1).0.max_ms, 9.0);
        assert_eq!(lat.since(5).0.count, 0);
        assert_eq!(
            lat.between(Duration::from_secs(4), Duration::from_secs(60))
                .count,
            2
        );
        assert_eq!(lat.between(Duration::ZERO, Duration::from_secs(4)).count, 0);
        assert_eq!(lat.summary().to_string(), "3.00 / 9.00 / 9.00 ms (n=2)");
    }
}
