//! `fleetwatch-aggregator <command>`: administration of the database that
//! runs and exits, beside a running aggregator or without one. A running
//! aggregator notices revocations and reassignments within
//! [`crate::auth::agent_access::RECHECK`]. The `user` and `api-token` commands are
//! in [`crate::auth::admin`].

use anyhow::Context;
use clap::Subcommand;

use crate::Config;
use crate::auth::agent_tokens as agents;
use crate::config::Command;
use crate::model::now_ms;
use crate::store::{AgentTokenStore, SqliteStore};

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

/// Runs one administration command against the configured database.
pub async fn run(command: &Command, config: &Config) -> anyhow::Result<()> {
    let result = match command {
        Command::User(c) => crate::auth::admin::run_user(c, config).await,
        Command::ApiToken(c) => crate::auth::admin::run_api_token(c, config).await,
        Command::Token(c) => {
            agent_command(AgentCommand::Token(c), config, &mut std::io::stdout()).await
        }
        Command::Host(c) => {
            agent_command(AgentCommand::Host(c), config, &mut std::io::stdout()).await
        }
    };
    keep_owner(&config.db);
    result
}

/// The commands about agents, handled here.
enum AgentCommand<'a> {
    Token(&'a TokenCommand),
    Host(&'a HostCommand),
}

/// Runs a `token` or `host` command, printing to `out`.
async fn agent_command(
    command: AgentCommand<'_>,
    config: &Config,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let store = SqliteStore::open(&config.db)
        .await
        .with_context(|| format!("cannot open the database {}", config.db.display()))?;
    match command {
        AgentCommand::Token(TokenCommand::Add { name, host }) => {
            if let Some(host) = host {
                crate::ids::check_host_id("--host", host)?;
            }
            let new = agents::create(&store, name, host.as_deref(), now_ms()).await?;
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
        AgentCommand::Token(TokenCommand::List) => {
            writeln!(out, "NAME\tHOST\tCREATED\tLAST USED\tREVOKED\tHOSTS OWNED")?;
            for agents::Listed { token: t, hosts } in agents::list(&store).await? {
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
        AgentCommand::Token(TokenCommand::Revoke { name }) => {
            let token = agents::revoke(&store, name, now_ms()).await?;
            writeln!(
                out,
                "agent token `{}` revoked at {}",
                token.name,
                time(token.revoked_ms)
            )?;
        }
        AgentCommand::Host(HostCommand::List) => {
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
        AgentCommand::Host(HostCommand::Reassign { host_id, token }) => {
            crate::ids::check_host_id("host id", host_id)?;
            agents::reassign_host(&store, host_id, token, now_ms()).await?;
            writeln!(out, "host `{host_id}` now belongs to agent token `{token}`")?;
        }
    }
    store.close().await;
    Ok(())
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

/// A stored time as RFC 3339 (UTC), or `-`.
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
mod tests {
    use super::*;

    async fn run_text(command: Command, config: &Config) -> anyhow::Result<String> {
        let mut out = Vec::new();
        let command = match &command {
            Command::Token(c) => AgentCommand::Token(c),
            Command::Host(c) => AgentCommand::Host(c),
            _ => anyhow::bail!("not an agent command"),
        };
        agent_command(command, config, &mut out).await?;
        Ok(String::from_utf8(out)?)
    }

    #[tokio::test]
    async fn tokens_and_hosts_round_trip_through_the_commands() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            db: dir.path().join("fw.db"),
            ..Config::default()
        };
        let add = |name: &str, host: Option<&str>| {
            Command::Token(TokenCommand::Add {
                name: name.into(),
                host: host.map(Into::into),
            })
        };
        let secret = run_text(add("web-1", Some("web-1")), &config)
            .await
            .unwrap();
        assert!(secret.trim().starts_with(agents::PREFIX), "{secret}");
        run_text(add("spare", None), &config).await.unwrap();
        assert!(run_text(add("web-1", None), &config).await.is_err());
        assert!(run_text(add("bad", Some("a/b")), &config).await.is_err());

        let listed = run_text(Command::Token(TokenCommand::List), &config)
            .await
            .unwrap();
        assert!(listed.contains("web-1\tweb-1\t"), "{listed}");
        assert!(!listed.contains(secret.trim()), "secret listed: {listed}");

        let reassign = |host: &str, token: &str| {
            Command::Host(HostCommand::Reassign {
                host_id: host.into(),
                token: token.into(),
            })
        };
        run_text(reassign("db-1", "spare"), &config).await.unwrap();
        let hosts = run_text(Command::Host(HostCommand::List), &config)
            .await
            .unwrap();
        assert!(hosts.contains("db-1\tspare\t"), "{hosts}");
        assert!(run_text(reassign("db-1", "nope"), &config).await.is_err());

        let revoked = run_text(
            Command::Token(TokenCommand::Revoke {
                name: "web-1".into(),
            }),
            &config,
        )
        .await
        .unwrap();
        assert!(revoked.contains("revoked at 20"), "{revoked}");
        assert!(
            run_text(
                Command::Token(TokenCommand::Revoke {
                    name: "nope".into()
                }),
                &config
            )
            .await
            .is_err()
        );
    }
}
