//! Dashboard sessions: a random `fws_` secret in an HttpOnly cookie, of
//! which the database keeps only the SHA-256, with an expiry. Expired
//! sessions are refused, deleted when met, and pruned at each login.

use std::time::Duration;

use sqlx::{Row, SqlitePool};

use super::{Result, Role, secret, stored_role};
use crate::model::{TimestampMs, now_ms};

/// What every session secret starts with.
pub const PREFIX: &str = "fws_";

/// Whose a live session is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user: String,
    pub role: Role,
    pub expires_ms: TimestampMs,
}

/// Starts a session for `user_id` that lasts `ttl`; returns its secret.
pub async fn create(pool: &SqlitePool, user_id: i64, ttl: Duration) -> Result<String> {
    let now = now_ms();
    // Every login sweeps the expired ones, so the table stays small.
    prune(pool, now).await?;
    let secret = secret::generate(PREFIX)?;
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    sqlx::query(
        "INSERT INTO sessions (secret_sha256, user_id, created_ms, expires_ms) VALUES (?, ?, ?, ?)",
    )
    .bind(secret::hash(&secret))
    .bind(user_id)
    .bind(now)
    .bind(now.saturating_add(ttl_ms))
    .execute(pool)
    .await?;
    Ok(secret)
}

/// The session behind `secret` if it exists and has not expired.
pub async fn lookup(pool: &SqlitePool, secret: &str) -> Result<Option<Session>> {
    if !secret.starts_with(PREFIX) {
        return Ok(None);
    }
    let hash = secret::hash(secret);
    let row = sqlx::query(
        "SELECT users.name, users.role, sessions.expires_ms FROM sessions
         JOIN users ON users.id = sessions.user_id WHERE sessions.secret_sha256 = ?",
    )
    .bind(&hash)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let expires_ms: TimestampMs = row.try_get("expires_ms")?;
    if expires_ms <= now_ms() {
        end(pool, secret).await?;
        return Ok(None);
    }
    Ok(Some(Session {
        user: row.try_get("name")?,
        role: stored_role(row.try_get("role")?)?,
        expires_ms,
    }))
}

/// Ends the session behind `secret` (logout); unknown secrets are fine.
pub async fn end(pool: &SqlitePool, secret: &str) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE secret_sha256 = ?")
        .bind(secret::hash(secret))
        .execute(pool)
        .await?;
    Ok(())
}

/// Deletes every session that expired by `now`; returns how many.
pub async fn prune(pool: &SqlitePool, now: TimestampMs) -> Result<u64> {
    Ok(sqlx::query("DELETE FROM sessions WHERE expires_ms <= ?")
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::users;
    use crate::store::SqliteStore;

    #[tokio::test]
    async fn sessions_live_until_they_expire_or_end() {
        let store = SqliteStore::in_memory().await.unwrap();
        let pool = store.pool();
        let user = users::add(pool, "carol", "correct horse battery", Role::Read)
            .await
            .unwrap();
        let secret = create(pool, user.id, Duration::from_secs(3600))
            .await
            .unwrap();
        assert!(secret.starts_with(PREFIX));
        let session = lookup(pool, &secret).await.unwrap().unwrap();
        assert_eq!((session.user.as_str(), session.role), ("carol", Role::Read));
        assert_eq!(lookup(pool, "fws_nope").await.unwrap(), None);
        end(pool, &secret).await.unwrap();
        assert_eq!(lookup(pool, &secret).await.unwrap(), None);

        let short = create(pool, user.id, Duration::ZERO).await.unwrap();
        assert_eq!(lookup(pool, &short).await.unwrap(), None, "expired");
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(left, 0, "the expired session was deleted when met");

        let kept = create(pool, user.id, Duration::from_secs(3600))
            .await
            .unwrap();
        users::remove(pool, "carol").await.unwrap();
        assert_eq!(
            lookup(pool, &kept).await.unwrap(),
            None,
            "removed with the user"
        );
    }
}
