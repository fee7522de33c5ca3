//! [`ApiTokenStore`] on SQLite: the `api_tokens` table.

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::SqliteStore;
use super::secrets::{self, SecretTable};
use super::users::stored_role;
use crate::model::{Role, TimestampMs};
use crate::store::Result;
use crate::store::api_tokens::{ApiToken, ApiTokenStore, Revoked};

/// `SELECT <every column but the secret> FROM api_tokens <rest>`, as a literal.
macro_rules! select_tokens {
    ($rest:literal) => {
        concat!(
            "SELECT id, name, role, created_ms, revoked_ms, last_used_ms FROM api_tokens ",
            $rest
        )
    };
}

fn from_row(row: &SqliteRow) -> Result<ApiToken> {
    Ok(ApiToken {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        role: stored_role("api_tokens", row.try_get("role")?)?,
        created_ms: row.try_get("created_ms")?,
        revoked_ms: row.try_get("revoked_ms")?,
        last_used_ms: row.try_get("last_used_ms")?,
    })
}

#[async_trait::async_trait]
impl ApiTokenStore for SqliteStore {
    async fn insert_api_token(
        &self,
        name: &str,
        secret_sha256: &str,
        role: Role,
        now: TimestampMs,
    ) -> Result<Option<ApiToken>> {
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO api_tokens (name, secret_sha256, role, created_ms) VALUES (?, ?, ?, ?)
             ON CONFLICT (name) DO NOTHING RETURNING id",
        )
        .bind(name)
        .bind(secret_sha256)
        .bind(role.as_str())
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        Ok(id.map(|id| ApiToken {
            id,
            name: name.to_owned(),
            role,
            created_ms: now,
            revoked_ms: None,
            last_used_ms: None,
        }))
    }

    async fn api_tokens(&self) -> Result<Vec<ApiToken>> {
        let rows = sqlx::query(select_tokens!("ORDER BY name"))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(from_row).collect()
    }

    async fn api_token_by_secret(&self, secret_sha256: &str) -> Result<Option<ApiToken>> {
        let row = sqlx::query(select_tokens!("WHERE secret_sha256 = ?"))
            .bind(secret_sha256)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    async fn touch_api_token(&self, id: i64, now: TimestampMs) -> Result<()> {
        secrets::touch(self.pool(), SecretTable::ApiTokens, id, now).await
    }

    async fn revoke_api_token(&self, name: &str, now: TimestampMs) -> Result<Revoked> {
        let table = SecretTable::ApiTokens;
        Ok(if secrets::revoke(self.pool(), table, name, now).await? {
            Revoked::Now
        } else if secrets::name_taken(self.pool(), table, name).await? {
            Revoked::Already
        } else {
            Revoked::NoSuchToken
        })
    }
}
