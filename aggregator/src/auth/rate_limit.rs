//! Login rate limiting, in memory: at most [`MAX_FAILURES`] failed logins
//! per [`WINDOW`] from one peer address, and as many for one user name
//! (whatever the address), so that neither one client nor a botnet working
//! on one account gets more than a handful of guesses a minute. The count
//! is a [`FailureLimiter`], bounded at [`MAX_KEYS`] keys.
//!
//! An attempt is counted as a failure when it starts ([`LoginLimiter::attempt`])
//! and taken back if it succeeds, so that many logins sent at once cannot
//! all pass the check before the first failure is counted. An IPv6 peer is
//! counted by its /64, the block one client usually holds.

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

    /// Starts a login attempt: `Err(wait)` as [`Self::check`], otherwise
    /// counts it as a failure of `peer` and `user` until
    /// [`Self::succeeded`] takes it back.
    pub fn attempt(&self, peer: Option<IpAddr>, user: &str, now: Instant) -> Result<(), Duration> {
        let mut limiter = self.lock();
        let wait = keys(peer, user)
            .filter_map(|key| limiter.check(&key, now).err())
            .max();
        if let Some(wait) = wait {
            return Err(wait);
        }
        for key in keys(peer, user) {
            limiter.fail(key, now);
        }
        Ok(())
    }

    /// An attempt succeeded: the peer's count loses it again, and the user
    /// name's failures are cleared.
    pub fn succeeded(&self, peer: Option<IpAddr>, user: &str) {
        let mut limiter = self.lock();
        if let Some(peer) = peer {
            limiter.undo(&Key::Peer(network(peer)));
        }
        limiter.forget(&Key::User(capped(user)));
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

/// The address a peer is counted by: itself, or its /64 for IPv6.
pub fn network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut octets = v6.octets();
                octets[8..].fill(0);
                IpAddr::V6(octets.into())
            }
        },
    }
}

fn keys(peer: Option<IpAddr>, user: &str) -> impl Iterator<Item = Key> {
    peer.map(|ip| Key::Peer(network(ip)))
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
            assert!(limiter.attempt(peer, "alice", t0).is_ok(), "attempt {i}");
        }
        assert!(limiter.attempt(peer, "alice", t0).is_err());
        let wait = limiter.check(peer, "alice", t0).unwrap_err();
        assert_eq!(wait, WINDOW);
        // Same peer, another name: still blocked (by address).
        assert!(limiter.check(peer, "bob", t0).is_err());
        // Another peer, same name: blocked (by name).
        assert!(limiter.check(other, "alice", t0).is_err());
        assert!(limiter.check(other, "bob", t0).is_ok());
        // After the window, allowed again.
        assert!(limiter.check(peer, "alice", t0 + WINDOW).is_ok());
        limiter.succeeded(other, "alice");
        assert!(limiter.check(other, "alice", t0).is_ok());
    }

    #[test]
    fn attempts_count_before_they_finish_and_successes_give_theirs_back() {
        let limiter = LoginLimiter::default();
        let peer: Option<IpAddr> = Some("192.0.2.9".parse().unwrap());
        let t0 = Instant::now();
        // Many at once: only MAX_FAILURES get through the check.
        let started = (0..50)
            .filter(|_| limiter.attempt(peer, "carol", t0).is_ok())
            .count();
        assert_eq!(started, MAX_FAILURES as usize);

        // A user who signs in often from one address is never held back.
        let home: Option<IpAddr> = Some("192.0.2.10".parse().unwrap());
        for _ in 0..20 {
            limiter.attempt(home, "dave", t0).unwrap();
            limiter.succeeded(home, "dave");
        }
    }

    #[test]
    fn ipv6_peers_count_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(network(a), network(b));
        assert_ne!(network(a), network(c));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(network(mapped), "192.0.2.1".parse::<IpAddr>().unwrap());
        let limiter = LoginLimiter::default();
        let t0 = Instant::now();
        for i in 0..MAX_FAILURES {
            limiter.attempt(Some(a), &format!("u{i}"), t0).unwrap();
        }
        assert!(limiter.attempt(Some(b), "other", t0).is_err());
        assert!(limiter.attempt(Some(c), "other", t0).is_ok());
    }

    #[test]
    fn the_map_is_bounded() {
        let limiter = LoginLimiter::default();
        let t0 = Instant::now();
        let n = MAX_KEYS + 50;
        for i in 0..n {
            for _ in 0..MAX_FAILURES {
                let _ = limiter.attempt(
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
