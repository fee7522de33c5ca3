//! The `token` and `host` commands against a real database.

use super::host::HostCommand;
use super::token::TokenCommand;
use super::*;
use crate::auth::agent_tokens as agents;

async fn run_text(command: Command, config: &Config) -> anyhow::Result<String> {
    let mut out = Vec::new();
    run_in_store(&command, config, &mut out).await?;
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
