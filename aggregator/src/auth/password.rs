//! Passwords: Argon2id with the crate's default parameters, stored as PHC
//! strings (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`), so that stronger
//! parameters later still verify old hashes. Hashing takes tens of
//! milliseconds on purpose: callers in async code go through
//! [`verify_async`], which runs it on the blocking pool.

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use super::{AuthError, Result};

/// Shortest password `user add` and `user passwd` accept.
pub const MIN_LENGTH: usize = 10;
/// Longest: beyond this it is a mistake or an attempt to make hashing slow.
pub const MAX_LENGTH: usize = 1024;

/// Checks the length rules; the error says what is wrong.
pub fn check(password: &str) -> Result<()> {
    let chars = password.chars().count();
    if chars < MIN_LENGTH {
        return Err(AuthError::Invalid(format!(
            "the password must be at least {MIN_LENGTH} characters (it has {chars})"
        )));
    }
    if password.len() > MAX_LENGTH {
        return Err(AuthError::Invalid(format!(
            "the password must be at most {MAX_LENGTH} bytes"
        )));
    }
    Ok(())
}

/// The PHC string of `password` with a fresh random salt.
pub fn hash(password: &str) -> Result<String> {
    let salt = super::secret::random::<16>().map_err(AuthError::Random)?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `stored`. A malformed stored
/// hash never matches.
pub fn verify(stored: &str, password: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(e) => {
            tracing::warn!(error = %e, "a stored password hash does not parse");
            false
        }
    }
}

/// A hash of nothing anyone knows, verified against when the user does not
/// exist so that an unknown name takes as long as a wrong password.
static DUMMY_HASH: LazyLock<Option<String>> =
    LazyLock::new(|| hash("fleetwatch: no such user, dummy password").ok());

/// [`verify`] on the blocking pool. With `stored = None` (no such user) it
/// does the same work against a dummy hash and returns false.
pub async fn verify_async(stored: Option<String>, password: String) -> Result<bool> {
    Ok(tokio::task::spawn_blocking(move || match stored {
        Some(stored) => verify(&stored, &password),
        None => {
            if let Some(dummy) = DUMMY_HASH.as_deref() {
                verify(dummy, &password);
            }
            false
        }
    })
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_salted() {
        let a = hash("correct horse battery").unwrap();
        let b = hash("correct horse battery").unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "a fresh salt each time");
        assert!(verify(&a, "correct horse battery"));
        assert!(!verify(&a, "correct horse battery!"));
        assert!(!verify("not a hash", "anything"));
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(check("123456789").is_err());
        assert!(check("1234567890").is_ok());
        assert!(check(&"x".repeat(MAX_LENGTH + 1)).is_err());
    }

    #[tokio::test]
    async fn unknown_users_never_verify() {
        assert!(
            !verify_async(None, "whatever password".into())
                .await
                .unwrap()
        );
        let stored = hash("a long enough one").unwrap();
        assert!(
            verify_async(Some(stored), "a long enough one".into())
                .await
                .unwrap()
        );
    }
}
