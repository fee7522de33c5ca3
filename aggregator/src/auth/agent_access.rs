//! The gate every agent stream passes before anything it sends is read:
//! an agent token that is known and not revoked,
//! and, once the agent has said which host it is, the right to that host
//! id. Failures are logged with the peer's address and counted per peer
//! (an IPv6 peer by its /64); once a peer has too many, every further
//! failure from it is refused as [`Denied::TooManyFailures`]. A known, unrevoked token still
//! gets in from such an address, so that one broken agent behind a NAT does
//! not lock out the healthy ones beside it.
//!
//! The gate also holds each token to its [`TokenQuota`]: the host ids it
//! may own and the bytes per second its streams may send.
//!
//! The gate also watches the open streams ([`Connected`] knows which token
//! each came in with), so that revoking a token or reassigning a host
//! closes the stream within [`RECHECK`], whether the change came through
//! the API or through `fleetwatch-aggregator token revoke` in another
//! process.
//!
//! Protocol-neutral: ingest reads the token from the gRPC metadata and says
//! each [`Denied`] as a gRPC status (`ingest::gate`).

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::agent_tokens::{self, AgentToken, Claim};
use super::failure_limiter::FailureLimiter;
use super::login_limiter::network;
use super::quota::TokenQuota;
use crate::connected::{Connected, Denied};
use crate::model::now_ms;
use crate::store::{AgentTokenStore, StoreError};

/// How often live streams are checked against revocations and owners.
pub const RECHECK: Duration = Duration::from_secs(2);
/// Failed attempts a peer may make per [`FAILURE_WINDOW`].
pub const MAX_FAILURES: u32 = 10;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Peers remembered at most, so a spray of addresses cannot grow memory.
const MAX_PEERS: usize = 10_000;

#[derive(Clone)]
pub struct AgentGate {
    store: Arc<dyn AgentTokenStore>,
    failures: Arc<Mutex<FailureLimiter<Option<IpAddr>>>>,
    connected: Connected,
    quota: Arc<TokenQuota>,
}

impl AgentGate {
    pub fn new(store: Arc<dyn AgentTokenStore>, connected: Connected, quota: TokenQuota) -> Self {
        Self {
            store,
            failures: Arc::new(Mutex::new(FailureLimiter::new(
                MAX_FAILURES,
                FAILURE_WINDOW,
                MAX_PEERS,
            ))),
            connected,
            quota: Arc::new(quota),
        }
    }

