//! Dashboard users as stored: the [`UserStore`] trait and its record. The
//! store keeps the password's hash; hashing and checking passwords are
//! `auth::users`'s.

use serde::Serialize;

use super::Result;
use crate::model::{Role, TimestampMs};

/// A user as `user list` shows it (never the hash).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub created_ms: TimestampMs,
}

/// Users by name, with their password hashes. Removing a user or changing
/// their password ends their sessions in the same transaction.
#[async_trait::async_trait]
pub trait UserStore: Send + Sync {
    /// Stores a new user; `None` when the name is taken.
    async fn insert_user(
        &self,
        name: &str,
        password_hash: &str,
        role: Role,
        now: TimestampMs,
    ) -> Result<Option<User>>;

    /// Every user, by name.
    async fn users(&self) -> Result<Vec<User>>;

    /// The user named `name` and their password hash.
    async fn user_with_hash(&self, name: &str) -> Result<Option<(User, String)>>;

    /// Removes the user and their sessions; false when there is no such user.
    async fn remove_user(&self, name: &str) -> Result<bool>;

    /// Replaces the user's password hash and ends their sessions; false
    /// when there is no such user.
    async fn set_password_hash(&self, name: &str, password_hash: &str) -> Result<bool>;
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::SessionStore;

    /// What every backend must do; run on each one. Takes the session
    /// family too, to see that a removed user's sessions end.
    pub(crate) async fn exercise_users<S: UserStore + SessionStore>(store: &S) {
        let users: &dyn UserStore = store;
        let bob = users
            .insert_user("bob", "hash-b", Role::Read, 2)
            .await
            .unwrap()
            .unwrap();
        let alice = users
            .insert_user("alice", "hash-a", Role::Admin, 1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(alice.role, Role::Admin);
        assert_eq!(
            users.insert_user("bob", "x", Role::Admin, 3).await.unwrap(),
            None,
            "a taken name"
        );
        assert_eq!(users.users().await.unwrap(), [alice.clone(), bob.clone()]);
        assert_eq!(
            users.user_with_hash("alice").await.unwrap(),
            Some((alice.clone(), "hash-a".to_owned()))
        );
        assert_eq!(users.user_with_hash("carol").await.unwrap(), None);

        let sessions: &dyn SessionStore = store;
        sessions
            .insert_session("s-bob", bob.id, 0, i64::MAX)
            .await
            .unwrap();
        assert!(users.set_password_hash("bob", "hash-b2").await.unwrap());
        assert!(!users.set_password_hash("carol", "x").await.unwrap());
        assert_eq!(
            users.user_with_hash("bob").await.unwrap().map(|(_, h)| h),
            Some("hash-b2".to_owned())
        );
        assert_eq!(
            sessions.session("s-bob").await.unwrap(),
            None,
            "a new password ends the sessions"
        );

        sessions
            .insert_session("s-alice", alice.id, 0, i64::MAX)
            .await
            .unwrap();
        assert!(users.remove_user("alice").await.unwrap());
        assert!(!users.remove_user("alice").await.unwrap());
        assert_eq!(sessions.session("s-alice").await.unwrap(), None);
        assert_eq!(users.users().await.unwrap(), [bob]);
    }

    #[tokio::test]
    async fn sqlite_keeps_users() {
        let store = crate::store::SqliteStore::in_memory().await.unwrap();
        exercise_users(&store).await;
    }
}
