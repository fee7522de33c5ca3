//! Latencies as they are recorded, kept per second of the run so that a
//! report can take percentiles of the whole run or of a window (the last
//! ten seconds, the seconds after a connection storm).
//!
//! An hour of 10,000 hosts is 36 million acks, and 100 WebSocket clients
//! see 100 times the samples: too many to keep one by one. Each second
//! keeps a histogram with buckets 2 % wide instead (about 4.5 KiB), and
//! its exact maximum; a percentile is the upper edge of its bucket, so it
//! reads at most 2 % high, and the maximum is exact.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Bucket width: each bucket's upper edge is this times its lower edge.
const GROWTH: f64 = 1.02;
/// Buckets from 1 µs to u32::MAX µs (71 minutes).
const BUCKETS: usize = 1 + 1121;

fn bucket(us: u32) -> usize {
    if us == 0 {
        return 0;
    }
    (1 + (f64::from(us).ln() / GROWTH.ln()) as usize).min(BUCKETS - 1)
}

/// The upper edge of a bucket, in µs.
fn upper_edge(bucket: usize) -> f64 {
    if bucket == 0 {
        0.0
    } else {
        GROWTH.powi(bucket as i32)
    }
}

#[derive(Debug, Default)]
struct Second {
    counts: Vec<u32>,
    max: u32,
}

/// Latencies by the second of the run they were recorded in.
#[derive(Debug)]
pub struct Latencies {
    start: Instant,
    seconds: Mutex<Vec<Second>>,
}

impl Latencies {
    pub fn new(start: Instant) -> Self {
        Self {
            start,
            seconds: Mutex::new(Vec::new()),
        }
    }

    pub fn record(&self, latency: Duration) {
        let at = self.start.elapsed().as_secs() as usize;
        let us = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
        let mut seconds = self.lock();
        if seconds.len() <= at {
            seconds.resize_with(at + 1, Second::default);
        }
        let second = &mut seconds[at];
        if second.counts.is_empty() {
            second.counts = vec![0; BUCKETS];
        }
        second.counts[bucket(us)] += 1;
        second.max = second.max.max(us);
    }

    /// Percentiles of everything recorded.
    pub fn summary(&self) -> Summary {
        self.between(Duration::ZERO, Duration::MAX)
    }

    /// Percentiles of what was recorded from `from` to `to` after the
    /// start, in whole seconds: the second `from` falls in is included,
    /// the one `to` falls in is not.
    pub fn between(&self, from: Duration, to: Duration) -> Summary {
        let seconds = self.lock();
        let from = (from.as_secs() as usize).min(seconds.len());
        let to = usize::try_from(to.as_secs())
            .unwrap_or(usize::MAX)
            .clamp(from, seconds.len());
        let mut counts = vec![0u64; BUCKETS];
        let mut max = 0;
        for second in &seconds[from..to] {
            for (sum, n) in counts.iter_mut().zip(&second.counts) {
                *sum += u64::from(*n);
            }
            max = max.max(second.max);
        }
        Summary::of_histogram(&counts, max)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Second>> {
        // A panic elsewhere leaves the counts as they were: still worth reading.
        self.seconds.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Count and percentiles of some latencies, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Summary {
    /// Nearest-rank percentiles from bucket counts and the exact maximum (µs).
    fn of_histogram(counts: &[u64], max_us: u32) -> Self {
        let total: u64 = counts.iter().sum();
        let max = f64::from(max_us);
        let rank = |p: f64| {
            let wanted = ((p * total as f64).ceil() as u64).max(1);
            let mut seen = 0;
            for (i, n) in counts.iter().enumerate() {
                seen += n;
                if seen >= wanted {
                    return upper_edge(i).min(max) / 1000.0;
                }
            }
            max / 1000.0
        };
        if total == 0 {
            return Self::default();
        }
        Self {
            count: total,
            p50_ms: rank(0.5),
            p99_ms: rank(0.99),
            max_ms: max / 1000.0,
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

    fn close(got: f64, want: f64) -> bool {
        got >= want && got <= want * GROWTH
    }

    #[test]
    fn percentiles_are_within_one_bucket_and_the_max_is_exact() {
        let lat = Latencies::new(Instant::now());
        for ms in 1..=1000u64 {
            lat.record(Duration::from_micros(ms * 1000 + 7));
        }
        let s = lat.summary();
        assert_eq!(s.count, 1000);
        assert!(close(s.p50_ms, 500.007), "{s:?}");
        assert!(close(s.p99_ms, 990.007), "{s:?}");
        assert_eq!(s.max_ms, 1000.007);
        assert_eq!(lat.between(Duration::from_secs(5), Duration::MAX).count, 0);
        assert_eq!(Latencies::new(Instant::now()).summary(), Summary::default());
    }

    #[test]
    fn every_bucket_is_two_percent_wide() {
        for us in [
            1u32,
            2,
            3,
            50,
            999,
            1_000,
            123_456,
            10_000_000,
            u32::MAX - 1,
        ] {
            let b = bucket(us);
            assert!(f64::from(us) < upper_edge(b) || b == BUCKETS - 1, "{us}");
            assert!(f64::from(us) >= upper_edge(b - 1), "{us}");
        }
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(u32::MAX), BUCKETS - 1);
    }

    #[test]
    fn windows_take_only_their_seconds() {
        let lat = Latencies::new(Instant::now() - Duration::from_secs(5));
        lat.record(Duration::from_millis(3));
        lat.record(Duration::from_millis(9));
        let s = lat.between(Duration::from_secs(5), Duration::from_secs(6));
        assert_eq!(s.count, 2);
        assert_eq!(s.max_ms, 9.0);
        assert!(close(s.p50_ms, 3.0), "{s:?}");
        assert_eq!(lat.between(Duration::ZERO, Duration::from_secs(5)).count, 0);
        assert_eq!(
            lat.between(Duration::from_secs(6), Duration::from_secs(60))
                .count,
            0
        );
        assert!(lat.summary().to_string().ends_with(" / 9.00 ms (n=2)"));
    }
}
