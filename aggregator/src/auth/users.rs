//! Dashboard users: a name, an Argon2id password hash and a role.

use super::{AuthError, Result, Role, check_name, password};
use crate::model::now_ms;
use crate::store::UserStore;
pub use crate::store::users::User;

/// Creates a user; the name must be new and the password long enough.
pub async fn add(store: &dyn UserStore, name: &str, password: &str, role: Role) -> Result<User> {
    check_name("user", name)?;
    password::check(password)?;
    let hash = hash_blocking(password).await?;
    store
        .insert_user(name, &hash, role, now_ms())
        .await?
        .ok_or_else(|| AuthError::Exists(format!("user `{name}` already exists")))
}

/// Every user, by name.
pub async fn list(store: &dyn UserStore) -> Result<Vec<User>> {
    Ok(store.users().await?)
}

/// Removes a user and ends their sessions.
pub async fn remove(store: &dyn UserStore, name: &str) -> Result<()> {
    if !store.remove_user(name).await? {
        return Err(AuthError::NotFound(format!("no user `{name}`")));
    }
    Ok(())
}

/// Sets a new password and ends the user's sessions, so that a password
/// changed because it leaked also locks out whoever used it.
pub async fn set_password(store: &dyn UserStore, name: &str, password: &str) -> Result<()> {
    password::check(password)?;
    let hash = hash_blocking(password).await?;
    if !store.set_password_hash(name, &hash).await? {
        return Err(AuthError::NotFound(format!("no user `{name}`")));
    }
    Ok(())
}

/// The user if `password` is theirs. An unknown name costs as much time as
/// a wrong password, so the answer's timing does not tell which names exist.
pub async fn authenticate(
    store: &dyn UserStore,
    name: &str,
    password: &str,
) -> Result<Option<User>> {
    let found = if password.len() > password::MAX_LENGTH {
        None
    } else {
        store.user_with_hash(name).await?
    };
    let (user, stored) = match found {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    if !password::verify_async(stored, password.to_owned()).await? {
        return Ok(None);
    }
    Ok(user)
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
        add(&store, "alice", "correct horse battery", Role::Admin)
            .await
            .unwrap();
        assert!(matches!(
            add(&store, "alice", "another long one", Role::Read).await,
            Err(AuthError::Exists(_))
        ));
        assert!(matches!(
            add(&store, "bob", "short", Role::Read).await,
            Err(AuthError::Invalid(_))
        ));
        let user = authenticate(&store, "alice", "correct horse battery")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(user.role, Role::Admin);
        assert!(
            authenticate(&store, "alice", "wrong password!")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            authenticate(&store, "nobody", "correct horse battery")
                .await
                .unwrap()
                .is_none()
        );

        set_password(&store, "alice", "a brand new password")
            .await
            .unwrap();
        assert!(
            authenticate(&store, "alice", "correct horse battery")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            authenticate(&store, "alice", "a brand new password")
                .await
                .unwrap()
                .is_some()
        );

        assert_eq!(list(&store).await.unwrap().len(), 1);
        remove(&store, "alice").await.unwrap();
        assert!(matches!(
            remove(&store, "alice").await,
            Err(AuthError::NotFound(_))
        ));
        assert!(list(&store).await.unwrap().is_empty());
    }
}
