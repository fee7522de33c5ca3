//! API tokens for scripts: a random `fwk_` secret sent as
//! `Authorization: Bearer`, with a name and a role. Only the SHA-256 is
//! stored; the secret is shown once, when the token is made. Revoked tokens
//! stay listed (with when) so that a log line naming one still makes sense.

use super::{AuthError, Result, Role, check_name, secret};
use crate::model::now_ms;
use crate::store::ApiTokenStore;
pub use crate::store::api_tokens::ApiToken;
use crate::store::api_tokens::Revoked;

/// What every API token starts with.
pub const PREFIX: &str = "fwk_";

/// `last_used_ms` is written at most this often per token, so that a script
/// polling every second does not write to the database every second.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

/// What a presented secret turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Valid { name: String, role: Role },
    Revoked { name: String },
    Unknown,
}

/// Makes a token; returns it and its secret, which is not stored.
pub async fn add(store: &dyn ApiTokenStore, name: &str, role: Role) -> Result<(ApiToken, String)> {
    check_name("API token", name)?;
    let secret = secret::generate(PREFIX)?;
    let token = store
        .insert_api_token(name, &secret::hash(&secret), role, now_ms())
        .await?
        .ok_or_else(|| {
            AuthError::Exists(format!(
                "an API token named `{name}` already exists (revoked ones keep their name)"
            ))
        })?;
    Ok((token, secret))
}

/// Every token, by name, revoked ones included.
pub async fn list(store: &dyn ApiTokenStore) -> Result<Vec<ApiToken>> {
    Ok(store.api_tokens().await?)
}

/// Revokes a token for good; revoking twice is an error that says so.
pub async fn revoke(store: &dyn ApiTokenStore, name: &str) -> Result<()> {
    match store.revoke_api_token(name, now_ms()).await? {
        Revoked::Now => Ok(()),
        Revoked::Already => Err(AuthError::Invalid(format!(
            "API token `{name}` is already revoked"
        ))),
        Revoked::NoSuchToken => Err(AuthError::NotFound(format!("no API token `{name}`"))),
    }
}

/// Looks up a presented secret and notes that it was used.
pub async fn lookup(store: &dyn ApiTokenStore, secret: &str) -> Result<Lookup> {
    if !secret.starts_with(PREFIX) {
        return Ok(Lookup::Unknown);
    }
    let Some(token) = store.api_token_by_secret(&secret::hash(secret)).await? else {
        return Ok(Lookup::Unknown);
    };
    if token.revoked_ms.is_some() {
        return Ok(Lookup::Revoked { name: token.name });
    }
    let now = now_ms();
    if token
        .last_used_ms
        .is_none_or(|t| now - t >= LAST_USED_RESOLUTION_MS)
    {
        store.touch_api_token(token.id, now).await?;
    }
    Ok(Lookup::Valid {
        name: token.name,
        role: token.role,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    #[tokio::test]
    async fn tokens_work_until_revoked() {
        let store = SqliteStore::in_memory().await.unwrap();
        let (token, secret) = add(&store, "backup-script", Role::Read).await.unwrap();
        assert!(secret.starts_with(PREFIX));
        assert_eq!(token.role, Role::Read);
        assert!(matches!(
            add(&store, "backup-script", Role::Admin).await,
            Err(AuthError::Exists(_))
        ));
        assert_eq!(
            lookup(&store, &secret).await.unwrap(),
            Lookup::Valid {
                name: "backup-script".into(),
                role: Role::Read
            }
        );
        assert!(list(&store).await.unwrap()[0].last_used_ms.is_some());
        assert_eq!(lookup(&store, "fwk_0000").await.unwrap(), Lookup::Unknown);
        assert_eq!(lookup(&store, "anything").await.unwrap(), Lookup::Unknown);

        revoke(&store, "backup-script").await.unwrap();
        assert!(matches!(
            revoke(&store, "backup-script").await,
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(
            revoke(&store, "nope").await,
            Err(AuthError::NotFound(_))
        ));
        assert_eq!(
            lookup(&store, &secret).await.unwrap(),
            Lookup::Revoked {
                name: "backup-script".into()
            }
        );
        assert!(list(&store).await.unwrap()[0].revoked_ms.is_some());
    }
}
