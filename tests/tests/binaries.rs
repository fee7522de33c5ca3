//! End-to-end through the built binaries, as an operator runs them: the
//! command line and `--help`, bad config refusing to start, streaming from
//! the agent binary to the aggregator binary, and clean exits on SIGTERM.
//!
//! The binaries come from `FLEETWATCH_BIN_DIR` (default: the workspace's
//! `target/debug`, which `scripts/test` builds first).

use std::time::Duration;

use anyhow::{Context, Result};
use fleetwatch_tests::{Proc, Workers, run_bin as run, wait_for};

/// The aggregator binary on free ports, its database in `dir`, with no
/// agent token set up; returns it and its gRPC and HTTP ports.
fn start_aggregator(dir: &std::path::Path) -> Result<(Proc, u16, u16)> {
    let (grpc, http) = (free_port()?, free_port()?);
    let db = dir.join("fw.db");
    let aggregator = Proc::start(
        "fleetwatch-aggregator",
        &[
            "--grpc-listen",
            &format!("127.0.0.1:{grpc}"),
            "--http-listen",
            &format!("127.0.0.1:{http}"),
            "--db",
            db.to_str().context("path")?,
        ],
    )?;
    Ok((aggregator, grpc, http))
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[test]
fn help_explains_every_option() -> Result<()> {
    let agent = String::from_utf8(run("fleetwatch-agent", &["--help"])?.stdout)?;
    for option in [
        "--config",
        "--aggregator",
        "--interval",
        "--host-id",
        "--worker",
        "--buffer-bytes",
        "--state-dir",
        "--spool-max-age",
        "--backfill-rate",
        "FLEETWATCH_AGGREGATOR",
        "GROUP=REGEX[:MIN]",
    ] {
        assert!(
            agent.contains(option),
            "agent --help lacks {option}:\n{agent}"
        );
    }
    let aggregator = String::from_utf8(run("fleetwatch-aggregator", &["--help"])?.stdout)?;
    for option in [
        "--config",
        "--grpc-listen",
        "--http-listen",
        "--db",
        "--retention",
    ] {
        assert!(
            aggregator.contains(option),
            "aggregator --help lacks {option}:\n{aggregator}"
        );
    }
    let version = String::from_utf8(run("fleetwatch-agent", &["--version"])?.stdout)?;
    assert!(version.starts_with("fleetwatch-agent "), "{version}");
    Ok(())
}

#[test]
fn bad_config_stops_start_up_naming_file_key_and_reason() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("agent.toml");
    std::fs::write(&file, "interval = \"often\"\n")?;
    let out = run(
        "fleetwatch-agent",
        &["--config", file.to_str().context("path")?, "--host-id", "h"],
    )?;
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr)?;
    assert!(err.contains("agent.toml"), "{err}");
    assert!(err.contains("`interval`"), "{err}");
    assert!(err.contains("not a duration"), "{err}");

    std::fs::write(&file, "[[worker]]\nname = \"q\"\ncmdline = \"(\"\n")?;
    let out = run(
        "fleetwatch-agent",
        &["--config", file.to_str().context("path")?, "--host-id", "h"],
    )?;
    let err = String::from_utf8(out.stderr)?;
    assert!(
        err.contains("worker[0]") && err.contains("regular expression"),
        "{err}"
    );

    let file = dir.path().join("aggregator.toml");
    std::fs::write(&file, "grpc_listen = \"everywhere\"\n")?;
    let out = run(
        "fleetwatch-aggregator",
        &["--config", file.to_str().context("path")?],
    )?;
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr)?;
    assert!(
        err.contains("aggregator.toml") && err.contains("`grpc_listen`"),
        "{err}"
    );

    std::fs::write(&file, "grpc_port = 7400\n")?;
    let out = run(
        "fleetwatch-aggregator",
        &["--config", file.to_str().context("path")?],
    )?;
    let err = String::from_utf8(out.stderr)?;
    assert!(
        err.contains("unknown field") && err.contains("grpc_port"),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn binaries_stream_and_stop_cleanly_on_sigterm() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (aggregator, grpc, http) = start_aggregator(dir.path())?;
    // Without any agent token the aggregator makes an enrollment token and
    // logs the command that enrolls an agent: run exactly that.
    let command = wait_for("the enrollment command", Duration::from_secs(20), || {
        let log = aggregator.log();
        async move {
            log.lines()
                .find_map(|l| l.split_once("enroll an agent with: "))
                .map(|(_, command)| command.trim().to_owned())
        }
    })
    .await?;
    let token = std::fs::read_to_string(dir.path().join("enrollment-token"))?;
    assert_eq!(
        command,
        format!(
            "fleetwatch-agent --aggregator http://127.0.0.1:{grpc} --token {}",
            token.trim()
        )
    );
    let mut words = command.split_whitespace();
    assert_eq!(words.next(), Some("fleetwatch-agent"));
    let mut args: Vec<&str> = words.collect();
    let mut workers = Workers::new(&Workers::unique_tag(3));
    workers.spawn()?;
    let spec = format!("jobs={}:1", workers.regex());
    let state = dir
        .path()
        .join("agent-state")
        .to_string_lossy()
        .into_owned();
    args.extend([
        "--state-dir",
        &state,
        "--interval",
        "200ms",
        "--host-id",
        "binary-host",
        "--worker",
        &spec,
    ]);
    let agent = Proc::start("fleetwatch-agent", &args)?;
    let url = format!("http://127.0.0.1:{http}/api/workers/status?host=binary-host");
    wait_for(
        "the agent binary's worker in the API",
        Duration::from_secs(20),
        || {
            let request = reqwest::get(url.clone());
            async move {
                let body: serde_json::Value = request.await.ok()?.json().await.ok()?;
                (body[0]["groups"][0]["alive"] == 1).then_some(())
            }
        },
    )
    .await?;

    let (code, log) = agent.terminate()?;
    assert_eq!(code, Some(0), "agent exit code; log:\n{log}");
    assert!(log.contains("SIGTERM"), "{log}");
    assert!(log.contains("agent stopped"), "{log}");
    let (code, log) = aggregator.terminate()?;
    assert_eq!(code, Some(0), "aggregator exit code; log:\n{log}");
    assert!(log.contains("aggregator stopped"), "{log}");
    Ok(())
}

