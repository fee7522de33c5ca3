//! Login rate limiting, in memory: at most [`MAX_FAILURES`] failed logins
//! per [`WINDOW`] from one peer address, and as many for one user name
//! (whatever the address), so that neither one client nor a botnet working
//! on one account gets more than a handful of guesses a minute. The map is
//! capped at [`MAX_KEYS`] entries: stale ones go first, then the least
//! recently failed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const MAX_FAILURES: usize = 5;
pub const WINDOW: Duration = Duration::from_secs(60);
pub const MAX_KEYS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Peer(IpAddr),
    User(String),
}

/// Shared by every request; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct LoginLimiter {
    // A std mutex: held only for a few map operations, never across an await.
    failures: Arc<Mutex<HashMap<Key, Vec<Instant>>>>,
}

impl LoginLimiter {
    /// `Err(wait)` when `peer` or `user` has used up its failures; `wait`
    /// is how long until the oldest of them leaves the window.
    pub fn check(&self, peer: Option<IpAddr>, user: &str, now: Instant) -> Result<(), Duration> {
        let map = self.lock();
        let mut wait = Duration::ZERO;
        for key in keys(peer, user) {
            if let Some(times) = map.get(&key) {
                let recent: Vec<&Instant> = times
                    .iter()
                    .filter(|t| now.duration_since(**t) < WINDOW)
                    .collect();
                if recent.len() >= MAX_FAILURES
                    && let Some(oldest) = recent.first()
                {
                    wait = wait.max(WINDOW.saturating_sub(now.duration_since(**oldest)));
                }
            }
        }
        if wait.is_zero() { Ok(()) } else { Err(wait) }
    }

    /// Counts a failed login against `peer` and `user`.
    pub fn failed(&self, peer: Option<IpAddr>, user: &str, now: Instant) {
        let mut map = self.lock();
        for key in keys(peer, user) {
            if !map.contains_key(&key) && map.len() >= MAX_KEYS {
                evict(&mut map, now);
            }
            let times = map.entry(key).or_default();
            times.retain(|t| now.duration_since(*t) < WINDOW);
            times.push(now);
            if times.len() > MAX_FAILURES {
                times.remove(0);
            }
        }
    }

    /// A successful login clears the user name's failures (not the peer's).
    pub fn succeeded(&self, user: &str) {
        self.lock().remove(&Key::User(user.to_owned()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Vec<Instant>>> {
        // A panic while holding the lock leaves a map that is still valid.
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

fn keys(peer: Option<IpAddr>, user: &str) -> impl Iterator<Item = Key> {
    // Names are capped so that a long one cannot make a big key.
    let user: String = user.chars().take(64).collect();
    peer.map(Key::Peer)
        .into_iter()
        .chain(std::iter::once(Key::User(user)))
}

/// Makes room for one more key.
fn evict(map: &mut HashMap<Key, Vec<Instant>>, now: Instant) {
    map.retain(|_, times| {
        times
            .last()
            .is_some_and(|t| now.duration_since(*t) < WINDOW)
    });
    if map.len() >= MAX_KEYS
        && let Some(oldest) = map
            .iter()
            .min_by_key(|(_, times)| times.last().copied())
            .map(|(k, _)| k.clone())
    {
        map.remove(&oldest);
    }
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
        for i in 0..(MAX_KEYS + 50) {
            limiter.failed(
                None,
                &format!("user{i}"),
                t0 + Duration::from_millis(i as u64),
            );
        }
        assert!(limiter.len() <= MAX_KEYS);
        // The newest name is still counted.
        let last = format!("user{}", MAX_KEYS + 49);
        assert!(limiter.lock().contains_key(&Key::User(last)));
    }
}
