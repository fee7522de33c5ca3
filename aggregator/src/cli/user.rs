//! `fleetwatch-aggregator user …`: dashboard users, their passwords and
//! roles.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, bail};
use clap::Subcommand;

use super::time;
use crate::auth::{Role, password, users};
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

/// Runs a `user` command, printing to `out`.
pub async fn run(
    command: &UserCommand,
    store: &SqliteStore,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            name,
            role,
            password_stdin,
        } => {
            crate::auth::check_name("user", name)?;
            let password = read_password(*password_stdin)?;
            users::add(store, name, &password, *role).await?;
            writeln!(out, "user `{name}` added with the {role} role")?;
        }
        UserCommand::List => {
            let list = users::list(store).await?;
            if list.is_empty() {
                writeln!(
                    out,
                    "no users; add one with: fleetwatch-aggregator user add NAME --role admin"
                )?;
            }
            for user in list {
                writeln!(
                    out,
                    "{:<24} {:<6} created {}",
                    user.name,
                    user.role,
                    time(Some(user.created_ms))
                )?;
            }
        }
        UserCommand::Remove { name } => {
            users::remove(store, name).await?;
            writeln!(out, "user `{name}` removed; their sessions have ended")?;
        }
        UserCommand::Passwd {
            name,
            password_stdin,
        } => {
            let password = read_password(*password_stdin)?;
            users::set_password(store, name, &password).await?;
            writeln!(
                out,
                "password of `{name}` changed; their sessions have ended"
            )?;
        }
    }
    Ok(())
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
        password::check(&password)?;
        return Ok(password);
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "stdin is not a terminal: pass --password-stdin and write the password on its first line"
        );
    }
    let password = rpassword::prompt_password("Password: ").context("cannot read the password")?;
    password::check(&password)?;
    let again =
        rpassword::prompt_password("Same password again: ").context("cannot read the password")?;
    if again != password {
        bail!("the two passwords differ; nothing changed");
    }
    Ok(password)
}
