//! Who is connected: the open agent streams. Ingest adds and removes
//! them, the API reports from them who is online, and the agent access
//! checks ([`crate::auth::agent_access`]) end the streams whose token was
//! revoked or whose host was reassigned. Protocol-neutral: a stream is
//! ended with a [`Denied`], which ingest says as a gRPC status.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// Why an agent is refused, or its open stream ended, before any protocol
/// says it (ingest maps each to a gRPC status code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No valid agent token.
    Unauthenticated(String),
    /// The token may not stream as this host.
    PermissionDenied(String),
    /// This address failed too often; it may retry later.
    TooManyFailures(String),
    /// The token is good but owns as many host ids as it may.
    OverQuota(String),
    /// The aggregator cannot check right now (its database); retry.
    Unavailable(String),
}

impl Denied {
    /// What the agent is told.
    pub fn message(&self) -> &str {
        match self {
            Self::Unauthenticated(m)
            | Self::PermissionDenied(m)
            | Self::TooManyFailures(m)
            | Self::OverQuota(m)
            | Self::Unavailable(m) => m,
        }
    }
}

/// One open agent stream.
#[derive(Debug)]
struct Stream {
    host_id: String,
    token_id: i64,
    /// Ends the stream with this (its token was revoked, its host
    /// reassigned).
    close: oneshot::Sender<Denied>,
}

/// The open agent streams, by connection number: what the API reports as
/// online, and what the [`AgentGate`](crate::auth::agent_access::AgentGate) closes when access is withdrawn. A
/// host counts as connected while any stream of it is open, so a stale
/// stream ending does not mark a reconnected host offline.
#[derive(Debug, Default, Clone)]
pub struct Connected {
    inner: Arc<Mutex<HashMap<u64, Stream>>>,
}

impl Connected {
    /// Registers a stream; the receiver yields why to end it with.
    pub fn insert(&self, conn: u64, host_id: &str, token_id: i64) -> oneshot::Receiver<Denied> {
        let (close, closed) = oneshot::channel();
        if let Ok(mut map) = self.inner.lock() {
            let host_id = host_id.to_owned();
            map.insert(
                conn,
                Stream {
                    host_id,
                    token_id,
                    close,
                },
            );
        }
        closed
    }

    /// Forgets a stream; true when it was its host's last one.
    pub fn remove(&self, conn: u64, host_id: &str) -> bool {
        match self.inner.lock() {
            Ok(mut map) => {
                map.remove(&conn);
                !map.values().any(|s| s.host_id == host_id)
            }
            Err(_) => false,
        }
    }

    /// Hosts with an open stream.
    pub fn count(&self) -> usize {
        self.inner.lock().map_or(0, |m| {
            m.values()
                .map(|s| s.host_id.as_str())
                .collect::<std::collections::HashSet<_>>()
                .len()
        })
    }

    /// The hosts with an open stream, each once.
    pub fn host_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.inner.lock().map_or_else(
            |_| Vec::new(),
            |m| m.values().map(|s| s.host_id.clone()).collect(),
        );
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The hosts with an open stream, read in one pass under one lock:
    /// what a listing of every host looks its hosts up in (asking
    /// `contains` per host scans every stream per host).
    pub fn online(&self) -> std::collections::HashSet<String> {
        self.inner.lock().map_or_else(
            |_| Default::default(),
            |m| m.values().map(|s| s.host_id.clone()).collect(),
        )
    }

    pub fn contains(&self, host_id: &str) -> bool {
        self.inner
            .lock()
            .is_ok_and(|m| m.values().any(|s| s.host_id == host_id))
    }

    pub fn is_empty(&self) -> bool {
        self.inner.lock().map_or(true, |m| m.is_empty())
    }

    /// Ends every stream for which `why(host_id, token_id)` gives a reason.
    pub fn close_where(&self, mut why: impl FnMut(&str, i64) -> Option<Denied>) {
        let Ok(mut map) = self.inner.lock() else {
            return;
        };
        let doomed: Vec<(u64, Denied)> = map
            .iter()
            .filter_map(|(conn, s)| why(&s.host_id, s.token_id).map(|reason| (*conn, reason)))
            .collect();
        for (conn, reason) in doomed {
            if let Some(s) = map.remove(&conn) {
                tracing::info!(host = %s.host_id, conn, reason = reason.message(), "closing agent stream");
                let _ = s.close.send(reason);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_is_online_while_any_of_its_streams_is_open() {
        let connected = Connected::default();
        let _old = connected.insert(1, "web-1", 7);
        let _new = connected.insert(2, "web-1", 7);
        let _other = connected.insert(3, "db-1", 8);
        assert_eq!(connected.count(), 2);
        // The stale stream ends after the host reconnected: still online.
        assert!(!connected.remove(1, "web-1"));
        assert!(connected.contains("web-1"));
        assert_eq!(
            connected.online(),
            ["web-1", "db-1"].map(String::from).into_iter().collect()
        );
        assert!(connected.remove(2, "web-1"));
        assert!(!connected.contains("web-1"));
        assert_eq!(
            connected.online(),
            ["db-1".to_owned()].into_iter().collect()
        );
        assert_eq!(connected.count(), 1);
    }

    #[test]
    fn close_where_ends_the_chosen_streams_with_their_status() {
        let connected = Connected::default();
        let mut a = connected.insert(1, "web-1", 7);
        let mut b = connected.insert(2, "db-1", 8);
        connected.close_where(|_, token| {
            (token == 7).then(|| Denied::Unauthenticated("revoked".into()))
        });
        assert_eq!(
            a.try_recv().unwrap(),
            Denied::Unauthenticated("revoked".into())
        );
        assert!(b.try_recv().is_err(), "db-1 was not closed");
        assert!(!connected.contains("web-1"));
        assert!(connected.contains("db-1"));
    }
}
