//! `fleetwatch-aggregator host …`: which agent token owns which host id.

use std::io::Write;

use clap::Subcommand;

use super::time;
use crate::auth::agent_tokens as agents;
use crate::model::now_ms;
use crate::store::{AgentTokenStore, SqliteStore};

/// `fleetwatch-aggregator host …`
#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// Lists host ids and the agent token that owns each.
    List,
    /// Gives a host id to another agent token (say, a rebuilt host with a
    /// new token); a stream still using the old owner is closed.
    Reassign {
        /// The host id.
        host_id: String,
        /// The name of the token that owns it from now on.
        token: String,
    },
}

/// Runs a `host` command, printing to `out`.
pub async fn run(
    command: &HostCommand,
    store: &SqliteStore,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match command {
        HostCommand::List => {
            writeln!(out, "HOST\tTOKEN\tSINCE")?;
            for o in store.host_owners().await? {
                writeln!(
                    out,
                    "{}\t{}\t{}",
                    o.host_id,
                    o.token,
                    time(Some(o.since_ms))
                )?;
            }
        }
        HostCommand::Reassign { host_id, token } => {
            crate::ids::check_host_id("host id", host_id)?;
            agents::reassign_host(store, host_id, token, now_ms()).await?;
            writeln!(out, "host `{host_id}` now belongs to agent token `{token}`")?;
        }
    }
    Ok(())
}
