//! Invalid config files must stop the binaries from starting, each with the
//! exact error it states. Every file under `tests/fixtures/invalid-config/`
//! (`agent/` and `aggregator/`) opens with `# error: <message>`, `{file}`
//! standing for the fixture's own path; the file is loaded through the real
//! loading path (the command line parsed with `--config`, then
//! `Config::load`), and the message must also name the file, the key and a
//! reason. A couple go through the built binaries as an operator sees them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use clap::Parser;
use fleetwatch_tests::run_bin;

fn fixtures(binary: &str) -> Result<Vec<PathBuf>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/invalid-config")
        .join(binary);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("{}", dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    files.sort();
    ensure!(files.len() >= 10, "too few fixtures in {}", dir.display());
    Ok(files)
}

/// The error a fixture states on its first line.
fn expected(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)?;
    let first = text.lines().next().unwrap_or_default();
    let message = first
        .strip_prefix("# error: ")
        .with_context(|| format!("{}: no `# error: ` first line", path.display()))?;
    Ok(message.replace("{file}", &path.display().to_string()))
}

/// The key a message of the form `ORIGIN: key `KEY`: REASON` names, with
/// the reason non-empty.
fn key_and_reason(message: &str) -> Option<(&str, &str)> {
    let (_, rest) = message.split_once(": key `")?;
    let (key, reason) = rest.split_once("`: ")?;
    (!key.is_empty() && !reason.trim().is_empty()).then_some((key, reason))
}

/// Loads every fixture of `binary` with `load` and checks its message.
fn check_all(binary: &str, load: impl Fn(&Path) -> Result<String>) -> Result<()> {
    let mut wrong = Vec::new();
    for path in fixtures(binary)? {
        let want = expected(&path)?;
        let got = load(&path)?;
        let names_all = got.contains(&path.display().to_string()) && key_and_reason(&got).is_some();
        if got != want || !names_all {
            wrong.push(format!("{}\n  want: {want}\n  got:  {got}", path.display()));
        }
    }
    ensure!(wrong.is_empty(), "{}", wrong.join("\n"));
    Ok(())
}

#[test]
fn invalid_agent_configs_fail_naming_file_key_and_reason() -> Result<()> {
    check_all("agent", |path| {
        let args = fleetwatch_agent::config::Args::try_parse_from([
            "fleetwatch-agent".as_ref(),
            "--config".as_ref(),
            path.as_os_str(),
        ])?;
        match fleetwatch_agent::Config::load(&args) {
            Ok(_) => anyhow::bail!("{} loaded without error", path.display()),
            Err(e) => Ok(e.to_string()),
        }
    })
}

#[test]
fn invalid_aggregator_configs_fail_naming_file_key_and_reason() -> Result<()> {
    check_all("aggregator", |path| {
        let args = fleetwatch_aggregator::config::Args::try_parse_from([
            "fleetwatch-aggregator".as_ref(),
            "--config".as_ref(),
            path.as_os_str(),
        ])?;
        match fleetwatch_aggregator::Config::load(&args) {
            Ok(_) => anyhow::bail!("{} loaded without error", path.display()),
            Err(e) => Ok(e.to_string()),
        }
    })
}

#[test]
fn the_binaries_refuse_to_start_with_the_fixtures_error() -> Result<()> {
    for (binary, fixture) in [
        ("fleetwatch-agent", "agent/bad-worker-regex.toml"),
        ("fleetwatch-aggregator", "aggregator/bad-address.toml"),
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/invalid-config")
            .join(fixture);
        let out = run_bin(binary, &["--config", path.to_str().context("path")?])?;
        ensure!(!out.status.success(), "{binary} started with {fixture}");
        let stderr = String::from_utf8(out.stderr)?;
        let want = expected(&path)?;
        ensure!(
            stderr.contains(&want),
            "{binary}: {stderr:?} lacks {want:?}"
        );
    }
    Ok(())
}

#[test]
fn the_message_format_is_checked() {
    assert_eq!(
        key_and_reason("a.toml: key `x.y`: must be 1"),
        Some(("x.y", "must be 1"))
    );
    assert_eq!(key_and_reason("a.toml: key ``: must be 1"), None);
    assert_eq!(key_and_reason("config file a.toml: oops"), None);
}
