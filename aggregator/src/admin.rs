//! `fleetwatch-aggregator <command>`: administration of the database that
//! runs and exits, beside a running aggregator or without one.

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
    let _ = (command, config);
    anyhow::bail!("not implemented yet")
}
