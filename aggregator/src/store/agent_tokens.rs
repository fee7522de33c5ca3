//! Agent tokens and host ownership as stored: the [`AgentTokenStore`] trait
//! and its records. Secrets never reach the store, only their SHA-256; making
//! secrets, reserved names and the rules of enrollment are `auth::agent_tokens`'s.

use serde::Serialize;

use super::Result;
use crate::model::TimestampMs;

/// An agent token as stored (its secret is not).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AgentToken {
    #[serde(skip)]
    pub id: i64,
    pub name: String,
    /// When set, the token may stream only as this host.
    pub host_id: Option<String>,
    pub created_ms: TimestampMs,
    pub revoked_ms: Option<TimestampMs>,
    pub last_used_ms: Option<TimestampMs>,
}

impl AgentToken {
    pub fn is_revoked(&self) -> bool {
        self.revoked_ms.is_some()
    }
}

/// A host id and the token that owns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Owner {
    pub host_id: String,
    #[serde(skip)]
    pub token_id: i64,
    pub token: String,
    pub since_ms: TimestampMs,
}

/// What claiming a host id for a token found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The token owns the host id (it just claimed it, or did before).
    Owned,
    /// Another token owns it.
    OwnedBy(String),
    /// Nobody owns it, but the token already owns this many host ids, the
    /// most it may.
    TokenFull(u64),
}

/// Agent tokens (by name, and by the SHA-256 of their secret) and which
/// token owns which host id.
#[async_trait::async_trait]
pub trait AgentTokenStore: Send + Sync {
    /// Stores a new token; `None` when the name is taken.
    async fn insert_agent_token(
        &self,
        name: &str,
        secret_sha256: &str,
        host_id: Option<&str>,
        now: TimestampMs,
    ) -> Result<Option<AgentToken>>;

    /// Every token, oldest first.
    async fn agent_tokens(&self) -> Result<Vec<AgentToken>>;

    async fn agent_token_by_name(&self, name: &str) -> Result<Option<AgentToken>>;

    /// The token whose secret hashes to `secret_sha256`, revoked or not.
    async fn agent_token_by_secret(&self, secret_sha256: &str) -> Result<Option<AgentToken>>;

    /// Notes that token `id` was used at `now`.
    async fn touch_agent_token(&self, id: i64, now: TimestampMs) -> Result<()>;

    /// Revokes the token named `name` unless it already is; whether this
    /// call revoked it.
    async fn revoke_agent_token(&self, name: &str, now: TimestampMs) -> Result<bool>;

    /// Ids of revoked tokens.
    async fn revoked_agent_token_ids(&self) -> Result<Vec<i64>>;

    /// Makes the token `name` (with no host) hold this secret and be in
    /// force, creating it if need be; its id and the hosts it owns stay.
    async fn put_agent_token_secret(
        &self,
        name: &str,
        secret_sha256: &str,
        now: TimestampMs,
    ) -> Result<()>;

    async fn count_agent_tokens(&self) -> Result<u64>;

    /// Claims `host_id` for token `token_id` unless another token owns it,
    /// or (with `max_hosts`) the token already owns that many host ids. The
    /// count and the claim are one atomic step, so streams connecting at
    /// once cannot take a token past its cap.
    async fn claim_host(
        &self,
        host_id: &str,
        token_id: i64,
        now: TimestampMs,
        max_hosts: Option<u64>,
    ) -> Result<Claim>;

    /// Gives `host_id` to token `token_id`, whoever owned it.
    async fn set_host_owner(&self, host_id: &str, token_id: i64, now: TimestampMs) -> Result<()>;

