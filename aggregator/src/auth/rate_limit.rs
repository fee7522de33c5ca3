//! Login rate limiting, in memory: at most [`MAX_FAILURES`] failed logins
//! per [`WINDOW`] from one peer address, and as many for one user name
//! (whatever the address), so that neither one client nor a botnet working
//! on one account gets more than a handful of guesses a minute. The count
//! is a [`FailureLimiter`], bounded at [`MAX_KEYS`] keys.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::limit::FailureLimiter;

pub const MAX_FAILURES: u32 = 5;
pub const WINDOW: Duration = Duration::from_secs(60);
pub const MAX_KEYS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Peer(IpAddr),
    User(String),
}

/// Shared by every request; cheap to clone.
#[derive(Debug, Clone)]
pub struct LoginLimiter {
    // A std mutex: held only for a few map operations, never across an await.
    failures: Arc<Mutex<FailureLimiter<Key>>>,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        Self {
            failures: Arc::new(Mutex::new(FailureLimiter::new(
                MAX_FAILURES,
                WINDOW,
                MAX_KEYS,
            ))),
        }
    }
}

impl LoginLimiter {
    /// `Err(wait)` when `peer` or `user` has used up its failures; `wait`
    /// is how long until both may try again.
    pub fn check(&self, peer: Option<IpAddr>, user: &str, now: Instant) -> Result<(), Duration> {
        let limiter = self.lock();
        let wait = keys(peer, user)
            .filter_map(|key| limiter.check(&key, now).err())
            .max();
        wait.map_or(Ok(()), Err)
    }

    /// Counts a failed login against `peer` and `user`.
    pub fn failed(&self, peer: Option<IpAddr>, user: &str, now: Instant) {
        let mut limiter = self.lock();
        for key in keys(peer, user) {
            limiter.fail(key, now);
        }
    }

    /// A successful login clears the user name's failures (not the peer's).
    pub fn succeeded(&self, user: &str) {
        self.lock().forget(&Key::User(capped(user)));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FailureLimiter<Key>> {
        // A panic while holding the lock leaves a map that is still valid.
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Names are capped so that a long one cannot make a big key.
fn capped(user: &str) -> String {
    user.chars().take(64).collect()
}

fn keys(peer: Option<IpAddr>, user: &str) -> impl Iterator<Item = Key> {
    peer.map(Key::Peer)
        .into_iter()
        .chain(std::iter::once(Key::User(capped(user))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_block_the_peer_and_the_name_for_the_window() {
        let limiter = LoginLimiter::default();
        let peer: Option<IpAddr> = Some("192.0.2.1".parse().unwrap());
        let other: Option<IpAddr> = Some("192.0.2.2".parse().unwrap());
        let t0 = Instant::now();
        for i in 0..MAX_FAILURES {
            assert!(limiter.check(peer, "alice", t0).is_ok(), "attempt {i}");
            limiter.failed(peer, "alice", t0);
        }
        let wait = limiter.check(peer, "alice", t0).unwrap_err();
        assert_eq!(wait, WINDOW);
        // Same peer, another name: still blocked (by address).
        assert!(limiter.check(peer, "bob", t0).is_err());
        // Another peer, same name: blocked (by name).
        assert!(limiter.check(other, "alice", t0).is_err());
        assert!(limiter.check(other, "bob", t0).is_ok());
        // After the window, allowed again.
        assert!(limiter.check(peer, "alice", t0 + WINDOW).is_ok());
        limiter.succeeded("alice");
        assert!(limiter.check(other, "alice", t0).is_ok());
    }

    #[test]
    fn the_map_is_bounded() {
        let limiter = LoginLimiter::default();
        let t0 = Instant::now();
        let n = MAX_KEYS + 50;
        for i in 0..n {
            for _ in 0..MAX_FAILURES {
                limiter.failed(
                    None,
                    &format!("user{i}"),
                    t0 + Duration::from_millis(i as u64),
                );
            }
        }
        assert!(limiter.lock().len() <= MAX_KEYS);
        // The newest name is still counted.
        let last = format!("user{}", n - 1);
        assert!(
            limiter
                .check(None, &last, t0 + Duration::from_secs(1))
                .is_err()
        );
    }
}
