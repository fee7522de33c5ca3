//! Dashboard users: a name, an Argon2id password hash and a role.

use serde::Serialize;
use sqlx::{Row, SqlitePool};

use super::{AuthError, Result, Role, check_name, password, stored_role};
use crate::model::{TimestampMs, now_ms};

/// A user as `user list` shows it (never the hash).
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub created_ms: TimestampMs,
}

/// Creates a user; the name must be new and the password long enough.
pub async fn add(pool: &SqlitePool, name: &str, password: &str, role: Role) -> Result<User> {
    check_name("user", name)?;
    password::check(password)?;
    let hash = hash_blocking(password).await?;
    let now = now_ms();
    let inserted = sqlx::query(
        "INSERT INTO users (name, password_hash, role, created_ms) VALUES (?, ?, ?, ?)
         ON CONFLICT (name) DO NOTHING RETURNING id",
    )
    .bind(name)
    .bind(hash)
    .bind(role.as_str())
    .bind(now)
    .fetch_optional(pool)
    .await?;
    match inserted {
        Some(row) => Ok(User {
            id: row.try_get("id")?,
            name: name.to_owned(),
            role,
            created_ms: now,
        }),
        None => Err(AuthError::Exists(format!("user `{name}` already exists"))),
    }
}

/// Every user, by name.
pub async fn list(pool: &SqlitePool) -> Result<Vec<User>> {
    let rows = sqlx::query("SELECT id, name, role, created_ms FROM users ORDER BY name")
        .fetch_all(pool)
        .await?;
    rows.into_iter()
        .map(|row| {
            Ok(User {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                role: stored_role(row.try_get("role")?)?,
                created_ms: row.try_get("created_ms")?,
            })
        })
        .collect()
}

/// Removes a user and ends their sessions.
pub async fn remove(pool: &SqlitePool, name: &str) -> Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE name = ?)")
        .bind(name)
        .execute(&mut *tx)
        .await?;
    let removed = sqlx::query("DELETE FROM users WHERE name = ?")
        .bind(name)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if removed == 0 {
        return Err(AuthError::NotFound(format!("no user `{name}`")));
    }
    tx.commit().await?;
    Ok(())
}

/// Sets a new password and ends the user's sessions, so that a password
/// changed because it leaked also locks out whoever used it.
pub async fn set_password(pool: &SqlitePool, name: &str, password: &str) -> Result<()> {
    password::check(password)?;
    let hash = hash_blocking(password).await?;
    let mut tx = pool.begin().await?;
    let changed = sqlx::query("UPDATE users SET password_hash = ? WHERE name = ?")
        .bind(hash)
        .bind(name)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if changed == 0 {
        return Err(AuthError::NotFound(format!("no user `{name}`")));
    }
    sqlx::query("DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE name = ?)")
        .bind(name)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The user if `password` is theirs. An unknown name costs as much time as
/// a wrong password, so the answer's timing does not tell which names exist.
pub async fn authenticate(pool: &SqlitePool, name: &str, password: &str) -> Result<Option<User>> {
    let row = if password.len() > password::MAX_LENGTH {
        None
    } else {
        sqlx::query("SELECT id, name, role, created_ms, password_hash FROM users WHERE name = ?")
            .bind(name)
            .fetch_optional(pool)
            .await?
    };
    let stored: Option<String> = row
        .as_ref()
        .map(|r| r.try_get("password_hash"))
        .transpose()?;
    if !password::verify_async(stored, password.to_owned()).await? {
        return Ok(None);
    }
    let Some(row) = row else { return Ok(None) };
    Ok(Some(User {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        role: stored_role(row.try_get("role")?)?,
        created_ms: row.try_get("created_ms")?,
    }))
}

async fn hash_blocking(password: &str) -> Result<String> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || password::hash(&password)).await?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    #[tokio::test]
    async fn add_authenticate_change_and_remove() {
        let store = SqliteStore::in_memory().await.unwrap();
        let pool = store.pool();
        add(pool, "alice", "correct horse battery", Role::Admin)
            .await
            .unwrap();
        assert!(matches!(
            add(pool, "alice", "another long one", Role::Read).await,
            Err(AuthError::Exists(_))
        ));
        assert!(matches!(
            add(pool, "bob", "short", Role::Read).await,
            Err(AuthError::Invalid(_))
        ));
        let user = authenticate(pool, "alice", "correct horse battery")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(user.role, Role::Admin);
        assert!(
            authenticate(pool, "alice", "wrong password!")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            authenticate(pool, "nobody", "correct horse battery")
                .await
                .unwrap()
                .is_none()
        );

        set_password(pool, "alice", "a brand new password")
            .await
            .unwrap();
        assert!(
            authenticate(pool, "alice", "correct horse battery")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            authenticate(pool, "alice", "a brand new password")
                .await
                .unwrap()
                .is_some()
        );

        assert_eq!(list(pool).await.unwrap().len(), 1);
        remove(pool, "alice").await.unwrap();
        assert!(matches!(
            remove(pool, "alice").await,
            Err(AuthError::NotFound(_))
        ));
        assert!(list(pool).await.unwrap().is_empty());
    }
}
