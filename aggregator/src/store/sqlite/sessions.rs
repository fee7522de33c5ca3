//! [`SessionStore`] on SQLite: the `sessions` table, joined to `users`.

use sqlx::Row;

use super::SqliteStore;
use super::users::stored_role;
use crate::model::TimestampMs;
use crate::store::Result;
use crate::store::sessions::{Session, SessionStore};

#[async_trait::async_trait]
impl SessionStore for SqliteStore {
    async fn insert_session(
        &self,
        secret_sha256: &str,
        user_id: i64,
        created_ms: TimestampMs,
        expires_ms: TimestampMs,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (secret_sha256, user_id, created_ms, expires_ms)
             VALUES (?, ?, ?, ?)",
        )
        .bind(secret_sha256)
        .bind(user_id)
        .bind(created_ms)
        .bind(expires_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn session(&self, secret_sha256: &str) -> Result<Option<Session>> {
        let row = sqlx::query(
            "SELECT users.name, users.role, sessions.expires_ms FROM sessions
             JOIN users ON users.id = sessions.user_id WHERE sessions.secret_sha256 = ?",
        )
        .bind(secret_sha256)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            Ok(Session {
                user: row.try_get("name")?,
                role: stored_role("users", row.try_get("role")?)?,
                expires_ms: row.try_get("expires_ms")?,
            })
        })
        .transpose()
    }

    async fn delete_session(&self, secret_sha256: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE secret_sha256 = ?")
            .bind(secret_sha256)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn prune_sessions(&self, now: TimestampMs) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM sessions WHERE expires_ms <= ?")
            .bind(now)
            .execute(self.pool())
            .await?
            .rows_affected())
    }
}
