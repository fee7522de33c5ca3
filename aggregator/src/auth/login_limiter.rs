//! Login rate limiting, in memory, so that neither one client nor a botnet
//! gets more than a handful of guesses, and no attacker can keep a user out:
//!
//! - per address: at most [`MAX_FAILURES`] failed logins per [`WINDOW`]
//!   from one peer (an IPv6 peer counted by its /64, the block one client
//!   usually holds), whatever the names;
//! - per name: at most [`MAX_NAME_FAILURES`] per [`WINDOW`] from all
//!   addresses together, against a botnet working on one account; but an
//!   address that has signed in as that name before (the last
//!   [`TRUSTED_PER_NAME`] such addresses since the aggregator started) is
//!   not held back by the name's count, so an attacker elsewhere cannot
//!   lock the owner out from where they usually sign in.
//!
//! Each count is a [`FailureLimiter`], bounded at [`MAX_KEYS`] keys. An
//! attempt is counted as a failure when it starts ([`LoginLimiter::attempt`])
//! and taken back if it succeeds, so that many logins sent at once cannot
//! all pass the check before the first failure is counted.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::failure_limiter::FailureLimiter;

pub const MAX_FAILURES: u32 = 5;
/// Failures of one name from all addresses together, per window.
pub const MAX_NAME_FAILURES: u32 = 30;
pub const WINDOW: Duration = Duration::from_secs(60);
pub const MAX_KEYS: usize = 10_000;
/// Addresses remembered per name as ones it signed in from.
pub const TRUSTED_PER_NAME: usize = 16;

/// Who has failed, and where each name has signed in from.
#[derive(Debug)]
struct State {
    /// Per peer network; `None` (no address known) counts as one peer.
    peers: FailureLimiter<Option<IpAddr>>,
    names: FailureLimiter<String>,
    trusted: HashMap<String, Vec<IpAddr>>,
}

impl State {
    fn trusts(&self, peer: Option<IpAddr>, user: &str) -> bool {
        peer.is_some_and(|ip| self.trusted.get(user).is_some_and(|ips| ips.contains(&ip)))
    }

    fn wait(&self, peer: Option<IpAddr>, user: &str, now: Instant) -> Option<Duration> {
        let by_peer = self.peers.check(&peer, now).err();
        let by_name = if self.trusts(peer, user) {
            None
        } else {
            self.names.check(&user.to_owned(), now).err()
        };
        by_peer.max(by_name)
    }

    fn trust(&mut self, peer: IpAddr, user: String) {
        if !self.trusted.contains_key(&user) && self.trusted.len() >= MAX_KEYS {
            // Bounded: forget some name's addresses (it can sign in again).
            if let Some(name) = self.trusted.keys().next().cloned() {
                self.trusted.remove(&name);
            }
        }
        let ips = self.trusted.entry(user).or_default();
        ips.retain(|ip| *ip != peer);
        ips.push(peer);
        if ips.len() > TRUSTED_PER_NAME {
            ips.remove(0);
        }
    }
}

/// Shared by every request; cheap to clone.
#[derive(Debug, Clone)]
pub struct LoginLimiter {
    // A std mutex: held only for a few map operations, never across an await.
    state: Arc<Mutex<State>>,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                peers: FailureLimiter::new(MAX_FAILURES, WINDOW, MAX_KEYS),
                names: FailureLimiter::new(MAX_NAME_FAILURES, WINDOW, MAX_KEYS),
                trusted: HashMap::new(),
            })),
        }
    }
}

impl LoginLimiter {
    /// `Err(wait)` when `peer` or `user` has used up its failures; `wait`
    /// is how long until both may try again.
    pub fn check(&self, peer: Option<IpAddr>, user: &str, now: Instant) -> Result<(), Duration> {
        let peer = peer.map(network);
        self.lock()
            .wait(peer, &capped(user), now)
            .map_or(Ok(()), Err)
    }

    /// Starts a login attempt: `Err(wait)` as [`Self::check`], otherwise
    /// counts it as a failure of `peer` and `user` until
    /// [`Self::succeeded`] takes it back.
    pub fn attempt(&self, peer: Option<IpAddr>, user: &str, now: Instant) -> Result<(), Duration> {
        let peer = peer.map(network);
        let user = capped(user);
        let mut state = self.lock();
        if let Some(wait) = state.wait(peer, &user, now) {
            return Err(wait);
        }
        state.peers.fail(peer, now);
        state.names.fail(user, now);
        Ok(())
    }

    /// An attempt succeeded: the peer's and the name's counts lose it
    /// again, and the peer is remembered as one the name signs in from.
    pub fn succeeded(&self, peer: Option<IpAddr>, user: &str) {
        let peer = peer.map(network);
        let user = capped(user);
        let mut state = self.lock();
        state.peers.undo(&peer);
        state.names.undo(&user);
        if let Some(ip) = peer {
            state.trust(ip, user);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves maps that are still valid.
        self.state
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_block_the_peer_for_the_window() {
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
        // Another peer, same name: five failures do not lock the name.
        assert!(limiter.check(other, "alice", t0).is_ok());
        assert!(limiter.check(other, "bob", t0).is_ok());
        // After the window, allowed again.
        assert!(limiter.check(peer, "alice", t0 + WINDOW).is_ok());
    }

    /// Issue 12, item 9: many addresses guessing one name lock it, but not
    /// for the address its owner signs in from.
    #[test]
    fn a_botnet_locks_a_name_but_not_for_where_its_owner_signs_in() {
        let limiter = LoginLimiter::default();
        let home: Option<IpAddr> = Some("198.51.100.7".parse().unwrap());
        let t0 = Instant::now();
        limiter.attempt(home, "admin", t0).unwrap();
        limiter.succeeded(home, "admin");
        let bot = |i: u32| -> Option<IpAddr> { Some(IpAddr::from([203, 0, 113, i as u8])) };
        let mut failed = 0;
        for i in 0..60 {
            if limiter.attempt(bot(i), "admin", t0).is_ok() {
                failed += 1;
            }
        }
        assert_eq!(
            failed, MAX_NAME_FAILURES,
            "the name-wide count holds the botnet"
        );
        let fresh: Option<IpAddr> = Some("192.0.2.200".parse().unwrap());
        assert!(limiter.check(fresh, "admin", t0).is_err());
        // The owner's address is not held back, whatever the botnet does.
        assert!(limiter.attempt(home, "admin", t0).is_ok());
        limiter.succeeded(home, "admin");
        // And the name's lock ends with its window.
        assert!(limiter.check(fresh, "admin", t0 + WINDOW).is_ok());
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
                    Some(IpAddr::from(std::net::Ipv4Addr::from(i as u32))),
                    &format!("user{i}"),
                    t0 + Duration::from_millis(i as u64),
                );
            }
        }
        assert!(limiter.lock().names.len() <= MAX_KEYS);
        assert!(limiter.lock().peers.len() <= MAX_KEYS);
    }
}
