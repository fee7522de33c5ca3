//! `fleetwatch-aggregator <command>`: administration of the database that
//! runs and exits, beside a running aggregator or without one. The `user`
//! and `api-token` commands are in [`crate::auth::admin`].

use clap::Subcommand;

use crate::Config;

/// `fleetwatch-aggregator token …`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Lists agent tokens (never their secrets).
    List,
}

/// `fleetwatch-aggregator host …`
#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// Lists hosts and the agent token that owns each.
    List,
}

/// Runs one administration command against the configured database.
pub async fn run(command: &crate::config::Command, config: &Config) -> anyhow::Result<()> {
    use crate::config::Command;
    match command {
        // Dashboard users and API tokens live in `auth::admin`.
        Command::User(c) => crate::auth::admin::run_user(c, config).await,
        Command::ApiToken(c) => crate::auth::admin::run_api_token(c, config).await,
        Command::Token(_) | Command::Host(_) => anyhow::bail!("not implemented yet"),
    }
}
