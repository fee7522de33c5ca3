//! The agent's configuration through its layers: defaults, a file, flags.

use std::path::Path;

use clap::Parser;
use fleetwatch_common::config::{ConfigError, Layers, flag_for_key};

use super::*;

fn no_machine_id() -> Result<String, String> {
    Err("no machine id in tests".to_owned())
}

pub(super) fn args(list: &[&str]) -> Args {
    Args::try_parse_from(std::iter::once("fleetwatch-agent").chain(list.iter().copied()))
        .expect("args parse")
}

/// The config from `flags` over a file `agent.toml` holding `toml`.
pub(super) fn load(flags: &[&str], toml: &str) -> Result<Config, ConfigError> {
    load_with(flags, toml, no_machine_id)
}

fn load_with(
    flags: &[&str],
    toml: &str,
    machine_id: impl FnOnce() -> Result<String, String>,
) -> Result<Config, ConfigError> {
    let args = args(flags);
    let layers = Layers::from_toml(Some(Path::new("agent.toml")), toml, &args, flag_for_key)?;
    Config::from_layers(&layers, &args, machine_id)
}

#[test]
fn defaults_apply_without_file() {
    let cfg = load(&["--host-id", "h1"], "").expect("valid");
    assert_eq!(cfg.aggregator, "http://127.0.0.1:7400");
    assert_eq!(cfg.interval, Duration::from_secs(5));
    assert_eq!(cfg.host_id, "h1");
    assert!(cfg.workers.is_empty());
}

#[test]
fn spool_and_cap_keys_are_read_and_checked() {
    let cfg = load(
        &["--host-id", "h1", "--max-workers-per-group", "8"],
        r#"
        state_dir = "/srv/fw-state"
        spool_max_age = "6h"
        backfill_rate = 20
        max_filesystems = 16
        "#,
    )
    .expect("valid");
    assert_eq!(cfg.state_dir, PathBuf::from("/srv/fw-state"));
    assert_eq!(cfg.spool_max_age, Duration::from_secs(6 * 3600));
    assert_eq!(cfg.backfill_rate, 20);
    assert_eq!((cfg.max_workers_per_group, cfg.max_filesystems), (8, 16));

    let defaults = load(&["--host-id", "h1"], "").expect("valid");
    assert_eq!(defaults.spool_max_age, Duration::from_secs(48 * 3600));
    assert_eq!(defaults.backfill_rate, 100);

    for (flag, value, key) in [
        ("--spool-max-age", "10s", "spool_max_age"),
        ("--backfill-rate", "0", "backfill_rate"),
        ("--max-filesystems", "0", "max_filesystems"),
    ] {
        let err = load(&["--host-id", "h1", flag, value], "")
            .expect_err("invalid")
            .to_string();
        assert!(err.contains(key), "{err}");
        assert!(err.starts_with(&format!("{flag}: ")), "{err}");
    }
}

#[test]
fn machine_id_is_the_default_host_id() {
    let cfg = load_with(&[], "", || Ok("abc123".to_owned())).expect("valid");
    assert_eq!(cfg.host_id, "abc123");
    let err = load(&[], "").expect_err("no host id").to_string();
    assert!(
        err.starts_with("/etc/machine-id: key `host_id`: no host id"),
        "{err}"
    );
}

#[test]
fn flags_override_file() {
    let cfg = load(
        &["--interval", "500ms", "--worker", "web=^gunicorn .*:2"],
        r#"
        aggregator = "http://agg:7400"
        interval = "10s"
        host_id = "from-file"
        [[worker]]
        name = "queue"
        process_name = "celery"
        min_alive = 3
        "#,
    )
    .expect("valid");
    assert_eq!(cfg.aggregator, "http://agg:7400");
    assert_eq!(cfg.interval, Duration::from_millis(500));
    assert_eq!(cfg.host_id, "from-file");
    assert_eq!(cfg.workers.len(), 2);
    assert_eq!(cfg.workers[0].min_alive, 3);
    assert!(matches!(&cfg.workers[0].matcher, Matcher::ProcessName(n) if n == "celery"));
    assert_eq!(cfg.workers[1].name, "web");
    assert_eq!(cfg.workers[1].min_alive, 2);
    assert!(
        matches!(&cfg.workers[1].matcher, Matcher::Cmdline(re) if re.as_str() == "^gunicorn .*")
    );
}

