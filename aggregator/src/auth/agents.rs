//! Agent tokens in the database: creating, listing and revoking them, the
//! enrollment token an aggregator makes for itself, and which token owns
//! which host id.

use std::path::{Path, PathBuf};

use serde::Serialize;
use sqlx::{Row, SqlitePool};

use super::secret;
use crate::model::TimestampMs;

/// Every agent token starts with this, so a leaked one is recognisable.
pub const PREFIX: &str = "fwa_";
/// The token an aggregator generates when it has none.
pub const ENROLLMENT: &str = "enrollment";
/// The token given in the config (`agent_token`), kept in step with it.
pub const FROM_CONFIG: &str = "config";

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
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

/// An agent token as stored (its secret is not).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentToken {
    #[serde(skip)]
    pub id: i64,
    pub name: String,
    /// When set, the token may stream only as this host.
    pub host_id: Option<String>,
    pub created_ms: TimestampMs,
    pub revoked_ms: Option<TimestampMs>,
    pub last_used_ms: Option<TimestampMs>,
}

impl AgentToken {
    pub fn is_revoked(&self) -> bool {
        self.revoked_ms.is_some()
    }
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

/// `SELECT <every column> FROM agent_tokens <rest>`, as a literal.
macro_rules! select_tokens {
    ($rest:literal) => {
        concat!(
            "SELECT id, name, host_id, created_ms, revoked_ms, last_used_ms FROM agent_tokens ",
            $rest
        )
    };
}

fn from_row(row: &sqlx::sqlite::SqliteRow) -> Result<AgentToken, sqlx::Error> {
    Ok(AgentToken {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        host_id: row.try_get("host_id")?,
        created_ms: row.try_get("created_ms")?,
        revoked_ms: row.try_get("revoked_ms")?,
        last_used_ms: row.try_get("last_used_ms")?,
    })
}

/// Makes a token. With `host_id`, it may stream only as that host, and it
/// owns the host id at once unless another token already does, so that no
/// other token can claim the host before its agent first connects.
pub async fn create(
    pool: &SqlitePool,
    name: &str,
    host_id: Option<&str>,
    now: TimestampMs,
) -> Result<NewToken, TokenError> {
    validate_name(name)?;
    if [ENROLLMENT, FROM_CONFIG].contains(&name) {
        return Err(TokenError::Reserved(name.to_owned()));
    }
    let mut new = insert(pool, name, host_id, now).await?;
    if let Some(host_id) = host_id
        && let Claim::OwnedBy(owner) = claim_host(pool, host_id, new.token.id, now).await?
    {
        new.host_owned_by = Some(owner);
    }
    Ok(new)
}

async fn insert(
    pool: &SqlitePool,
    name: &str,
    host_id: Option<&str>,
    now: TimestampMs,
) -> Result<NewToken, TokenError> {
    let secret = secret::generate(PREFIX)?;
    let inserted = sqlx::query(
        "INSERT INTO agent_tokens (name, secret_sha256, host_id, created_ms) VALUES (?, ?, ?, ?)
         ON CONFLICT (name) DO NOTHING RETURNING id",
    )
    .bind(name)
    .bind(secret::hash(&secret))
    .bind(host_id)
    .bind(now)
    .fetch_optional(pool)
    .await?;
    let Some(row) = inserted else {
        return Err(TokenError::NameTaken(name.to_owned()));
    };
    Ok(NewToken {
        token: AgentToken {
            id: row.try_get("id")?,
            name: name.to_owned(),
            host_id: host_id.map(str::to_owned),
            created_ms: now,
            revoked_ms: None,
            last_used_ms: None,
        },
        secret,
        host_owned_by: None,
    })
}

/// A token with the host ids it owns, as the `token list` command and
/// the API show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listed {
    #[serde(flatten)]
    pub token: AgentToken,
    pub hosts: Vec<String>,
}

