//! API tokens as stored: the [`ApiTokenStore`] trait and its record. Only
//! the SHA-256 of a token's secret is kept; making secrets and deciding how
//! often `last_used_ms` is written are `auth::api_tokens`'s.

use serde::Serialize;

use super::Result;
use crate::model::{Role, TimestampMs};

/// A token as `api-token list` shows it (never the secret).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub created_ms: TimestampMs,
    pub revoked_ms: Option<TimestampMs>,
    pub last_used_ms: Option<TimestampMs>,
}

/// What revoking a token by name did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// It was in force and is revoked now.
    Now,
    /// It had been revoked before; nothing changed.
    Already,
    /// There is no token by that name.
    NoSuchToken,
}

/// API tokens by name and by the SHA-256 of their secret. Revoked tokens
/// stay, with when, and keep their name.
#[async_trait::async_trait]
pub trait ApiTokenStore: Send + Sync {
    /// Stores a new token; `None` when the name is taken.
    async fn insert_api_token(
        &self,
        name: &str,
        secret_sha256: &str,
        role: Role,
        now: TimestampMs,
    ) -> Result<Option<ApiToken>>;

    /// Every token, by name, revoked ones included.
    async fn api_tokens(&self) -> Result<Vec<ApiToken>>;

    /// The token whose secret hashes to `secret_sha256`, revoked or not.
    async fn api_token_by_secret(&self, secret_sha256: &str) -> Result<Option<ApiToken>>;

    /// Notes that token `id` was used at `now`.
    async fn touch_api_token(&self, id: i64, now: TimestampMs) -> Result<()>;

    async fn revoke_api_token(&self, name: &str, now: TimestampMs) -> Result<Revoked>;
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// What every backend must do; run on each one.
    pub(crate) async fn exercise_api_tokens(store: &dyn ApiTokenStore) {
        let zed = store
            .insert_api_token("zed", "hash-z", Role::Admin, 1)
            .await
            .unwrap()
            .unwrap();
        let backup = store
            .insert_api_token("backup", "hash-b", Role::Read, 2)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((backup.role, backup.last_used_ms), (Role::Read, None));
        assert_eq!(
            store
                .insert_api_token("zed", "hash-x", Role::Read, 3)
                .await
                .unwrap(),
            None,
            "a taken name"
        );
        assert_eq!(
            store.api_tokens().await.unwrap(),
            [backup.clone(), zed.clone()],
            "by name"
        );
        assert_eq!(
            store.api_token_by_secret("hash-z").await.unwrap(),
            Some(zed.clone())
        );
        assert_eq!(store.api_token_by_secret("nope").await.unwrap(), None);

        store.touch_api_token(zed.id, 7).await.unwrap();
        let touched = store.api_token_by_secret("hash-z").await.unwrap().unwrap();
        assert_eq!(touched.last_used_ms, Some(7));

        assert_eq!(
            store.revoke_api_token("zed", 8).await.unwrap(),
            Revoked::Now
        );
        assert_eq!(
            store.revoke_api_token("zed", 9).await.unwrap(),
            Revoked::Already
        );
        assert_eq!(
            store.revoke_api_token("nope", 9).await.unwrap(),
            Revoked::NoSuchToken
        );
        let revoked = store.api_token_by_secret("hash-z").await.unwrap().unwrap();
        assert_eq!(revoked.revoked_ms, Some(8), "kept, with when");
        assert_eq!(
            store
                .insert_api_token("zed", "hash-y", Role::Read, 10)
                .await
                .unwrap(),
            None,
            "a revoked token keeps its name"
        );
    }

    #[tokio::test]
    async fn sqlite_keeps_api_tokens() {
        let store = crate::store::SqliteStore::in_memory().await.unwrap();
        exercise_api_tokens(&store).await;
    }
}
