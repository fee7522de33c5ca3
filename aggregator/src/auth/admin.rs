//! `fleetwatch-aggregator user …` and `fleetwatch-aggregator api-token …`:
//! dashboard users and API tokens, managed in the configured database
//! (migrated on open), beside a running aggregator or without one.

use std::io::{BufRead, IsTerminal};

use anyhow::{Context, bail};
use clap::Subcommand;

use super::{Role, api_tokens, users};
use crate::Config;
use crate::store::SqliteStore;

/// `fleetwatch-aggregator user …`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Adds a user; asks for the password (or reads it from stdin).
    Add {
        name: String,
        /// `admin` may change things (silences, rules, tokens); `read` may not.
        #[arg(long, value_enum)]
        role: Role,
        /// Read the password from the first line of stdin instead of the terminal.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Lists users and their roles.
    List,
    /// Removes a user and ends their sessions.
    Remove { name: String },
    /// Sets a new password and ends the user's sessions.
    Passwd {
        name: String,
        /// Read the password from the first line of stdin instead of the terminal.
        #[arg(long)]
        password_stdin: bool,
    },
}

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

async fn open(config: &Config) -> anyhow::Result<SqliteStore> {
    SqliteStore::open(&config.db)
        .await
        .with_context(|| format!("cannot open the database {}", config.db.display()))
}

/// Runs a `user` command.
pub async fn run_user(command: &UserCommand, config: &Config) -> anyhow::Result<()> {
    let store = open(config).await?;
    match command {
        UserCommand::Add {
            name,
            role,
            password_stdin,
        } => {
            super::check_name("user", name)?;
            let password = read_password(*password_stdin)?;
            users::add(&store, name, &password, *role).await?;
            println!("user `{name}` added with the {role} role");
        }
        UserCommand::List => {
            let list = users::list(&store).await?;
            if list.is_empty() {
                println!(
                    "no users; add one with: fleetwatch-aggregator user add NAME --role admin"
                );
            }
            for user in list {
                println!(
                    "{:<24} {:<6} created {}",
                    user.name,
                    user.role,
                    when(user.created_ms)
                );
            }
        }
        UserCommand::Remove { name } => {
            users::remove(&store, name).await?;
            println!("user `{name}` removed; their sessions have ended");
        }
        UserCommand::Passwd {
            name,
            password_stdin,
        } => {
            let password = read_password(*password_stdin)?;
            users::set_password(&store, name, &password).await?;
            println!("password of `{name}` changed; their sessions have ended");
        }
    }
    store.close().await;
    Ok(())
}

/// Runs an `api-token` command.
pub async fn run_api_token(command: &ApiTokenCommand, config: &Config) -> anyhow::Result<()> {
    let store = open(config).await?;
    match command {
        ApiTokenCommand::Add { name, role } => {
            let (_, secret) = api_tokens::add(&store, name, *role).await?;
            let base = match &config.public_url {
                Some(url) => url.trim_end_matches('/').to_owned(),
                None => format!("{}://{}", crate::http_scheme(config), config.http_listen),
            };
            println!("API token `{name}` ({role} role). Its secret, shown only this once:\n");
            println!("  {secret}\n");
            println!("Use it as:");
            println!("  curl -H \"Authorization: Bearer {secret}\" {base}/api/hosts");
        }
        ApiTokenCommand::List => {
            let list = api_tokens::list(&store).await?;
            if list.is_empty() {
                println!("no API tokens");
            }
            for token in list {
                let state = match token.revoked_ms {
                    Some(at) => format!("revoked {}", when(at)),
                    None => match token.last_used_ms {
                        Some(at) => format!("last used {}", when(at)),
                        None => "never used".to_owned(),
                    },
                };
                println!(
                    "{:<24} {:<6} created {}  {state}",
                    token.name,
                    token.role,
                    when(token.created_ms)
                );
            }
        }
        ApiTokenCommand::Revoke { name } => {
            api_tokens::revoke(&store, name).await?;
            println!("API token `{name}` revoked");
        }
    }
    store.close().await;
    Ok(())
}

/// A time in ms as RFC 3339 (UTC, seconds).
fn when(ms: i64) -> String {
    let at =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
}

/// The new password: from stdin's first line with `--password-stdin`,
/// otherwise typed twice on the terminal without echo.
fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        let password = line.trim_end_matches(['\r', '\n']).to_owned();
        super::password::check(&password)?;
        return Ok(password);
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "stdin is not a terminal: pass --password-stdin and write the password on its first line"
        );
    }
    let password = rpassword::prompt_password("Password: ").context("cannot read the password")?;
    super::password::check(&password)?;
    let again =
        rpassword::prompt_password("Same password again: ").context("cannot read the password")?;
    if again != password {
        bail!("the two passwords differ; nothing changed");
    }
    Ok(password)
}
