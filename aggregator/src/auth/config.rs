//! The `[auth]` section: whether reading needs a login (also
//! `--read-auth`), and how long a session lasts. Writing always needs an
//! admin; that is not configurable.
//!
//! ```toml
//! [auth]
//! read = "auto"          # or "login" or "open"
//! session_ttl = "12h"
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Whether the dashboard, REST reads and the WebSocket need a login.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ReadPolicy {
    /// Open when the HTTP listener is a loopback address, login otherwise.
    #[default]
    Auto,
    /// Always a session or an API token.
    Login,
    /// Anyone who can reach the listener may read.
    Open,
}

impl ReadPolicy {
    /// Whether reads need a login on a server listening on `listen`.
    pub fn requires_login(self, listen: SocketAddr) -> bool {
        match self {
            Self::Auto => !listen.ip().is_loopback(),
            Self::Login => true,
            Self::Open => false,
        }
    }
}

/// The `[auth]` section as written in the config file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthFileConfig {
    pub read: Option<ReadPolicy>,
    /// How long a dashboard login lasts, such as `12h`.
    pub session_ttl: Option<String>,
}

/// The `[auth]` settings in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    pub read: ReadPolicy,
    pub session_ttl: Duration,
}

/// Shortest and longest session lifetimes accepted.
pub const MIN_SESSION_TTL: Duration = Duration::from_secs(1);
pub const MAX_SESSION_TTL: Duration = Duration::from_secs(90 * 24 * 3600);

impl AuthFileConfig {
    /// The settings in force; the error is the key (`auth.…`) and why.
    pub fn build(&self) -> Result<AuthConfig, (String, String)> {
        let defaults = AuthConfig::default();
        let session_ttl = match &self.session_ttl {
            None => defaults.session_ttl,
            Some(text) => {
                let invalid = |reason: String| ("auth.session_ttl".to_owned(), reason);
                let d = humantime::parse_duration(text)
                    .map_err(|e| invalid(format!("`{text}` is not a duration: {e}")))?;
                if !(MIN_SESSION_TTL..=MAX_SESSION_TTL).contains(&d) {
                    return Err(invalid(format!(
                        "`{text}` must be from {} to {}",
                        humantime::format_duration(MIN_SESSION_TTL),
                        humantime::format_duration(MAX_SESSION_TTL)
                    )));
                }
                d
            }
        };
        Ok(AuthConfig {
            read: self.read.unwrap_or(defaults.read),
            session_ttl,
        })
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            read: ReadPolicy::Auto,
            session_ttl: Duration::from_secs(12 * 3600),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_open_on_loopback_only() {
        let local: SocketAddr = "127.0.0.1:7401".parse().unwrap();
        let local6: SocketAddr = "[::1]:7401".parse().unwrap();
        let public: SocketAddr = "0.0.0.0:7401".parse().unwrap();
        assert!(!ReadPolicy::Auto.requires_login(local));
        assert!(!ReadPolicy::Auto.requires_login(local6));
        assert!(ReadPolicy::Auto.requires_login(public));
        assert!(ReadPolicy::Login.requires_login(local));
        assert!(!ReadPolicy::Open.requires_login(public));
    }
}
