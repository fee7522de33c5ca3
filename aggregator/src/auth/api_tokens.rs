//! API tokens for scripts: a random `fwk_` secret sent as
//! `Authorization: Bearer`, with a name and a role. Only the SHA-256 is
//! stored; the secret is shown once, when the token is made. Revoked tokens
//! stay listed (with when) so that a log line naming one still makes sense.

use serde::Serialize;
use sqlx::{Row, SqlitePool};

use super::{AuthError, Result, Role, check_name, secret, stored_role};
use crate::model::{TimestampMs, now_ms};

/// What every API token starts with.
pub const PREFIX: &str = "fwk_";

/// `last_used_ms` is written at most this often per token, so that a script
/// polling every second does not write to the database every second.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

/// A token as `api-token list` shows it (never the secret).
#[derive(Debug, Clone, Serialize)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub created_ms: TimestampMs,
    pub revoked_ms: Option<TimestampMs>,
    pub last_used_ms: Option<TimestampMs>,
}

/// What a presented secret turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Valid { name: String, role: Role },
    Revoked { name: String },
    Unknown,
}

/// Makes a token; returns it and its secret, which is not stored.
pub async fn add(pool: &SqlitePool, name: &str, role: Role) -> Result<(ApiToken, String)> {
    check_name("API token", name)?;
    let secret = secret::generate(PREFIX)?;
    let now = now_ms();
    let inserted = sqlx::query(
        "INSERT INTO api_tokens (name, secret_sha256, role, created_ms) VALUES (?, ?, ?, ?)
         ON CONFLICT (name) DO NOTHING RETURNING id",
    )
    .bind(name)
    .bind(secret::hash(&secret))
    .bind(role.as_str())
    .bind(now)
    .fetch_optional(pool)
    .await?;
    let Some(row) = inserted else {
        return Err(AuthError::Exists(format!(
            "an API token named `{name}` already exists (revoked ones keep their name)"
        )));
    };
    let token = ApiToken {
        id: row.try_get("id")?,
        name: name.to_owned(),
        role,
        created_ms: now,
        revoked_ms: None,
        last_used_ms: None,
    };
    Ok((token, secret))
}

/// Every token, by name, revoked ones included.
pub async fn list(pool: &SqlitePool) -> Result<Vec<ApiToken>> {
    let rows = sqlx::query(
        "SELECT id, name, role, created_ms, revoked_ms, last_used_ms FROM api_tokens ORDER BY name",
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(ApiToken {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                role: stored_role(row.try_get("role")?)?,
                created_ms: row.try_get("created_ms")?,
                revoked_ms: row.try_get("revoked_ms")?,
                last_used_ms: row.try_get("last_used_ms")?,
            })
        })
        .collect()
}

/// Revokes a token for good; revoking twice is an error that says so.
pub async fn revoke(pool: &SqlitePool, name: &str) -> Result<()> {
    let changed =
        sqlx::query("UPDATE api_tokens SET revoked_ms = ? WHERE name = ? AND revoked_ms IS NULL")
            .bind(now_ms())
            .bind(name)
            .execute(pool)
            .await?
            .rows_affected();
    if changed == 1 {
        return Ok(());
    }
    let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM api_tokens WHERE name = ?")
        .bind(name)
        .fetch_optional(pool)
        .await?;
    Err(match exists {
        Some(_) => AuthError::Invalid(format!("API token `{name}` is already revoked")),
        None => AuthError::NotFound(format!("no API token `{name}`")),
    })
}

/// Looks up a presented secret and notes that it was used.
pub async fn lookup(pool: &SqlitePool, secret: &str) -> Result<Lookup> {
    if !secret.starts_with(PREFIX) {
        return Ok(Lookup::Unknown);
    }
    let row = sqlx::query(
        "SELECT id, name, role, revoked_ms, last_used_ms FROM api_tokens WHERE secret_sha256 = ?",
    )
    .bind(secret::hash(secret))
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        return Ok(Lookup::Unknown);
    };
    let name: String = row.try_get("name")?;
    if row.try_get::<Option<i64>, _>("revoked_ms")?.is_some() {
        return Ok(Lookup::Revoked { name });
    }
    let now = now_ms();
    let last_used: Option<i64> = row.try_get("last_used_ms")?;
    if last_used.is_none_or(|t| now - t >= LAST_USED_RESOLUTION_MS) {
        sqlx::query("UPDATE api_tokens SET last_used_ms = ? WHERE id = ?")
            .bind(now)
            .bind(row.try_get::<i64, _>("id")?)
            .execute(pool)
            .await?;
    }
    Ok(Lookup::Valid {
        name,
        role: stored_role(row.try_get("role")?)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    #[tokio::test]
    async fn tokens_work_until_revoked() {
        let store = SqliteStore::in_memory().await.unwrap();
        let pool = store.pool();
        let (token, secret) = add(pool, "backup-script", Role::Read).await.unwrap();
        assert!(secret.starts_with(PREFIX));
        assert_eq!(token.role, Role::Read);
        assert!(matches!(
            add(pool, "backup-script", Role::Admin).await,
            Err(AuthError::Exists(_))
        ));
        assert_eq!(
            lookup(pool, &secret).await.unwrap(),
            Lookup::Valid {
                name: "backup-script".into(),
                role: Role::Read
            }
        );
        assert!(list(pool).await.unwrap()[0].last_used_ms.is_some());
        assert_eq!(lookup(pool, "fwk_0000").await.unwrap(), Lookup::Unknown);
        assert_eq!(lookup(pool, "anything").await.unwrap(), Lookup::Unknown);

        revoke(pool, "backup-script").await.unwrap();
        assert!(matches!(
            revoke(pool, "backup-script").await,
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(
            revoke(pool, "nope").await,
            Err(AuthError::NotFound(_))
        ));
        assert_eq!(
            lookup(pool, &secret).await.unwrap(),
            Lookup::Revoked {
                name: "backup-script".into()
            }
        );
        assert!(list(pool).await.unwrap()[0].revoked_ms.is_some());
    }
}
