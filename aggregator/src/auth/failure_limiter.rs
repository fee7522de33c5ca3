//! Counting failed attempts per key (a peer address, a user name) in a
//! fixed window, so guessing is slow. The map is bounded: when it is full,
//! expired entries go first, then the oldest.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
struct Entry {
    since: Instant,
    failures: u32,
}

#[derive(Debug)]
pub struct FailureLimiter<K> {
    max_failures: u32,
    window: Duration,
    capacity: usize,
    entries: HashMap<K, Entry>,
}

impl<K: Hash + Eq + Clone> FailureLimiter<K> {
    /// At most `max_failures` failures per `window` for each key, with at
    /// most `capacity` keys remembered.
    pub fn new(max_failures: u32, window: Duration, capacity: usize) -> Self {
        Self {
            max_failures,
            window,
            capacity: capacity.max(1),
            entries: HashMap::new(),
        }
    }

    /// `Err(retry_after)` while `key` has used up its failures.
    pub fn check(&self, key: &K, now: Instant) -> Result<(), Duration> {
        match self.entries.get(key) {
            Some(e) if e.failures >= self.max_failures => {
                let elapsed = now.saturating_duration_since(e.since);
                if elapsed < self.window {
                    Err(self.window - elapsed)
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    /// Counts one failure for `key`.
    pub fn fail(&mut self, key: K, now: Instant) {
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            let window = self.window;
            self.entries
                .retain(|_, e| now.saturating_duration_since(e.since) < window);
            if self.entries.len() >= self.capacity {
                let oldest = self
                    .entries
                    .iter()
                    .min_by_key(|(_, e)| e.since)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    self.entries.remove(&oldest);
                }
            }
        }
        let entry = self.entries.entry(key).or_insert(Entry {
            since: now,
            failures: 0,
        });
        if now.saturating_duration_since(entry.since) >= self.window {
            *entry = Entry {
                since: now,
                failures: 0,
            };
        }
        entry.failures = entry.failures.saturating_add(1);
    }

    /// Takes back one failure of `key` (one counted ahead of time that
    /// turned out a success).
    pub fn undo(&mut self, key: &K) {
        if let Some(entry) = self.entries.get_mut(key) {
            entry.failures = entry.failures.saturating_sub(1);
            if entry.failures == 0 {
                self.entries.remove(key);
            }
        }
    }

    /// Forgets `key`'s failures (after a success).
    pub fn forget(&mut self, key: &K) {
        self.entries.remove(key);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_until_the_window_ends() {
        let mut limiter = FailureLimiter::new(3, Duration::from_secs(60), 100);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check(&"a", t0).is_ok());
            limiter.fail("a", t0);
        }
        let wait = limiter
            .check(&"a", t0 + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        assert!(
            limiter.check(&"b", t0).is_ok(),
            "other keys are not blocked"
        );
        assert!(limiter.check(&"a", t0 + Duration::from_secs(60)).is_ok());
        limiter.fail("a", t0 + Duration::from_secs(61));
        assert!(limiter.check(&"a", t0 + Duration::from_secs(61)).is_ok());
        limiter.fail("b", t0);
        limiter.undo(&"b");
        assert!(limiter.check(&"b", t0).is_ok());
        assert_eq!(limiter.len(), 1, "an undone key is dropped");
        limiter.forget(&"a");
        assert!(limiter.is_empty());
    }

    #[test]
    fn never_holds_more_than_its_capacity() {
        let mut limiter = FailureLimiter::new(1, Duration::from_secs(60), 10);
        let t0 = Instant::now();
        for i in 0..1000u32 {
            limiter.fail(i, t0 + Duration::from_millis(u64::from(i)));
            assert!(limiter.len() <= 10);
        }
        // The newest keys are the ones kept.
        assert!(limiter.check(&999, t0 + Duration::from_secs(1)).is_err());
        assert!(limiter.check(&0, t0 + Duration::from_secs(1)).is_ok());
    }
}
