//! The agent's configuration: built-in defaults, then a TOML file, then
//! `FLEETWATCH_` environment variables, then command-line flags, layered by
//! [`fleetwatch_common::config`] (shared with the aggregator).
//!
//! - [`args`] — the command line, [`Args`]; clap reads the environment.
//! - [`file`] — the TOML file's shape, [`FileConfig`].
//! - [`workers`] — worker groups from `[[worker]]` and `--worker`.
//! - `tls` — trust and client certificate for an https:// aggregator.
//! - `token` — the agent token, inline or from a file.
//! - [`host`] — the default host id and state directory.
//! - this file — [`Config`], what the agent runs on, built by
//!   [`Config::load`] from the layers.
//!
//! The `[filesystems]` and `[network]` sections live beside the collectors
//! they configure, in `collect::settings`.

pub mod args;
pub mod file;
pub mod host;
#[cfg(test)]
mod tests;
mod tls;
mod token;
pub mod workers;

use std::path::PathBuf;
use std::time::Duration;

use fleetwatch_common::config::{Layers, flag_for_key};

pub use args::Args;
pub use file::{FileConfig, WorkerGroupFile};
pub use fleetwatch_common::config::{ConfigError, parse_duration};
pub use host::validate_host_id;
pub use workers::{Matcher, WorkerGroupConfig};

use crate::collect::settings::system_config;
use crate::collect::system::SystemConfig;
use crate::tls::TlsSettings;

/// Longest interval we accept; beyond it "offline" detection stops making sense.
const MAX_INTERVAL: Duration = Duration::from_secs(3600);
/// Shortest interval we accept.
const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// The validated configuration the agent runs on.
#[derive(Debug, Clone)]
pub struct Config {
    pub aggregator: String,
    pub interval: Duration,
    pub host_id: String,
    /// The spool's byte bound.
    pub buffer_bytes: usize,
    /// Where the agent keeps its state (the spool in `spool/`).
    pub state_dir: PathBuf,
    /// The spool's age bound.
    pub spool_max_age: Duration,
    /// Most backlog samples per second sent after a reconnect.
    pub backfill_rate: u32,
    /// Caps on what one sample reports.
    pub max_workers_per_group: usize,
    pub max_filesystems: usize,
    pub workers: Vec<WorkerGroupConfig>,
    /// TLS settings for an https:// aggregator; `None` for http://.
    pub tls: Option<TlsSettings>,
    /// The agent token sent on every stream.
    pub token: Option<String>,
    /// Count restarts from the kernel's process events where allowed.
    pub process_events: bool,
    /// Which filesystems and network interfaces are reported.
    pub system: SystemConfig,
}

impl Config {
    /// Layers defaults, the config file named by `args`, and `args` itself
    /// (flags and environment), and checks the result.
    pub fn load(args: &Args) -> Result<Self, ConfigError> {
        let layers = Layers::load(args.config.as_deref(), args, flag_for_key)?;
        Self::from_layers(&layers, args, host::read_machine_id)
    }

    fn from_layers(
        layers: &Layers,
        args: &Args,
        machine_id: impl FnOnce() -> Result<String, String>,
    ) -> Result<Self, ConfigError> {
        let file: FileConfig = layers.extract()?;

        let aggregator = file
            .aggregator
            .clone()
            .unwrap_or_else(|| "http://127.0.0.1:7400".to_owned());
        if !(aggregator.starts_with("http://") || aggregator.starts_with("https://")) {
            return Err(layers.invalid(
                "aggregator",
                format!("`{aggregator}` must start with http:// or https://"),
            ));
        }
        let tls = tls::settings(layers, &file, &aggregator)?;
        let token = token::token(layers, args)?;

        let interval = duration(layers, "interval", file.interval.as_deref(), "5s")?;
        if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&interval) {
            return Err(layers.invalid(
                "interval",
                format!(
                    "{} is outside {}..={}",
                    humantime::format_duration(interval),
                    humantime::format_duration(MIN_INTERVAL),
                    humantime::format_duration(MAX_INTERVAL)
                ),
            ));
        }

        let host_id = match file.host_id {
            Some(id) => {
                validate_host_id(&id).map_err(|e| layers.invalid("host_id", e))?;
                id
            }
            None => {
                let invalid = |reason: String| ConfigError::Invalid {
                    origin: host::MACHINE_ID.to_owned(),
                    key: "host_id".to_owned(),
                    reason,
                };
                let id = machine_id().map_err(|e| {
                    invalid(format!("no host id: set `host_id` or --host-id ({e})"))
                })?;
                validate_host_id(&id).map_err(invalid)?;
                id
            }
        };

        let buffer_bytes = file.buffer_bytes.unwrap_or(64 << 20);
        if buffer_bytes < 16 << 10 {
            return Err(layers.invalid("buffer_bytes", "must be at least 16384"));
        }
        let state_dir = match file.state_dir {
            Some(dir) if !dir.is_absolute() => {
                return Err(layers.invalid(
                    "state_dir",
                    format!("`{}` must be an absolute path", dir.display()),
                ));
            }
            Some(dir) => dir,
            None => host::default_state_dir(),
        };
        let spool_max_age = duration(
            layers,
            "spool_max_age",
            file.spool_max_age.as_deref(),
            "48h",
        )?;
        if spool_max_age < Duration::from_secs(60) {
            return Err(layers.invalid("spool_max_age", "must be at least 1m"));
        }
        let backfill_rate = file.backfill_rate.unwrap_or(100);
        if backfill_rate == 0 {
            return Err(layers.invalid("backfill_rate", "must be at least 1 sample per second"));
        }
        let max_workers_per_group = file.max_workers_per_group.unwrap_or(256);
        let max_filesystems = file.max_filesystems.unwrap_or(128);
        for (key, value) in [
            ("max_workers_per_group", max_workers_per_group),
            ("max_filesystems", max_filesystems),
        ] {
            if !(1..=1024).contains(&value) {
                return Err(layers.invalid(key, "must be 1 to 1024"));
            }
        }

        let mut workers = Vec::new();
        for (i, group) in file.worker.into_iter().enumerate() {
            let key = format!("worker[{i}]");
            workers.push(
                workers::group_from_file(group).map_err(|e| layers.invalid_in_file(&key, e))?,
            );
        }
        for spec in &args.workers {
            workers.push(workers::parse_worker_flag(spec).map_err(|reason| {
                ConfigError::Invalid {
                    origin: "--worker".to_owned(),
                    key: spec.clone(),
                    reason,
                }
            })?);
        }
        for (i, group) in workers.iter().enumerate() {
            if workers[..i].iter().any(|g| g.name == group.name) {
                return Err(layers.invalid_in_file(
                    "worker.name",
                    format!("worker group `{}` is defined twice", group.name),
                ));
            }
        }
        let system = system_config(file.filesystems, file.network)
            .map_err(|(key, reason)| layers.invalid_in_file(key, reason))?;

        Ok(Self {
            aggregator,
            interval,
            host_id,
            buffer_bytes,
            state_dir,
            spool_max_age,
            backfill_rate,
            max_workers_per_group,
            max_filesystems,
            workers,
            tls,
            token,
            process_events: file.process_events.unwrap_or(true),
            system,
        })
    }
}

/// The duration `key` is set to, or `default`; an error names the layer.
fn duration(
    layers: &Layers,
    key: &str,
    text: Option<&str>,
    default: &str,
) -> Result<Duration, ConfigError> {
    parse_duration(text.unwrap_or(default)).map_err(|e| layers.invalid(key, e))
}
