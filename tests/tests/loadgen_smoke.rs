//! The load generator, run as CI runs it: the built `loadgen` binary
//! against the built debug aggregator for a few seconds with a handful of
//! agents and every measurement switched on, a two-minute backfill too. It
//! must exit 0 and report stored samples and each measurement it was asked
//! for; the figures themselves are not asserted (speed is measured, never
//! tested).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use fleetwatch_tests::binary;

/// The first number in the value column of the details row named `name`.
fn detail(report: &str, name: &str) -> Result<u64> {
    let prefix = format!("| {name} | ");
    let value = report
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .with_context(|| format!("no `{name}` row in:\n{report}"))?;
    value
        .split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())
        .context("no number")?
        .parse()
        .with_context(|| format!("`{name}`: {value}"))
}

/// How many latencies the row named `name` summarises (its `(n=N)`).
fn count(report: &str, name: &str) -> Result<u64> {
    let prefix = format!("| {name} | ");
    let value = report
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .with_context(|| format!("no `{name}` row in:\n{report}"))?;
    match value.split_once("(n=") {
        Some((_, rest)) => Ok(rest
            .split(')')
            .next()
            .unwrap_or_default()
            .parse()
            .with_context(|| format!("`{name}`: {value}"))?),
        None => Ok(0),
    }
}

#[test]
fn loadgen_streams_into_the_aggregator_and_reports() -> Result<()> {
    let out = tempfile::NamedTempFile::new()?;
    let err = tempfile::NamedTempFile::new()?;
    let aggregator = binary("fleetwatch-aggregator");
    let mut child = Command::new(binary("loadgen"))
        .args(["--agents", "5", "--workers", "20", "--interval", "500ms"])
        .args(["--duration", "4s", "--report-every", "1s"])
        .args(["--backfill", "2m", "--history-queries", "3"])
        .args(["--ws-clients", "3", "--ws-storm", "--ws-stalled", "2"])
        .arg("--snapshot")
        .arg("--aggregator-bin")
        .arg(&aggregator)
        .stdin(Stdio::null())
        .stdout(out.reopen()?)
        .stderr(err.reopen()?)
        .spawn()
        .context("start target/debug/loadgen (build it with `cargo build --bins`)")?;
    let deadline = Instant::now() + Duration::from_secs(25);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "loadgen still running after 25 s:\n{}",
                std::fs::read_to_string(out.path())?
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let report = std::fs::read_to_string(out.path())?;
    let errors = std::fs::read_to_string(err.path())?;
    assert!(
        status.success(),
        "loadgen failed ({status}):\n{report}\n{errors}"
    );

    assert!(detail(&report, "samples stored")? > 0, "{report}");
    assert_eq!(detail(&report, "agents failed")?, 0, "{report}\n{errors}");
    // Periodic rows came while it ran.
    assert!(
        report.lines().filter(|l| l.starts_with("| 1 |")).count() == 1,
        "{report}"
    );
    // Each measurement asked for ran and reported.
    assert!(
        detail(&report, "backfill of the history host")? >= 200,
        "two minutes at 500 ms:\n{report}"
    );
    assert!(
        count(&report, "history 24h p50 / p99 / max")? >= 1,
        "{report}"
    );
    assert!(
        count(&report, "history 30d p50 / p99 / max")? >= 1,
        "{report}"
    );
    assert_eq!(detail(&report, "history failed")?, 0, "{report}\n{errors}");
    assert_eq!(
        detail(&report, "ws clients connected / failed")?,
        3,
        "{report}"
    );
    assert!(
        count(&report, "ws sample → client p50 / p99 / max")? >= 1,
        "the clients timed samples:\n{report}"
    );
    assert_eq!(count(&report, "ws connect → snapshot p50 / p99 / max")?, 3);
    assert!(
        count(&report, "ack in the 10 s from the storm")? >= 1,
        "{report}"
    );
    let stalled = report
        .lines()
        .find(|l| l.starts_with("| stalled WebSocket clients | "))
        .context("no stalled clients row")?;
    assert!(
        stalled.contains("| 2 never reading, 2 connections subscribed to every host, 0 failed"),
        "{stalled}"
    );
    let snapshot = report
        .lines()
        .find(|l| l.starts_with("| snapshot | "))
        .context("no snapshot row")?;
    assert!(snapshot.ends_with("for 5 hosts |"), "{snapshot}");
    Ok(())
}

#[test]
fn loadgen_refuses_unbounded_runs_and_a_missing_aggregator() -> Result<()> {
    let run = |args: &[&str]| -> Result<(bool, String)> {
        let out = Command::new(binary("loadgen"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .context("run target/debug/loadgen (build it with `cargo build --bins`)")?;
        Ok((out.status.success(), String::from_utf8(out.stderr)?))
    };
    for (args, says) in [
        (&["--duration", "3h"][..], "--duration is capped at 2h"),
        (&["--agents", "20001"][..], "--agents must be 1 to 20000"),
        (
            &["--ws-clients", "1001"][..],
            "--ws-clients is capped at 1000",
        ),
        (
            &["--aggregator-bin", "/nonexistent/fleetwatch-aggregator"][..],
            "start /nonexistent/fleetwatch-aggregator",
        ),
    ] {
        let (ok, stderr) = run(args)?;
        assert!(!ok, "{args:?} must fail");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    Ok(())
}