#[test]
fn filesystem_and_network_lists_replace_their_defaults() {
    let cfg = load(&["--host-id", "h", "--state-dir", "/var/lib/x"], "").expect("valid");
    assert_eq!(cfg.system, SystemConfig::default());
    assert!(cfg.process_events);
    assert_eq!(cfg.state_dir, Path::new("/var/lib/x"));
    assert!(!cfg.system.filesystems.types.keeps("proc"));

    let cfg = load(
        &["--host-id", "h"],
        "process_events = false\n[filesystems]\nexclude_types = [\"tmpfs\"]\n\
         include_mounts = [\"/data*\"]\n[network]\ninclude = [\"eth*\"]\n",
    )
    .expect("valid");
    assert!(!cfg.process_events);
    let fs = &cfg.system.filesystems;
    assert!(fs.types.keeps("proc"), "the default list is replaced");
    assert!(!fs.types.keeps("tmpfs"));
    assert!(fs.mounts.keeps("/data/db") && !fs.mounts.keeps("/"));
    assert!(cfg.system.interfaces.keeps("eth0") && !cfg.system.interfaces.keeps("wlan0"));
    let err = load(&["--host-id", "h"], "[filesystems]\nexclude = []")
        .expect_err("unknown key")
        .to_string();
    assert!(err.contains("key `filesystems.exclude`"), "{err}");
}

#[test]
fn unknown_key_is_named() {
    let err = load(&["--host-id", "h"], "intervall = \"1s\"")
        .expect_err("unknown key")
        .to_string();
    assert!(
        err.starts_with("agent.toml: key `intervall`: unknown field"),
        "{err}"
    );
}

#[test]
fn bad_values_name_the_key() {
    let cases = [
        ("interval = \"fast\"", "interval"),
        ("interval = \"2h\"", "interval"),
        ("interval = \"10ms\"", "interval"),
        ("aggregator = \"agg:7400\"", "aggregator"),
        ("host_id = \"has space\"", "host_id"),
        ("[[worker]]\nname = \"a\"", "worker[0]"),
        (
            "[[worker]]\nname = \"a\"\ncmdline = \"x\"\nexe = \"/bin/x\"",
            "worker[0]",
        ),
        ("[[worker]]\nname = \"a\"\ncmdline = \"(\"", "worker[0]"),
        (
            "[[worker]]\nname = \"a\"\ncmdline = \"x\"\n[[worker]]\nname = \"a\"\ncmdline = \"y\"",
            "worker.name",
        ),
        ("state_dir = \"relative/dir\"", "state_dir"),
        (
            "[filesystems]\nexclude_types = [\"\"]",
            "filesystems.exclude_types",
        ),
        ("[network]\ninclude = [\" \"]", "network.include"),
        ("buffer_bytes = \"lots\"", "buffer_bytes"),
        (
            "[[worker]]\nname = \"a\"\ncmdline = \"x\"\nmin_alive = -1",
            "worker[0].min_alive",
        ),
    ];
    for (text, key) in cases {
        let text = if text.contains("host_id") {
            text.to_owned()
        } else {
            format!("host_id = \"h\"\n{text}")
        };
        let err = load(&[], &text).expect_err(&text).to_string();
        assert!(err.contains(&format!("`{key}`")), "{text}: {err}");
        assert!(err.starts_with("agent.toml: key `"), "{err}");
    }
}

#[test]
fn example_config_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/agent.example.toml");
    let cfg = Config::load(&args(&["--config", path, "--host-id", "h"])).expect("valid");
    assert_eq!(cfg.workers.len(), 3);
    assert!(matches!(cfg.workers[2].matcher, Matcher::Exe(_)));
}

#[test]
fn missing_file_is_reported_with_its_path() {
    let err = Config::load(&args(&["--config", "/nonexistent/agent.toml"]))
        .expect_err("missing file")
        .to_string();
    assert!(err.contains("/nonexistent/agent.toml"), "{err}");
}
