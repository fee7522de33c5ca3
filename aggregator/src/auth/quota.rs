//! What one agent token may take: how many host ids it may own
//! (`[limits] hosts_per_token`) and how many bytes of batches per second
//! all its streams together may send (`[limits] bytes_per_second_per_token`).
//!
//! The host cap is checked when a token claims a host id it does not own
//! yet (the store counts atomically with the claim); a stream over it is
//! refused with `RESOURCE_EXHAUSTED`. The byte budget never refuses
//! anything: a stream over its token's budget is simply not read until the
//! budget allows, so HTTP/2 flow control holds the agent back and its
//! samples wait in its spool instead of being lost. A token may burst one
//! second's worth of budget; one message larger than that still gets
//! through, after the wait it costs.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How much budget a token may save up: one second of its rate.
const BURST: Duration = Duration::from_secs(1);
/// How often a throttled token is logged at most.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// The per-token caps in force.
#[derive(Debug)]
pub struct TokenQuota {
    /// Most host ids one token may own.
    pub hosts_per_token: usize,
    bytes_per_second: f64,
    budgets: Mutex<HashMap<i64, Budget>>,
}

#[derive(Debug)]
struct Budget {
    /// When everything this token sent so far is paid for (GCRA's
    /// theoretical arrival time).
    paid_until: Instant,
    warned: Option<Instant>,
}

/// What [`TokenQuota::charge`] decided.
#[derive(Debug, PartialEq, Eq)]
pub struct Charge {
    /// How long the stream must wait before it reads its next message.
    pub wait: Duration,
    /// The wait is the first in [`WARN_EVERY`] for this token: log it.
    pub warn: bool,
}

impl TokenQuota {
    pub fn new(hosts_per_token: usize, bytes_per_second_per_token: u64) -> Self {
        Self {
            hosts_per_token,
            bytes_per_second: bytes_per_second_per_token.max(1) as f64,
            budgets: Mutex::default(),
        }
    }

    /// Charges `bytes` just read from a stream of token `token_id` to the
    /// token's budget. One entry per token id is kept: tokens are made by
    /// operators, so their number is bounded by the database, not by agents.
    pub fn charge(&self, token_id: i64, bytes: usize, now: Instant) -> Charge {
        let Ok(mut budgets) = self.budgets.lock() else {
            return Charge {
                wait: Duration::ZERO,
                warn: false,
            };
        };
        let budget = budgets.entry(token_id).or_insert(Budget {
            paid_until: now,
            warned: None,
        });
        budget.paid_until = budget.paid_until.max(now)
            + Duration::from_secs_f64(bytes as f64 / self.bytes_per_second);
        let wait = budget.paid_until.saturating_duration_since(now + BURST);
        let warn = !wait.is_zero()
            && budget
                .warned
                .is_none_or(|at| now.duration_since(at) >= WARN_EVERY);
        if warn {
            budget.warned = Some(now);
        }
        Charge { wait, warn }
    }

    pub fn bytes_per_second(&self) -> u64 {
        self.bytes_per_second as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_bursts_one_second_then_is_held_to_its_rate() {
        let quota = TokenQuota::new(10, 1000);
        let t0 = Instant::now();
        // One second's worth goes through at once.
        assert_eq!(quota.charge(1, 1000, t0).wait, Duration::ZERO);
        // The next 500 bytes must wait half a second, and the stream is told once.
        let c = quota.charge(1, 500, t0);
        assert_eq!(c.wait, Duration::from_millis(500));
        assert!(c.warn);
        assert!(!quota.charge(1, 500, t0).warn, "warned once a minute");
        // Another token has its own budget.
        assert_eq!(quota.charge(2, 1000, t0).wait, Duration::ZERO);
        // Time pays the debt back: 2 s later the token owes nothing.
        let later = t0 + Duration::from_secs(3);
        assert_eq!(quota.charge(1, 100, later).wait, Duration::ZERO);
    }

    #[test]
    fn one_message_bigger_than_the_burst_gets_through_after_its_wait() {
        let quota = TokenQuota::new(10, 1000);
        let t0 = Instant::now();
        assert_eq!(quota.charge(1, 5000, t0).wait, Duration::from_secs(4));
    }
}