    /// Every owned host id, by host id.
    async fn host_owners(&self) -> Result<Vec<Owner>>;
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// What every backend must do; run on each one.
    pub(crate) async fn exercise_agent_tokens(store: &dyn AgentTokenStore) {
        assert_eq!(store.count_agent_tokens().await.unwrap(), 0);
        let a = store
            .insert_agent_token("a", "hash-a", None, 1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((a.name.as_str(), a.host_id.as_deref()), ("a", None));
        let b = store
            .insert_agent_token("b", "hash-b", Some("web-1"), 2)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(b.host_id.as_deref(), Some("web-1"));
        assert_eq!(
            store
                .insert_agent_token("a", "hash-other", None, 3)
                .await
                .unwrap(),
            None,
            "a taken name"
        );
        assert_eq!(store.count_agent_tokens().await.unwrap(), 2);
        let names: Vec<_> = store
            .agent_tokens()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(names, ["a", "b"], "oldest first");
        assert_eq!(
            store.agent_token_by_secret("hash-b").await.unwrap(),
            Some(b.clone())
        );
        assert_eq!(store.agent_token_by_secret("nope").await.unwrap(), None);
        assert_eq!(store.agent_token_by_name("nope").await.unwrap(), None);

        store.touch_agent_token(a.id, 5).await.unwrap();
        let touched = store.agent_token_by_name("a").await.unwrap().unwrap();
        assert_eq!(touched.last_used_ms, Some(5));

        assert!(store.revoke_agent_token("a", 6).await.unwrap());
        assert!(!store.revoke_agent_token("a", 7).await.unwrap(), "once");
        assert!(!store.revoke_agent_token("nope", 7).await.unwrap());
        let revoked = store.agent_token_by_name("a").await.unwrap().unwrap();
        assert_eq!(revoked.revoked_ms, Some(6));
        assert_eq!(store.revoked_agent_token_ids().await.unwrap(), vec![a.id]);

        // Host ownership: the first claim wins until reassigned.
        assert_eq!(
            store.claim_host("h", b.id, 8, None).await.unwrap(),
            Claim::Owned
        );
        assert_eq!(
            store.claim_host("h", b.id, 9, None).await.unwrap(),
            Claim::Owned
        );
        assert_eq!(
            store.claim_host("h", a.id, 9, None).await.unwrap(),
            Claim::OwnedBy("b".into())
        );
        store.set_host_owner("h", a.id, 10).await.unwrap();
        assert_eq!(
            store.claim_host("h", a.id, 11, None).await.unwrap(),
            Claim::Owned
        );
        store.claim_host("g", b.id, 12, None).await.unwrap();
        let owners = store.host_owners().await.unwrap();
        let seen: Vec<_> = owners
            .iter()
            .map(|o| (o.host_id.as_str(), o.token.as_str(), o.since_ms))
            .collect();
        assert_eq!(seen, [("g", "b", 12), ("h", "a", 10)], "by host id");

        // A cap on the host ids one token owns: b owns g only now.
        assert_eq!(
            store.claim_host("k", b.id, 17, Some(1)).await.unwrap(),
            Claim::TokenFull(1)
        );
        assert_eq!(
            store.claim_host("g", b.id, 17, Some(1)).await.unwrap(),
            Claim::Owned,
            "a host it owns is not a new one"
        );
        assert_eq!(
            store.claim_host("h", b.id, 17, Some(1)).await.unwrap(),
            Claim::OwnedBy("a".into()),
            "another's host is refused as such, not as over the cap"
        );
        assert_eq!(
            store.claim_host("k", b.id, 18, Some(2)).await.unwrap(),
            Claim::Owned
        );
        assert_eq!(store.host_owners().await.unwrap().len(), 3);

        // A secret put under a name: made once, then replaced in place,
        // and back in force if it was revoked.
        store
            .put_agent_token_secret("cfg", "one", 13)
            .await
            .unwrap();
        let first = store.agent_token_by_secret("one").await.unwrap().unwrap();
        store.claim_host("c", first.id, 13, None).await.unwrap();
        assert!(store.revoke_agent_token("cfg", 14).await.unwrap());
        store
            .put_agent_token_secret("cfg", "two", 15)
            .await
            .unwrap();
        assert_eq!(store.agent_token_by_secret("one").await.unwrap(), None);
        let second = store.agent_token_by_secret("two").await.unwrap().unwrap();
        assert_eq!(second.id, first.id);
        assert!(!second.is_revoked());
        assert_eq!(
            store.claim_host("c", second.id, 16, None).await.unwrap(),
            Claim::Owned
        );
    }

    #[tokio::test]
    async fn sqlite_keeps_agent_tokens() {
        let store = crate::store::SqliteStore::in_memory().await.unwrap();
        exercise_agent_tokens(&store).await;
    }
}
