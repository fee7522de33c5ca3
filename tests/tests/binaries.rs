//! End-to-end through the built binaries, as an operator runs them: the
//! command line and `--help`, bad config refusing to start, streaming from
//! the agent binary to the aggregator binary, and clean exits on SIGTERM.
//!
//! The binaries come from `FLEETWATCH_BIN_DIR` (default: the workspace's
//! `target/debug`, which `scripts/test` builds first).

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use fleetwatch_tests::{Workers, wait_for};

fn bin(name: &str) -> PathBuf {
    let dir = std::env::var_os("FLEETWATCH_BIN_DIR").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/debug")),
        PathBuf::from,
    );
    dir.join(name)
}

fn run(name: &str, args: &[&str]) -> Result<Output> {
    let path = bin(name);
    Command::new(&path)
        .args(args)
        .env("RUST_LOG", "info")
        .output()
        .with_context(|| {
            format!(
                "run {} (build it with `cargo build --bins`)",
                path.display()
            )
        })
}

/// A child process that is killed if the test fails before stopping it.
struct Proc(Child);

impl Proc {
    fn start(name: &str, args: &[&str]) -> Result<Self> {
        let child = Command::new(bin(name))
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("start {name}"))?;
        Ok(Self(child))
    }

    /// Sends SIGTERM and waits for the exit; returns the exit code and log.
    fn terminate(mut self) -> Result<(Option<i32>, String)> {
        let pid = self.0.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.0.try_wait()? {
                let mut log = String::new();
                if let Some(mut stderr) = self.0.stderr.take() {
                    std::io::Read::read_to_string(&mut stderr, &mut log)?;
                }
                return Ok((status.code(), log));
            }
            if Instant::now() > deadline {
                bail!("{pid} did not exit within 10 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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
    let db = dir.path().join("fw.db");
    let (grpc, http) = (free_port()?, free_port()?);
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
    let mut workers = Workers::new(&Workers::unique_tag(3));
    workers.spawn()?;
    let spec = format!("jobs={}:1", workers.regex());
    let agent = Proc::start(
        "fleetwatch-agent",
        &[
            "--aggregator",
            &format!("http://127.0.0.1:{grpc}"),
            "--interval",
            "200ms",
            "--host-id",
            "binary-host",
            "--worker",
            &spec,
        ],
    )?;
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
