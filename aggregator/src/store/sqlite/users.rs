//! [`UserStore`] on SQLite: the `users` table (and the sessions a removed
//! user or a changed password ends).

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::SqliteStore;
use crate::model::{Role, TimestampMs};
use crate::store::users::{User, UserStore};
use crate::store::{Result, StoreError};

/// A role as stored, checked.
pub(super) fn stored_role(table: &'static str, text: &str) -> Result<Role> {
    Role::parse(text).ok_or_else(|| StoreError::Corrupt {
        table,
        reason: format!("role `{text}` is neither admin nor read"),
    })
}

fn from_row(row: &SqliteRow) -> Result<User> {
    Ok(User {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        role: stored_role("users", row.try_get("role")?)?,
        created_ms: row.try_get("created_ms")?,
    })
}

const END_SESSIONS: &str =
    "DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE name = ?)";

#[async_trait::async_trait]
impl UserStore for SqliteStore {
    async fn insert_user(
        &self,
        name: &str,
        password_hash: &str,
        role: Role,
        now: TimestampMs,
    ) -> Result<Option<User>> {
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO users (name, password_hash, role, created_ms) VALUES (?, ?, ?, ?)
             ON CONFLICT (name) DO NOTHING RETURNING id",
        )
        .bind(name)
        .bind(password_hash)
        .bind(role.as_str())
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        Ok(id.map(|id| User {
            id,
            name: name.to_owned(),
            role,
            created_ms: now,
        }))
    }

    async fn users(&self) -> Result<Vec<User>> {
        let rows = sqlx::query("SELECT id, name, role, created_ms FROM users ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(from_row).collect()
    }

    async fn user_with_hash(&self, name: &str) -> Result<Option<(User, String)>> {
        let row = sqlx::query(
            "SELECT id, name, role, created_ms, password_hash FROM users WHERE name = ?",
        )
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| Ok((from_row(&row)?, row.try_get("password_hash")?)))
            .transpose()
    }

    async fn remove_user(&self, name: &str) -> Result<bool> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(END_SESSIONS)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let removed = sqlx::query("DELETE FROM users WHERE name = ?")
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(removed > 0)
    }

    async fn set_password_hash(&self, name: &str, password_hash: &str) -> Result<bool> {
        let mut tx = self.pool().begin().await?;
        let changed = sqlx::query("UPDATE users SET password_hash = ? WHERE name = ?")
            .bind(password_hash)
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query(END_SESSIONS)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(changed > 0)
    }
}
