//! [`AgentTokenStore`] on SQLite: the `agent_tokens` and `host_owners`
//! tables.

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::SqliteStore;
use super::secrets::{self, SecretTable};
use crate::model::TimestampMs;
use crate::store::Result;
use crate::store::agent_tokens::{AgentToken, AgentTokenStore, Claim, Owner};

/// `SELECT <every column> FROM agent_tokens <rest>`, as a literal.
macro_rules! select_tokens {
    ($rest:literal) => {
        concat!(
            "SELECT id, name, host_id, created_ms, revoked_ms, last_used_ms FROM agent_tokens ",
            $rest
        )
    };
}

fn from_row(row: &SqliteRow) -> Result<AgentToken> {
    Ok(AgentToken {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        host_id: row.try_get("host_id")?,
        created_ms: row.try_get("created_ms")?,
        revoked_ms: row.try_get("revoked_ms")?,
        last_used_ms: row.try_get("last_used_ms")?,
    })
}

#[async_trait::async_trait]
impl AgentTokenStore for SqliteStore {
    async fn insert_agent_token(
        &self,
        name: &str,
        secret_sha256: &str,
        host_id: Option<&str>,
        now: TimestampMs,
    ) -> Result<Option<AgentToken>> {
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO agent_tokens (name, secret_sha256, host_id, created_ms) VALUES (?, ?, ?, ?)
             ON CONFLICT (name) DO NOTHING RETURNING id",
        )
        .bind(name)
        .bind(secret_sha256)
        .bind(host_id)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        Ok(id.map(|id| AgentToken {
            id,
            name: name.to_owned(),
            host_id: host_id.map(str::to_owned),
            created_ms: now,
            revoked_ms: None,
            last_used_ms: None,
        }))
    }

    async fn agent_tokens(&self) -> Result<Vec<AgentToken>> {
        let rows = sqlx::query(select_tokens!("ORDER BY id"))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(from_row).collect()
    }

    async fn agent_token_by_name(&self, name: &str) -> Result<Option<AgentToken>> {
        let row = sqlx::query(select_tokens!("WHERE name = ?"))
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    async fn agent_token_by_secret(&self, secret_sha256: &str) -> Result<Option<AgentToken>> {
        let row = sqlx::query(select_tokens!("WHERE secret_sha256 = ?"))
            .bind(secret_sha256)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    async fn touch_agent_token(&self, id: i64, now: TimestampMs) -> Result<()> {
        secrets::touch(self.pool(), SecretTable::AgentTokens, id, now).await
    }

    async fn revoke_agent_token(&self, name: &str, now: TimestampMs) -> Result<bool> {
        secrets::revoke(self.pool(), SecretTable::AgentTokens, name, now).await
    }

    async fn revoked_agent_token_ids(&self) -> Result<Vec<i64>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM agent_tokens WHERE revoked_ms IS NOT NULL")
                .fetch_all(self.pool())
                .await?,
        )
    }

    async fn put_agent_token_secret(
        &self,
        name: &str,
        secret_sha256: &str,
        now: TimestampMs,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO agent_tokens (name, secret_sha256, created_ms) VALUES (?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET secret_sha256 = excluded.secret_sha256,
                revoked_ms = NULL",
        )
        .bind(name)
        .bind(secret_sha256)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn count_agent_tokens(&self) -> Result<u64> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM agent_tokens")
            .fetch_one(self.pool())
            .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn claim_host(
        &self,
        host_id: &str,
        token_id: i64,
        now: TimestampMs,
        max_hosts: Option<u64>,
    ) -> Result<Claim> {
        let owner = |row: Option<sqlx::sqlite::SqliteRow>| -> Result<Option<Claim>> {
            let Some(row) = row else { return Ok(None) };
            let owner: i64 = row.try_get("token_id")?;
            Ok(Some(if owner == token_id {
                Claim::Owned
            } else {
                Claim::OwnedBy(row.try_get("name")?)
            }))
        };
        const OWNER: &str = "SELECT o.token_id, t.name FROM host_owners o
             JOIN agent_tokens t ON t.id = o.token_id WHERE o.host_id = ?";
        // Owned already (every reconnect): no count needed.
        let row = sqlx::query(OWNER)
            .bind(host_id)
            .fetch_optional(self.pool())
            .await?;
        if let Some(claim) = owner(row)? {
            return Ok(claim);
        }
        // One statement, so the count and the insert cannot be split by
        // another stream's claim.
        let cap = max_hosts.map_or(i64::MAX, |n| i64::try_from(n).unwrap_or(i64::MAX));
        sqlx::query(
            "INSERT INTO host_owners (host_id, token_id, since_ms)
             SELECT ?1, ?2, ?3 WHERE (SELECT COUNT(*) FROM host_owners WHERE token_id = ?2) < ?4
             ON CONFLICT (host_id) DO NOTHING",
        )
        .bind(host_id)
        .bind(token_id)
        .bind(now)
        .bind(cap)
        .execute(self.pool())
        .await?;
        let row = sqlx::query(OWNER)
            .bind(host_id)
            .fetch_optional(self.pool())
            .await?;
        if let Some(claim) = owner(row)? {
            return Ok(claim);
        }
        let owned: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM host_owners WHERE token_id = ?")
            .bind(token_id)
            .fetch_one(self.pool())
            .await?;
        Ok(Claim::TokenFull(u64::try_from(owned).unwrap_or(0)))
    }

    async fn set_host_owner(&self, host_id: &str, token_id: i64, now: TimestampMs) -> Result<()> {
        sqlx::query(
            "INSERT INTO host_owners (host_id, token_id, since_ms) VALUES (?, ?, ?)
             ON CONFLICT (host_id) DO UPDATE SET token_id = excluded.token_id,
                since_ms = excluded.since_ms",
        )
        .bind(host_id)
        .bind(token_id)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn host_owners(&self) -> Result<Vec<Owner>> {
        let rows = sqlx::query(
            "SELECT o.host_id, o.token_id, t.name, o.since_ms FROM host_owners o
             JOIN agent_tokens t ON t.id = o.token_id ORDER BY o.host_id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Owner {
                    host_id: r.try_get("host_id")?,
                    token_id: r.try_get("token_id")?,
                    token: r.try_get("name")?,
                    since_ms: r.try_get("since_ms")?,
                })
            })
            .collect()
    }
}
