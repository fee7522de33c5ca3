//! Agent tokens: creating, listing and revoking them, the enrollment token
//! an aggregator makes for itself, and which token owns which host id. The
//! rules live here (names, reserved names, secrets and their hashes); the
//! rows are kept by the store through [`AgentTokenStore`].

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::secret;
use crate::model::TimestampMs;
pub use crate::store::agent_tokens::{AgentToken, Claim, Owner};
use crate::store::{AgentTokenStore, StoreError};

/// Every agent token starts with this, so a leaked one is recognisable.
pub const PREFIX: &str = "fwa_";
/// The token an aggregator generates when it has none.
pub const ENROLLMENT: &str = "enrollment";
/// The token given in the config (`agent_token`), kept in step with it.
pub const FROM_CONFIG: &str = "config";

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Random(#[from] secret::RandomError),
    #[error("an agent token named `{0}` already exists")]
    NameTaken(String),
    #[error("no agent token named `{0}`")]
    NoSuchToken(String),
    #[error("agent token `{0}` is revoked")]
    Revoked(String),
    #[error("invalid name `{name}`: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("the name `{0}` is the aggregator's own; choose another")]
    Reserved(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A token just made, with the secret shown this once.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub token: AgentToken,
    pub secret: String,
    /// For a token made for a host that another token already owns: that
    /// token's name (the host moves with `host reassign`).
    pub host_owned_by: Option<String>,
}

/// Names are shown in logs, tables and commands: keep them plain.
pub fn validate_name(name: &str) -> Result<(), TokenError> {
    let invalid = |reason| TokenError::InvalidName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() || name.len() > 64 {
        return Err(invalid("must be 1 to 64 characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
    {
        return Err(invalid(
            "may hold only letters, digits, '-', '_', '.' and ':'",
        ));
    }
    Ok(())
}

/// Makes a token. With `host_id`, it may stream only as that host, and it
/// owns the host id at once unless another token already does, so that no
/// other token can claim the host before its agent first connects.
pub async fn create(
    store: &dyn AgentTokenStore,
    name: &str,
    host_id: Option<&str>,
    now: TimestampMs,
) -> Result<NewToken, TokenError> {
    validate_name(name)?;
    if [ENROLLMENT, FROM_CONFIG].contains(&name) {
        return Err(TokenError::Reserved(name.to_owned()));
    }
    let mut new = insert(store, name, host_id, now).await?;
    if let Some(host_id) = host_id
        && let Claim::OwnedBy(owner) = store.claim_host(host_id, new.token.id, now, None).await?
    {
        new.host_owned_by = Some(owner);
    }
    Ok(new)
}

async fn insert(
    store: &dyn AgentTokenStore,
    name: &str,
    host_id: Option<&str>,
    now: TimestampMs,
) -> Result<NewToken, TokenError> {
    let secret = secret::generate(PREFIX)?;
    let token = store
        .insert_agent_token(name, &secret::hash(&secret), host_id, now)
        .await?
        .ok_or_else(|| TokenError::NameTaken(name.to_owned()))?;
    Ok(NewToken {
        token,
        secret,
        host_owned_by: None,
    })
}

/// A token with the host ids it owns, as the `token list` command and
/// the API show it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Listed {
    #[serde(flatten)]
    pub token: AgentToken,
    pub hosts: Vec<String>,
}

/// Every token, oldest first, with the hosts it owns.
pub async fn list(store: &dyn AgentTokenStore) -> Result<Vec<Listed>, TokenError> {
    let owners = store.host_owners().await?;
    Ok(store
        .agent_tokens()
        .await?
        .into_iter()
        .map(|token| {
            let hosts = owners
                .iter()
                .filter(|o| o.token_id == token.id)
                .map(|o| o.host_id.clone())
                .collect();
            Listed { token, hosts }
        })
        .collect())
}

pub async fn by_name(store: &dyn AgentTokenStore, name: &str) -> Result<AgentToken, TokenError> {
    store
        .agent_token_by_name(name)
        .await?
        .ok_or_else(|| TokenError::NoSuchToken(name.to_owned()))
}

/// The token whose secret this is, revoked or not.
pub async fn lookup(
    store: &dyn AgentTokenStore,
    secret: &str,
) -> Result<Option<AgentToken>, TokenError> {
    Ok(store.agent_token_by_secret(&secret::hash(secret)).await?)
}

/// Revokes a token for good; a running aggregator closes its streams
/// within seconds. Revoking a revoked token changes nothing.
pub async fn revoke(
    store: &dyn AgentTokenStore,
    name: &str,
    now: TimestampMs,
) -> Result<AgentToken, TokenError> {
    store.revoke_agent_token(name, now).await?;
    by_name(store, name).await
}

/// Keeps the `config` token in step with `agent_token` from the config: a
/// changed secret replaces the old one (the hosts it owns stay its own),
/// and with no `agent_token` the token is revoked, so that a secret taken
/// out of the config stops working.
pub async fn sync_config_token(
    store: &dyn AgentTokenStore,
    secret: Option<&str>,
    now: TimestampMs,
) -> Result<(), TokenError> {
    let Some(secret) = secret else {
        if store.revoke_agent_token(FROM_CONFIG, now).await? {
            tracing::warn!("agent_token is no longer set: revoked the agent token `config`");
        }
        return Ok(());
    };
    store
        .put_agent_token_secret(FROM_CONFIG, &secret::hash(secret), now)
        .await?;
    Ok(())
}

/// Where the enrollment token's secret is kept for the database at `db`.
pub fn enrollment_file(db: &Path) -> PathBuf {
    let parent = db.parent().filter(|p| !p.as_os_str().is_empty());
    parent.unwrap_or(Path::new(".")).join("enrollment-token")
}

/// With no agent token at all, makes the `enrollment` token and writes its
/// secret to [`enrollment_file`] (mode 0600). Returns the enrollment
/// secret while that token is in force, so start-up can print how to use
/// it; `None` once operators manage their own tokens.
pub async fn enrollment(
    store: &dyn AgentTokenStore,
    db: &Path,
    now: TimestampMs,
) -> Result<Option<String>, TokenError> {
    let path = enrollment_file(db);
    if store.count_agent_tokens().await? == 0 {
        let new = insert(store, ENROLLMENT, None, now).await?;
        crate::tls::write_private(&path, format!("{}\n", new.secret).as_bytes()).map_err(
            |source| TokenError::Write {
                path: path.clone(),
                source,
            },
        )?;
        tracing::info!(file = %path.display(), "generated an agent enrollment token");
        return Ok(Some(new.secret));
    }
    // Print it again on later starts, while it still works.
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let secret = text.trim();
    match lookup(store, secret).await? {
        Some(token) if token.name == ENROLLMENT && !token.is_revoked() => {
            Ok(Some(secret.to_owned()))
        }
        _ => Ok(None),
    }
}

/// Gives `host_id` to the token named `token_name`; its old owner's
/// stream is closed by a running aggregator within seconds.
pub async fn reassign_host(
    store: &dyn AgentTokenStore,
    host_id: &str,
    token_name: &str,
    now: TimestampMs,
) -> Result<(), TokenError> {
    let token = by_name(store, token_name).await?;
    if token.is_revoked() {
        return Err(TokenError::Revoked(token.name));
    }
    store.set_host_owner(host_id, token.id, now).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    #[tokio::test]
    async fn tokens_are_found_by_secret_and_revoked_for_good() {
        let store = SqliteStore::in_memory().await.unwrap();
        let new = create(&store, "web-1", Some("web-1"), 10).await.unwrap();
        assert!(new.secret.starts_with(PREFIX));
        let found = lookup(&store, &new.secret).await.unwrap().unwrap();
        assert_eq!(found, new.token);
        assert_eq!(lookup(&store, "fwa_nope").await.unwrap(), None);
        assert!(matches!(
            create(&store, "web-1", None, 11).await,
            Err(TokenError::NameTaken(_))
        ));
        let revoked = revoke(&store, "web-1", 20).await.unwrap();
        assert_eq!(revoked.revoked_ms, Some(20));
        assert_eq!(
            revoke(&store, "web-1", 30).await.unwrap().revoked_ms,
            Some(20)
        );
        assert_eq!(
            store.revoked_agent_token_ids().await.unwrap(),
            vec![new.token.id]
        );
        assert!(matches!(
            revoke(&store, "nope", 30).await,
            Err(TokenError::NoSuchToken(_))
        ));
    }

    #[tokio::test]
    async fn a_token_made_for_a_host_owns_it_from_the_start() {
        let store = SqliteStore::in_memory().await.unwrap();
        let any = create(&store, "any", None, 1).await.unwrap().token;
        let bound = create(&store, "db-1", Some("db-1"), 2).await.unwrap();
        assert_eq!(bound.host_owned_by, None);
        assert_eq!(
            store.claim_host("db-1", any.id, 3, None).await.unwrap(),
            Claim::OwnedBy("db-1".into())
        );
        // Made for a host another token owns: it says so, and owns nothing.
        let second = create(&store, "db-1-new", Some("db-1"), 4).await.unwrap();
        assert_eq!(second.host_owned_by.as_deref(), Some("db-1"));
        assert_eq!(store.host_owners().await.unwrap()[0].token, "db-1");
    }

    #[tokio::test]
    async fn the_first_token_owns_a_host_until_reassigned() {
        let store = SqliteStore::in_memory().await.unwrap();
        let a = create(&store, "a", None, 1).await.unwrap().token;
        let b = create(&store, "b", None, 1).await.unwrap().token;
        assert_eq!(
            store.claim_host("h", a.id, 2, None).await.unwrap(),
            Claim::Owned
        );
        assert_eq!(
            store.claim_host("h", a.id, 3, None).await.unwrap(),
            Claim::Owned
        );
        assert_eq!(
            store.claim_host("h", b.id, 4, None).await.unwrap(),
            Claim::OwnedBy("a".into())
        );
        reassign_host(&store, "h", "b", 5).await.unwrap();
        assert_eq!(
            store.claim_host("h", b.id, 6, None).await.unwrap(),
            Claim::Owned
        );
        let owners = store.host_owners().await.unwrap();
        assert_eq!(owners.len(), 1);
        assert_eq!(owners[0].token, "b");
        revoke(&store, "a", 7).await.unwrap();
        assert!(matches!(
            reassign_host(&store, "h", "a", 8).await,
            Err(TokenError::Revoked(_))
        ));
    }

    #[tokio::test]
    async fn enrollment_token_is_made_once_and_only_without_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("fw.db");
        let store = SqliteStore::open(&db).await.unwrap();
        let secret = enrollment(&store, &db, 1).await.unwrap().unwrap();
        let file = std::fs::read_to_string(enrollment_file(&db)).unwrap();
        assert_eq!(file.trim(), secret);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(enrollment_file(&db))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "enrollment token readable by others");
        // Printed again on the next start, not replaced.
        assert_eq!(enrollment(&store, &db, 2).await.unwrap(), Some(secret));
        revoke(&store, ENROLLMENT, 3).await.unwrap();
        assert_eq!(enrollment(&store, &db, 4).await.unwrap(), None);
        assert_eq!(list(&store).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn config_token_follows_the_config() {
        let store = SqliteStore::in_memory().await.unwrap();
        sync_config_token(&store, None, 1).await.unwrap();
        assert!(list(&store).await.unwrap().is_empty());
        sync_config_token(&store, Some("fwa_one"), 1).await.unwrap();
        let first = lookup(&store, "fwa_one").await.unwrap().unwrap();
        sync_config_token(&store, Some("fwa_two"), 2).await.unwrap();
        assert_eq!(lookup(&store, "fwa_one").await.unwrap(), None);
        let second = lookup(&store, "fwa_two").await.unwrap().unwrap();
        assert_eq!(first.id, second.id);
        assert_eq!(second.name, FROM_CONFIG);
        // Taken out of the config: revoked. Put back: in force again.
        sync_config_token(&store, None, 3).await.unwrap();
        assert!(
            lookup(&store, "fwa_two")
                .await
                .unwrap()
                .unwrap()
                .is_revoked()
        );
        sync_config_token(&store, Some("fwa_two"), 4).await.unwrap();
        assert!(
            !lookup(&store, "fwa_two")
                .await
                .unwrap()
                .unwrap()
                .is_revoked()
        );
        // Nobody else may make a token by these names.
        for name in [FROM_CONFIG, ENROLLMENT] {
            assert!(matches!(
                create(&store, name, None, 5).await,
                Err(TokenError::Reserved(_))
            ));
        }
    }

    #[test]
    fn names_are_plain() {
        assert!(validate_name("web-1.prod:a_b").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("<b>").is_err());
        assert!(validate_name(&"x".repeat(65)).is_err());
    }
}
