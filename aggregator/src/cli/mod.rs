//! The aggregator's command line: [`Cli`] is what `main` parses — the
//! run flags (the top layer of the configuration, [`crate::config::Args`]),
//! `--test-webhook`, and the administration commands, one file per family:
//!
//! - [`token`] — `token add|list|revoke`: agent tokens.
//! - [`host`] — `host list|reassign`: which agent token owns which host id.
//! - [`user`] — `user add|list|remove|passwd`: dashboard users.
//! - [`api_token`] — `api-token add|list|revoke`: tokens for scripts.
//! - [`webhook`] — `--test-webhook`: one test notification per receiver.
//!
//! A command runs against the configured database and exits; it is safe to
//! run while the aggregator is running, which notices revocations and
//! reassignments within [`crate::auth::agent_access::RECHECK`]. This module imports
//! the config, never the other way round.

pub mod api_token;
pub mod host;
pub mod token;
pub mod user;
pub mod webhook;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::Config;
use crate::store::SqliteStore;

/// Command line of `fleetwatch-aggregator`.
#[derive(Debug, Parser)]
#[command(
    name = "fleetwatch-aggregator",
    version,
    about = "Receives samples from fleetwatch agents over gRPC, stores them, and serves the API and dashboard.",
    long_about = "Receives samples from fleetwatch agents over gRPC, stores them in SQLite, and \
serves the REST API and dashboard over HTTP.\n\nPrecedence: flags, then FLEETWATCH_* environment \
variables, then the config file, then built-in defaults."
)]
pub struct Cli {
    /// The flags (and their environment variables) that configure a run.
    #[command(flatten)]
    pub args: crate::config::Args,

    /// Send a test notification to every webhook in the config, report
    /// each result, and exit (non-zero if any failed).
    #[arg(long)]
    pub test_webhook: bool,

    /// Without a command, the aggregator runs. A command manages its
    /// database (the one from --db or the config) and exits; it is safe to
    /// run while the aggregator is running.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `fleetwatch-aggregator <command>`: administration that exits when done.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Agent tokens: the credentials agents stream samples with.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Which agent token owns which host id.
    #[command(subcommand)]
    Host(host::HostCommand),
    /// Dashboard users: names, passwords and roles.
    #[command(subcommand)]
    User(user::UserCommand),
    /// API tokens: credentials for scripts (Authorization: Bearer).
    #[command(subcommand)]
    ApiToken(api_token::ApiTokenCommand),
}

/// Runs one administration command against the configured database.
pub async fn run(command: &Command, config: &Config) -> anyhow::Result<()> {
    let result = run_in_store(command, config, &mut std::io::stdout()).await;
    keep_owner(&config.db);
    result
}

/// Opens the database, runs `command` printing to `out`, closes it.
async fn run_in_store(
    command: &Command,
    config: &Config,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let store = SqliteStore::open(&config.db)
        .await
        .with_context(|| format!("cannot open the database {}", config.db.display()))?;
    let result = match command {
        Command::Token(c) => token::run(c, &store, out).await,
        Command::Host(c) => host::run(c, &store, out).await,
        Command::User(c) => user::run(c, &store, out).await,
        Command::ApiToken(c) => api_token::run(c, config, &store, out).await,
    };
    store.close().await;
    result
}

/// Run as root against the service's database, SQLite may have made its
/// `-wal` and `-shm` files root's, which the service's own user could then
/// not open: give them the database file's owner.
fn keep_owner(db: &std::path::Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(db) else {
        return;
    };
    for suffix in ["-wal", "-shm"] {
        let mut path = db.as_os_str().to_owned();
        path.push(suffix);
        let path = std::path::PathBuf::from(path);
        if let Ok(m) = std::fs::metadata(&path)
            && (m.uid(), m.gid()) != (meta.uid(), meta.gid())
            && let Err(e) = std::os::unix::fs::chown(&path, Some(meta.uid()), Some(meta.gid()))
        {
            eprintln!(
                "warning: {} is not owned like {}: {e}",
                path.display(),
                db.display()
            );
        }
    }
}

/// A stored time as RFC 3339 (UTC, seconds), or `-`.
fn time(ms: Option<i64>) -> String {
    ms.and_then(|ms| u64::try_from(ms).ok())
        .map(|ms| {
            humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms),
            )
            .to_string()
        })
        .unwrap_or_else(|| "-".to_owned())
}

#[cfg(test)]
mod tests;
