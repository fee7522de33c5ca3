//! Who may do what: the secrets, passwords and policy; each protocol's
//! edge applies them (`api::auth` on HTTP requests, `ingest::gate` on agent
//! streams), so nothing here speaks HTTP or gRPC.
//!
//! People sign in to the dashboard with a name and password ([`users`],
//! hashed by [`password`]) and get a session cookie ([`sessions`]); scripts
//! send an API token ([`api_tokens`]) as `Authorization: Bearer`. Either
//! carries a [`Role`]: `read` sees everything, `admin` may also change
//! things. [`config`] (the `[auth]` section) says whether reading needs a
//! login at all; `api::auth` enforces all of it on every request and offers
//! the `Reader` and `Admin` extractors; [`login_limiter`] slows down
//! password guessing. The `user` and `api-token` commands are in
//! `crate::cli`.
//!
//! - [`secret`] — generating and hashing tokens.
//! - [`agent_tokens`] — agent tokens and host ownership: names, secrets,
//!   enrollment. Like users, sessions and API tokens, they are kept by the
//!   store (`store::AgentTokenStore` and its siblings); no SQL lives here.
//! - [`agent_access`] — the check on every agent stream (token, host
//!   ownership, failures per peer), and closing the streams of revoked
//!   tokens.
//! - [`failure_limiter`] — counting failed attempts per key in a window.
//! - [`quota`] — what one agent token may take: host ids, bytes per second.
//! - [`hosts`] — the `Host` names answered while reads are open (DNS
//!   rebinding).

pub mod agent_access;
pub mod agent_tokens;
pub mod api_tokens;
pub mod config;
pub mod failure_limiter;
pub mod hosts;
pub mod login_limiter;
pub mod password;
pub mod quota;
pub mod secret;
pub mod sessions;
pub mod users;

pub use crate::model::Role;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Random(#[from] secret::RandomError),
    #[error("cannot hash the password: {0}")]
    Hash(String),
    /// Input a person can fix; the message says how.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Exists(String),
    #[error("password hashing task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

pub type Result<T, E = AuthError> = std::result::Result<T, E>;

/// User and token names: what a person can type and read back in a list.
pub fn check_name(kind: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(AuthError::Invalid(format!(
            "{kind} name `{name}` must be 1 to 64 characters of letters, digits, - _ . @"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_names_are_checked() {
        for role in [Role::Admin, Role::Read] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
        assert!(check_name("user", "alice.smith@ops").is_ok());
        for bad in ["", "a b", "<script>", &"x".repeat(65)] {
            assert!(check_name("user", bad).is_err(), "{bad}");
        }
    }
}
