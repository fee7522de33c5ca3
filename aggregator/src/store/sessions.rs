//! Dashboard sessions as stored: the [`SessionStore`] trait and its record.
//! A session is kept by the SHA-256 of its secret; making secrets, cookies
//! and deciding what is expired are `auth::sessions`'s.

use super::Result;
use crate::model::{Role, TimestampMs};

/// Whose a session is, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user: String,
    pub role: Role,
    pub expires_ms: TimestampMs,
}

/// Sessions by the SHA-256 of their secret.
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync {
    async fn insert_session(
        &self,
        secret_sha256: &str,
        user_id: i64,
        created_ms: TimestampMs,
        expires_ms: TimestampMs,
    ) -> Result<()>;

    /// The session and its user, expired or not.
    async fn session(&self, secret_sha256: &str) -> Result<Option<Session>>;

    /// Ends a session; an unknown one is fine.
    async fn delete_session(&self, secret_sha256: &str) -> Result<()>;

    /// Deletes every session that expired by `now`; returns how many.
    async fn prune_sessions(&self, now: TimestampMs) -> Result<u64>;
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::UserStore;

    /// What every backend must do; run on each one. A session needs a
    /// user, so the user family makes one.
    pub(crate) async fn exercise_sessions<S: UserStore + SessionStore>(store: &S) {
        let user = UserStore::insert_user(store, "carol", "hash", Role::Read, 1)
            .await
            .unwrap()
            .unwrap();
        let sessions: &dyn SessionStore = store;
        sessions
            .insert_session("live", user.id, 1, 100)
            .await
            .unwrap();
        sessions
            .insert_session("old", user.id, 1, 50)
            .await
            .unwrap();
        assert_eq!(
            sessions.session("live").await.unwrap(),
            Some(Session {
                user: "carol".into(),
                role: Role::Read,
                expires_ms: 100
            })
        );
        assert_eq!(
            sessions.session("old").await.unwrap().map(|s| s.expires_ms),
            Some(50),
            "expired ones are still found; the caller decides"
        );
        assert_eq!(sessions.session("nope").await.unwrap(), None);

        assert_eq!(
            sessions.prune_sessions(50).await.unwrap(),
            1,
            "expiry inclusive"
        );
        assert_eq!(sessions.session("old").await.unwrap(), None);
        assert_eq!(sessions.prune_sessions(50).await.unwrap(), 0);

        sessions.delete_session("live").await.unwrap();
        sessions.delete_session("live").await.unwrap();
        assert_eq!(sessions.session("live").await.unwrap(), None);
    }

    #[tokio::test]
    async fn sqlite_keeps_sessions() {
        let store = crate::store::SqliteStore::in_memory().await.unwrap();
        exercise_sessions(&store).await;
    }
}