    /// Checks the token a stream opened with: `secret` as the protocol
    /// carried it, or why it carried none (which counts as a failure too).
    /// Called before the stream's first message is read.
    pub async fn authenticate(
        &self,
        secret: Result<&str, &'static str>,
        peer: Option<SocketAddr>,
    ) -> Result<AgentToken, Denied> {
        let secret = match secret.and_then(agent_secret) {
            Ok(secret) => secret,
            Err(reason) => {
                return Err(self.refuse(peer, Denied::Unauthenticated(reason.to_owned())));
            }
        };
        let token = agent_tokens::lookup(self.store.as_ref(), secret)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "cannot look up an agent token");
                Denied::Unavailable("the aggregator cannot read its database; retry".to_owned())
            })?;
        match token {
            None => Err(self.refuse(
                peer,
                Denied::Unauthenticated("unknown agent token".to_owned()),
            )),
            Some(token) if token.is_revoked() => Err(self.refuse(
                peer,
                Denied::Unauthenticated(format!("agent token `{}` has been revoked", token.name)),
            )),
            Some(token) => {
                if let Err(e) = self.store.touch_agent_token(token.id, now_ms()).await {
                    tracing::warn!(error = %e, "cannot record an agent token's use");
                }
                Ok(token)
            }
        }
    }

    /// Checks that `token` may stream as `host_id`, claiming the host id if
    /// no token owns it yet.
    pub async fn authorize_host(
        &self,
        token: &AgentToken,
        host_id: &str,
        peer: Option<SocketAddr>,
    ) -> Result<(), Denied> {
        if let Some(bound) = &token.host_id
            && bound != host_id
        {
            return Err(self.refuse(
                peer,
                Denied::PermissionDenied(format!(
                    "agent token `{}` is for host `{bound}`, not `{host_id}`",
                    token.name
                )),
            ));
        }
        let claim = self
            .store
            .claim_host(
                host_id,
                token.id,
                now_ms(),
                Some(self.quota.hosts_per_token as u64),
            )
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "cannot record a host's owner");
                Denied::Unavailable("the aggregator cannot write to its database; retry".to_owned())
            })?;
        match claim {
            Claim::Owned => Ok(()),
            Claim::OwnedBy(owner) => Err(self.refuse(
                peer,
                Denied::PermissionDenied(format!(
                    "host id `{host_id}` belongs to agent token `{owner}`; an operator can move \
                     it with `fleetwatch-aggregator host reassign {host_id} {}`",
                    token.name
                )),
            )),
            // Not a failed attempt: the token is good, it is only full.
            Claim::TokenFull(owned) => {
                tracing::warn!(?peer, token = %token.name, host = %host_id, owned, "agent token owns as many host ids as it may");
                Err(Denied::OverQuota(format!(
                    "agent token `{}` already owns {owned} host ids, the most `[limits] \
                     hosts_per_token` allows; give this host its own token \
                     (`fleetwatch-aggregator token add NAME --host {host_id}`) or raise the limit",
                    token.name
                )))
            }
        }
    }

    /// How long a stream of `token` must wait before reading its next
    /// message, having just read `bytes` from it.
    pub fn pace(&self, token: &AgentToken, bytes: usize) -> Duration {
        let charge = self.quota.charge(token.id, bytes, Instant::now());
        if charge.warn {
            tracing::warn!(
                token = %token.name,
                bytes_per_second = self.quota.bytes_per_second(),
                wait_ms = charge.wait.as_millis() as u64,
                "agent token over its byte budget (`[limits] bytes_per_second_per_token`); reading its streams more slowly"
            );
        }
        charge.wait
    }

    /// Counts a failure of `peer`; the answer, which is
    /// [`Denied::TooManyFailures`] once the peer has failed too often.
    fn refuse(&self, peer: Option<SocketAddr>, denied: Denied) -> Denied {
        let key = peer.map(|p| network(p.ip()));
        let now = Instant::now();
        let blocked = match self.failures.lock() {
            Ok(mut failures) => {
                let blocked = failures.check(&key, now);
                failures.fail(key, now);
                blocked
            }
            Err(_) => Ok(()),
        };
        match blocked {
            Ok(()) => {
                tracing::warn!(?peer, ?denied, "agent refused");
                denied
            }
            Err(wait) => {
                tracing::debug!(
                    ?peer,
                    reason = denied.message(),
                    "agent refused: too many failed attempts"
                );
                Denied::TooManyFailures(format!(
                    "too many failed attempts from this address; retry in {} s",
                    wait.as_secs().max(1)
                ))
            }
        }
    }

    /// Closes every open stream of token `token_id` now.
    pub fn close_token(&self, token_id: i64, name: &str) {
        self.connected.close_where(|_, token| {
            (token == token_id)
                .then(|| Denied::Unauthenticated(format!("agent token `{name}` has been revoked")))
        });
    }

    /// Compares live streams with the database every [`RECHECK`] until
    /// `shutdown`.
    pub async fn watch(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(RECHECK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if self.connected.is_empty() {
                continue;
            }
            if let Err(e) = self.recheck().await {
                tracing::warn!(error = %e, "cannot recheck agent tokens");
            }
        }
    }

    async fn recheck(&self) -> Result<(), StoreError> {
        let revoked: HashSet<i64> = self
            .store
            .revoked_agent_token_ids()
            .await?
            .into_iter()
            .collect();
        let owners: HashMap<String, i64> = self
            .store
            .host_owners()
            .await?
            .into_iter()
            .map(|o| (o.host_id, o.token_id))
            .collect();
        self.connected.close_where(|host_id, token_id| {
            if revoked.contains(&token_id) {
                Some(Denied::Unauthenticated(
                    "this agent token has been revoked".to_owned(),
                ))
            } else if owners.get(host_id).is_some_and(|owner| *owner != token_id) {
                Some(Denied::PermissionDenied(format!(
                    "host id `{host_id}` has been reassigned to another agent token"
                )))
            } else {
                None
            }
        });
        Ok(())
    }
}

/// `secret` when it is an agent token at all (not, say, an API token).
fn agent_secret(secret: &str) -> Result<&str, &'static str> {
    if secret.starts_with(agent_tokens::PREFIX) {
        Ok(secret)
    } else {
        Err("not an agent token (agent tokens start with fwa_)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_agent_tokens_are_looked_up() {
        assert_eq!(agent_secret("fwa_abc"), Ok("fwa_abc"));
        assert!(agent_secret("fwk_abc").is_err());
    }
}
