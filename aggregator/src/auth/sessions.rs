//! Dashboard sessions: a random `fws_` secret in an HttpOnly cookie, of
//! which the database keeps only the SHA-256, with an expiry. Expired
//! sessions are refused, deleted when met, and pruned at each login.

use std::time::Duration;

use super::{Result, secret};
use crate::model::now_ms;
use crate::store::SessionStore;
pub use crate::store::sessions::Session;

/// What every session secret starts with.
pub const PREFIX: &str = "fws_";

/// Starts a session for `user_id` that lasts `ttl`; returns its secret.
pub async fn create(store: &dyn SessionStore, user_id: i64, ttl: Duration) -> Result<String> {
    let now = now_ms();
    // Every login sweeps the expired ones, so the table stays small.
    store.prune_sessions(now).await?;
    let secret = secret::generate(PREFIX)?;
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    store
        .insert_session(
            &secret::hash(&secret),
            user_id,
            now,
            now.saturating_add(ttl_ms),
        )
        .await?;
    Ok(secret)
}

/// The session behind `secret` if it exists and has not expired.
pub async fn lookup(store: &dyn SessionStore, secret: &str) -> Result<Option<Session>> {
    if !secret.starts_with(PREFIX) {
        return Ok(None);
    }
    let Some(session) = store.session(&secret::hash(secret)).await? else {
        return Ok(None);
    };
    if session.expires_ms <= now_ms() {
        end(store, secret).await?;
        return Ok(None);
    }
    Ok(Some(session))
}

/// Ends the session behind `secret` (logout); unknown secrets are fine.
pub async fn end(store: &dyn SessionStore, secret: &str) -> Result<()> {
    Ok(store.delete_session(&secret::hash(secret)).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Role, users};
    use crate::store::SqliteStore;

    #[tokio::test]
    async fn sessions_live_until_they_expire_or_end() {
        let store = SqliteStore::in_memory().await.unwrap();
        let user = users::add(&store, "carol", "correct horse battery", Role::Read)
            .await
            .unwrap();
        let secret = create(&store, user.id, Duration::from_secs(3600))
            .await
            .unwrap();
        assert!(secret.starts_with(PREFIX));
        let session = lookup(&store, &secret).await.unwrap().unwrap();
        assert_eq!((session.user.as_str(), session.role), ("carol", Role::Read));
        assert_eq!(lookup(&store, "fws_nope").await.unwrap(), None);
        end(&store, &secret).await.unwrap();
        assert_eq!(lookup(&store, &secret).await.unwrap(), None);

        let short = create(&store, user.id, Duration::ZERO).await.unwrap();
        assert_eq!(lookup(&store, &short).await.unwrap(), None, "expired");
        assert_eq!(
            store.prune_sessions(i64::MAX).await.unwrap(),
            0,
            "the expired session was deleted when met"
        );

        let kept = create(&store, user.id, Duration::from_secs(3600))
            .await
            .unwrap();
        users::remove(&store, "carol").await.unwrap();
        assert_eq!(
            lookup(&store, &kept).await.unwrap(),
            None,
            "removed with the user"
        );
    }
}