#[tokio::test]
async fn test_webhook_flag_reports_each_receiver() -> Result<()> {
    use axum::routing::post;
    let received = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |body: axum::Json<serde_json::Value>| {
            let counter = counter.clone();
            async move {
                if body["test"] == true {
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let good = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dead = free_port()?;

    let dir = tempfile::tempdir()?;
    let file = dir.path().join("aggregator.toml");
    std::fs::write(
        &file,
        format!(
            "[[alerts.webhooks]]\nname = \"good\"\nurl = \"http://{good}/hook\"\n\
             [[alerts.webhooks]]\nname = \"dead\"\nurl = \"http://127.0.0.1:{dead}/hook\"\n\
             [alerts.notify]\nmax_attempts = 2\nretry_backoff = \"50ms\"\n"
        ),
    )?;
    let path = file.to_str().context("path")?.to_owned();
    let out = tokio::task::spawn_blocking(move || {
        run(
            "fleetwatch-aggregator",
            &["--config", &path, "--test-webhook"],
        )
    })
    .await??;
    let stdout = String::from_utf8(out.stdout)?;
    assert!(!out.status.success(), "a dead receiver fails the run");
    assert!(stdout.contains("good: delivered"), "{stdout}");
    assert!(stdout.contains("dead: FAILED"), "{stdout}");
    assert_eq!(received.load(std::sync::atomic::Ordering::SeqCst), 1);
    Ok(())
}

#[tokio::test]
async fn a_wrong_token_is_refused_and_logged_on_both_sides() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (aggregator, grpc, http) = start_aggregator(dir.path())?;
    let wrong = format!("fwa_{}", "7".repeat(64));
    let state = dir
        .path()
        .join("agent-state")
        .to_string_lossy()
        .into_owned();
    let agent = Proc::start(
        "fleetwatch-agent",
        &[
            "--state-dir",
            &state,
            "--aggregator",
            &format!("http://127.0.0.1:{grpc}"),
            "--interval",
            "200ms",
            "--host-id",
            "intruder",
            "--token",
            &wrong,
        ],
    )?;
    wait_for(
        "the refusal in the aggregator's log",
        Duration::from_secs(20),
        || {
            let log = aggregator.log();
            async move {
                log.lines()
                    .find(|l| l.contains("agent refused") && l.contains("unknown agent token"))
                    .map(str::to_owned)
            }
        },
    )
    .await
    .and_then(|line| {
        anyhow::ensure!(
            line.contains("peer=Some(127.0.0.1:"),
            "no peer address: {line}"
        );
        Ok(())
    })?;
    wait_for(
        "the refusal in the agent's log",
        Duration::from_secs(20),
        || {
            let log = agent.log();
            async move {
                log.contains("the aggregator refused this agent")
                    .then_some(())
                    .filter(|()| log.contains("unknown agent token"))
            }
        },
    )
    .await?;
    let hosts: serde_json::Value = reqwest::get(format!("http://127.0.0.1:{http}/api/hosts"))
        .await?
        .json()
        .await?;
    assert_eq!(hosts, serde_json::json!([]), "the refused agent got in");
    let (code, _) = agent.terminate()?;
    assert_eq!(code, Some(0));
    aggregator.terminate()?;
    Ok(())
}
