//! Who may do what.
//!
//! People sign in to the dashboard with a name and password ([`users`],
//! hashed by [`password`]) and get a session cookie ([`sessions`]); scripts
//! send an API token ([`api_tokens`]) as `Authorization: Bearer`. Either
//! carries a [`Role`]: `read` sees everything, `admin` may also change
//! things. [`policy`] says whether reading needs a login at all; [`http`]
//! enforces all of it on every request and offers the `Reader` and `Admin`
//! extractors; [`rate_limit`] slows down password guessing; [`admin`] is the
//! `user` and `api-token` commands.
//!
//! - [`secret`] — generating and hashing tokens.
//! - [`agents`] — agent tokens and host ownership in the database.
//! - [`gate`] — the check on every agent stream, and closing the streams
//!   of revoked tokens.
//! - [`limit`] — counting failed attempts per peer.

pub mod admin;
pub mod agents;
pub mod api_tokens;
pub mod gate;
pub mod http;
pub mod limit;
pub mod password;
pub mod policy;
pub mod rate_limit;
pub mod secret;
pub mod sessions;
pub mod users;

use serde::Serialize;

/// What an authenticated user or API token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything `read` may, and changes: silences, rules, tokens, commands.
    Admin,
    /// The dashboard, REST API and WebSocket, read-only.
    Read,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Read => "read",
        }
    }

    /// The stored form back; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Self::Admin),
            "read" => Some(Self::Read),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("database: {0}")]
    Store(#[from] sqlx::Error),
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
    #[error("the database holds role `{0}`, which is neither admin nor read")]
    CorruptRole(String),
    #[error("password hashing task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

pub type Result<T, E = AuthError> = std::result::Result<T, E>;

/// A role as stored, checked.
fn stored_role(text: String) -> Result<Role> {
    Role::parse(&text).ok_or(AuthError::CorruptRole(text))
}

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
