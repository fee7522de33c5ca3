//! `fleetwatch-aggregator api-token …`: tokens scripts send as
//! `Authorization: Bearer`.

use std::io::Write;

use clap::Subcommand;

use super::time;
use crate::Config;
use crate::auth::{Role, api_tokens};
use crate::store::SqliteStore;

/// `fleetwatch-aggregator api-token …`
#[derive(Debug, Subcommand)]
pub enum ApiTokenCommand {
    /// Makes a token and prints its secret, once.
    Add {
        name: String,
        #[arg(long, value_enum)]
        role: Role,
    },
    /// Lists tokens (never their secrets).
    List,
    /// Revokes a token: requests with it are refused from now on.
    Revoke { name: String },
}

/// Runs an `api-token` command, printing to `out`; `config` gives the
/// address shown in the example `curl`.
pub async fn run(
    command: &ApiTokenCommand,
    config: &Config,
    store: &SqliteStore,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match command {
        ApiTokenCommand::Add { name, role } => {
            let (_, secret) = api_tokens::add(store, name, *role).await?;
            let base = match &config.public_url {
                Some(url) => url.trim_end_matches('/').to_owned(),
                None => format!("{}://{}", config.http_scheme(), config.http_listen),
            };
            writeln!(
                out,
                "API token `{name}` ({role} role). Its secret, shown only this once:\n"
            )?;
            writeln!(out, "  {secret}\n")?;
            writeln!(out, "Use it as:")?;
            writeln!(
                out,
                "  curl -H \"Authorization: Bearer {secret}\" {base}/api/hosts"
            )?;
        }
        ApiTokenCommand::List => {
            let list = api_tokens::list(store).await?;
            if list.is_empty() {
                writeln!(out, "no API tokens")?;
            }
            for token in list {
                let state = match token.revoked_ms {
                    Some(at) => format!("revoked {}", time(Some(at))),
                    None => match token.last_used_ms {
                        Some(at) => format!("last used {}", time(Some(at))),
                        None => "never used".to_owned(),
                    },
                };
                writeln!(
                    out,
                    "{:<24} {:<6} created {}  {state}",
                    token.name,
                    token.role,
                    time(Some(token.created_ms))
                )?;
            }
        }
        ApiTokenCommand::Revoke { name } => {
            api_tokens::revoke(store, name).await?;
            writeln!(out, "API token `{name}` revoked")?;
        }
    }
    Ok(())
}
