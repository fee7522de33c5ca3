//! `fleetwatch-aggregator token …`: agent tokens, the credentials agents
//! stream samples with.

use std::io::Write;

use clap::Subcommand;

use super::time;
use crate::auth::agent_tokens as agents;
use crate::model::now_ms;
use crate::store::SqliteStore;

/// `fleetwatch-aggregator token …`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Makes an agent token and prints it (the only time it is shown).
    Add {
        /// A name for the token, such as the host or the team it is for.
        name: String,
        /// Let the token stream only as this host id.
        #[arg(long, value_name = "HOST_ID")]
        host: Option<String>,
    },
    /// Lists agent tokens (never their secrets).
    List,
    /// Revokes a token: agents using it are refused from now on, and a
    /// running aggregator closes their streams within seconds.
    Revoke {
        /// The token's name.
        name: String,
    },
}

/// Runs a `token` command, printing to `out` (notes go to stderr).
pub async fn run(
    command: &TokenCommand,
    store: &SqliteStore,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match command {
        TokenCommand::Add { name, host } => {
            if let Some(host) = host {
                crate::ids::check_host_id("--host", host)?;
            }
            let new = agents::create(store, name, host.as_deref(), now_ms()).await?;
            writeln!(out, "{}", new.secret)?;
            if let (Some(host), Some(owner)) = (host, &new.host_owned_by) {
                eprintln!(
                    "host `{host}` belongs to agent token `{owner}`: once its new agent is \
                     ready, move it with `fleetwatch-aggregator host reassign {host} {name}`"
                );
            }
            eprintln!(
                "agent token `{name}` created{}. It is shown only now: give it to the agent as \
                 `token` in its config, FLEETWATCH_TOKEN, or --token.",
                host.as_ref()
                    .map(|h| format!(" for host `{h}`"))
                    .unwrap_or_default()
            );
        }
        TokenCommand::List => {
            writeln!(out, "NAME\tHOST\tCREATED\tLAST USED\tREVOKED\tHOSTS OWNED")?;
            for agents::Listed { token: t, hosts } in agents::list(store).await? {
                let owned = hosts.len();
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}\t{owned}",
                    t.name,
                    t.host_id.as_deref().unwrap_or("any"),
                    time(Some(t.created_ms)),
                    time(t.last_used_ms),
                    time(t.revoked_ms),
                )?;
            }
        }
        TokenCommand::Revoke { name } => {
            let token = agents::revoke(store, name, now_ms()).await?;
            writeln!(
                out,
                "agent token `{}` revoked at {}",
                token.name,
                time(token.revoked_ms)
            )?;
        }
    }
    Ok(())
}