/// Every token, oldest first, with the hosts it owns.
pub async fn list(pool: &SqlitePool) -> Result<Vec<Listed>, TokenError> {
    let rows = sqlx::query(select_tokens!("ORDER BY id"))
        .fetch_all(pool)
        .await?;
    let owners = owners(pool).await?;
    rows.iter()
        .map(|row| {
            let token = from_row(row)?;
            let hosts = owners
                .iter()
                .filter(|o| o.token_id == token.id)
                .map(|o| o.host_id.clone())
                .collect();
            Ok(Listed { token, hosts })
        })
        .collect()
}

pub async fn by_name(pool: &SqlitePool, name: &str) -> Result<AgentToken, TokenError> {
    let row = sqlx::query(select_tokens!("WHERE name = ?"))
        .bind(name)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| TokenError::NoSuchToken(name.to_owned()))?;
    Ok(from_row(&row)?)
}

/// The token whose secret this is, revoked or not.
pub async fn lookup(pool: &SqlitePool, secret: &str) -> Result<Option<AgentToken>, TokenError> {
    let row = sqlx::query(select_tokens!("WHERE secret_sha256 = ?"))
        .bind(secret::hash(secret))
        .fetch_optional(pool)
        .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

pub async fn touch(pool: &SqlitePool, id: i64, now: TimestampMs) -> Result<(), TokenError> {
    sqlx::query("UPDATE agent_tokens SET last_used_ms = ? WHERE id = ?")
        .bind(now)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Revokes a token for good; a running aggregator closes its streams
/// within seconds. Revoking a revoked token changes nothing.
pub async fn revoke(
    pool: &SqlitePool,
    name: &str,
    now: TimestampMs,
) -> Result<AgentToken, TokenError> {
    sqlx::query("UPDATE agent_tokens SET revoked_ms = ? WHERE name = ? AND revoked_ms IS NULL")
        .bind(now)
        .bind(name)
        .execute(pool)
        .await?;
    by_name(pool, name).await
}

/// Ids of revoked tokens.
pub async fn revoked_ids(pool: &SqlitePool) -> Result<Vec<i64>, TokenError> {
    let rows = sqlx::query("SELECT id FROM agent_tokens WHERE revoked_ms IS NOT NULL")
        .fetch_all(pool)
        .await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<_, _>>()?)
}

/// Keeps the `config` token in step with `agent_token` from the config: a
/// changed secret replaces the old one (the hosts it owns stay its own),
/// and with no `agent_token` the token is revoked, so that a secret taken
/// out of the config stops working.
pub async fn sync_config_token(
    pool: &SqlitePool,
    secret: Option<&str>,
    now: TimestampMs,
) -> Result<(), TokenError> {
    let Some(secret) = secret else {
        let revoked = sqlx::query(
            "UPDATE agent_tokens SET revoked_ms = ? WHERE name = ? AND revoked_ms IS NULL",
        )
        .bind(now)
        .bind(FROM_CONFIG)
        .execute(pool)
        .await?;
        if revoked.rows_affected() > 0 {
            tracing::warn!("agent_token is no longer set: revoked the agent token `config`");
        }
        return Ok(());
    };
    sqlx::query(
        "INSERT INTO agent_tokens (name, secret_sha256, created_ms) VALUES (?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET secret_sha256 = excluded.secret_sha256,
            revoked_ms = NULL",
    )
    .bind(FROM_CONFIG)
    .bind(secret::hash(secret))
    .bind(now)
    .execute(pool)
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
    pool: &SqlitePool,
    db: &Path,
    now: TimestampMs,
) -> Result<Option<String>, TokenError> {
    let path = enrollment_file(db);
    let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM agent_tokens")
        .fetch_one(pool)
        .await?
        .try_get("n")?;
    if count == 0 {
        let new = insert(pool, ENROLLMENT, None, now).await?;
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
    match lookup(pool, secret).await? {
        Some(token) if token.name == ENROLLMENT && !token.is_revoked() => {
            Ok(Some(secret.to_owned()))
        }
        _ => Ok(None),
    }
}

/// What claiming a host id for a token found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The token owns the host id (it just claimed it, or did before).
    Owned,
    /// Another token owns it.
    OwnedBy(String),
}

/// Claims `host_id` for token `token_id` unless another token owns it.
pub async fn claim_host(
    pool: &SqlitePool,
    host_id: &str,
    token_id: i64,
    now: TimestampMs,
) -> Result<Claim, TokenError> {
    sqlx::query(
        "INSERT INTO host_owners (host_id, token_id, since_ms) VALUES (?, ?, ?)
         ON CONFLICT (host_id) DO NOTHING",
    )
    .bind(host_id)
    .bind(token_id)
    .bind(now)
    .execute(pool)
    .await?;
    let row = sqlx::query(
        "SELECT o.token_id, t.name FROM host_owners o JOIN agent_tokens t ON t.id = o.token_id
         WHERE o.host_id = ?",
    )
    .bind(host_id)
    .fetch_one(pool)
    .await?;
    let owner: i64 = row.try_get("token_id")?;
    if owner == token_id {
        Ok(Claim::Owned)
    } else {
        Ok(Claim::OwnedBy(row.try_get("name")?))
    }
}

/// Gives `host_id` to the token named `token_name`; its old owner's
/// stream is closed by a running aggregator within seconds.
pub async fn reassign_host(
    pool: &SqlitePool,
    host_id: &str,
    token_name: &str,
    now: TimestampMs,
) -> Result<(), TokenError> {
    let token = by_name(pool, token_name).await?;
    if token.is_revoked() {
        return Err(TokenError::Revoked(token.name));
    }
    sqlx::query(
        "INSERT INTO host_owners (host_id, token_id, since_ms) VALUES (?, ?, ?)
         ON CONFLICT (host_id) DO UPDATE SET token_id = excluded.token_id,
            since_ms = excluded.since_ms",
    )
    .bind(host_id)
    .bind(token.id)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

/// A host id and the token that owns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Owner {
    pub host_id: String,
    #[serde(skip)]
    pub token_id: i64,
    pub token: String,
    pub since_ms: TimestampMs,
}

/// Every owned host id, by host id.
pub async fn owners(pool: &SqlitePool) -> Result<Vec<Owner>, TokenError> {
    let rows = sqlx::query(
        "SELECT o.host_id, o.token_id, t.name, o.since_ms FROM host_owners o
         JOIN agent_tokens t ON t.id = o.token_id ORDER BY o.host_id",
    )
    .fetch_all(pool)
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
        .collect::<Result<_, sqlx::Error>>()
        .map_err(TokenError::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    #[tokio::test]
    async fn tokens_are_found_by_secret_and_revoked_for_good() {
        let store = SqliteStore::in_memory().await.unwrap();
        let pool = store.pool();
        let new = create(pool, "web-1", Some("web-1"), 10).await.unwrap();
        assert!(new.secret.starts_with(PREFIX));
        let found = lookup(pool, &new.secret).await.unwrap().unwrap();
        assert_eq!(found, new.token);
        assert_eq!(lookup(pool, "fwa_nope").await.unwrap(), None);
        assert!(matches!(
            create(pool, "web-1", None, 11).await,
            Err(TokenError::NameTaken(_))
        ));
        let revoked = revoke(pool, "web-1", 20).await.unwrap();
        assert_eq!(revoked.revoked_ms, Some(20));
        assert_eq!(
            revoke(pool, "web-1", 30).await.unwrap().revoked_ms,
            Some(20)
        );
        assert_eq!(revoked_ids(pool).await.unwrap(), vec![new.token.id]);
        assert!(matches!(
            revoke(pool, "nope", 30).await,
            Err(TokenError::NoSuchToken(_))
        ));
    }

    #[tokio::test]
    async fn a_token_made_for_a_host_owns_it_from_the_start() {
        let store = SqliteStore::in_memory().await.unwrap();
        let pool = store.pool();
        let any = create(pool, "any", None, 1).await.unwrap().token;
        let bound = create(pool, "db-1", Some("db-1"), 2).await.unwrap();
        assert_eq!(bound.host_owned_by, None);
        assert_eq!(
            claim_host(pool, "db-1", any.id, 3).await.unwrap(),
            Claim::OwnedBy("db-1".into())
        );
        // Made for a host another token owns: it says so, and owns nothing.
        let second = create(pool, "db-1-new", Some("db-1"), 4).await.unwrap();
        assert_eq!(second.host_owned_by.as_deref(), Some("db-1"));
        assert_eq!(owners(pool).await.unwrap()[0].token, "db-1");
    }

    #[tokio::test]
    async fn the_first_token_owns_a_host_until_reassigned() {
        let store = SqliteStore::in_memory().await.unwrap();
        let pool = store.pool();
        let a = create(pool, "a", None, 1).await.unwrap().token;
        let b = create(pool, "b", None, 1).await.unwrap().token;
        assert_eq!(claim_host(pool, "h", a.id, 2).await.unwrap(), Claim::Owned);
        assert_eq!(claim_host(pool, "h", a.id, 3).await.unwrap(), Claim::Owned);
        assert_eq!(
            claim_host(pool, "h", b.id, 4).await.unwrap(),
            Claim::OwnedBy("a".into())
        );
        reassign_host(pool, "h", "b", 5).await.unwrap();
        assert_eq!(claim_host(pool, "h", b.id, 6).await.unwrap(), Claim::Owned);
        let owners = owners(pool).await.unwrap();
        assert_eq!(owners.len(), 1);
        assert_eq!(owners[0].token, "b");
        revoke(pool, "a", 7).await.unwrap();
        assert!(matches!(
            reassign_host(pool, "h", "a", 8).await,
            Err(TokenError::Revoked(_))
        ));
    }

    #[tokio::test]
    async fn enrollment_token_is_made_once_and_only_without_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("fw.db");
        let store = SqliteStore::open(&db).await.unwrap();
        let pool = store.pool();
        let secret = enrollment(pool, &db, 1).await.unwrap().unwrap();
        let file = std::fs::read_to_string(enrollment_file(&db)).unwrap();
        assert_eq!(file.trim(), secret);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(enrollment_file(&db))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "enrollment token readable by others");
        // Printed again on the next start, not replaced.
        assert_eq!(enrollment(pool, &db, 2).await.unwrap(), Some(secret));
        revoke(pool, ENROLLMENT, 3).await.unwrap();
        assert_eq!(enrollment(pool, &db, 4).await.unwrap(), None);
        assert_eq!(list(pool).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn config_token_follows_the_config() {
        let store = SqliteStore::in_memory().await.unwrap();
        let pool = store.pool();
        sync_config_token(pool, None, 1).await.unwrap();
        assert!(list(pool).await.unwrap().is_empty());
        sync_config_token(pool, Some("fwa_one"), 1).await.unwrap();
        let first = lookup(pool, "fwa_one").await.unwrap().unwrap();
        sync_config_token(pool, Some("fwa_two"), 2).await.unwrap();
        assert_eq!(lookup(pool, "fwa_one").await.unwrap(), None);
        let second = lookup(pool, "fwa_two").await.unwrap().unwrap();
        assert_eq!(first.id, second.id);
        assert_eq!(second.name, FROM_CONFIG);
        // Taken out of the config: revoked. Put back: in force again.
        sync_config_token(pool, None, 3).await.unwrap();
        assert!(lookup(pool, "fwa_two").await.unwrap().unwrap().is_revoked());
        sync_config_token(pool, Some("fwa_two"), 4).await.unwrap();
        assert!(!lookup(pool, "fwa_two").await.unwrap().unwrap().is_revoked());
        // Nobody else may make a token by these names.
        for name in [FROM_CONFIG, ENROLLMENT] {
            assert!(matches!(
                create(pool, name, None, 5).await,
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
