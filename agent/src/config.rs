//! The agent's configuration: built-in defaults, then a TOML file, then
//! `FLEETWATCH_` environment variables, then command-line flags.
//!
//! [`Args`] is the command line (clap reads the environment variables for
//! us); [`FileConfig`] is the TOML file; [`Config::load`] merges them into the
//! validated [`Config`] the rest of the agent runs on.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use fleetwatch_common::config::pick;
use regex::Regex;
use serde::Deserialize;

use crate::collect::settings::{FilesystemsFile, NetworkFile, system_config};
use crate::collect::system::SystemConfig;
use crate::tls::{TlsSettings, Trust};

/// Longest interval we accept; beyond it "offline" detection stops making sense.
const MAX_INTERVAL: Duration = Duration::from_secs(3600);
/// Shortest interval we accept.
const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// Errors that stop the agent from starting, each naming where the bad value came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{origin}: key `{key}`: {reason}")]
    Invalid {
        origin: String,
        key: String,
        reason: String,
    },
    #[error("no host id: set `host_id` or --host-id ({0})")]
    NoHostId(String),
}

/// Command line of `fleetwatch-agent`. Every flag can also be set through the
/// environment variable named beside it, and in the config file.
#[derive(Debug, Default, Parser)]
#[command(
    name = "fleetwatch-agent",
    version,
    about = "Samples this host and its worker processes and streams the samples to a fleetwatch aggregator.",
    long_about = "Samples this host (CPU, memory, filesystems, disk and network I/O, load) and the \
worker processes named in its worker groups, and streams the samples over gRPC to a fleetwatch \
aggregator. Every sample is written to a bounded spool on disk (under --state-dir) before it is \
sent and kept until the aggregator acknowledges it, so outages and agent restarts lose nothing; \
after a reconnect new samples go first and the backlog follows at --backfill-rate.\n\nPrecedence: flags, then FLEETWATCH_* environment variables, then the config \
file, then built-in defaults."
)]
pub struct Args {
    /// TOML config file (see deploy/agent.example.toml for every key).
    #[arg(long, short = 'c', env = "FLEETWATCH_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// gRPC address of the aggregator [default: http://127.0.0.1:7400].
    #[arg(long, env = "FLEETWATCH_AGGREGATOR", value_name = "URL")]
    pub aggregator: Option<String>,

    /// Sampling interval, such as 1s, 500ms or 5m [default: 5s].
    #[arg(long, env = "FLEETWATCH_INTERVAL", value_name = "DURATION")]
    pub interval: Option<String>,

    /// Identity of this host in the fleet [default: the contents of /etc/machine-id].
    #[arg(long, env = "FLEETWATCH_HOST_ID", value_name = "ID")]
    pub host_id: Option<String>,

    /// A worker group whose processes' command lines match REGEX, with at
    /// least MIN alive (default 1). Repeatable; adds to the groups of the
    /// config file. Example: --worker 'celery=celery .* worker:4'
    #[arg(long = "worker", value_name = "GROUP=REGEX[:MIN]")]
    pub workers: Vec<String>,

    /// Most bytes of unacknowledged samples kept while the aggregator is
    /// unreachable; the oldest are dropped first [default: 64MiB].
    #[arg(long, env = "FLEETWATCH_BUFFER_BYTES", value_name = "BYTES")]
    pub buffer_bytes: Option<usize>,

    /// Directory for the agent's state: the spool of unacknowledged samples
    /// lives in its `spool/` [default: $STATE_DIRECTORY (systemd), else
    /// /var/lib/fleetwatch-agent if it exists, else ./fleetwatch-agent-state].
    #[arg(long, env = "FLEETWATCH_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Unacknowledged samples older than this are dropped [default: 48h].
    #[arg(long, env = "FLEETWATCH_SPOOL_MAX_AGE", value_name = "DURATION")]
    pub spool_max_age: Option<String>,

    /// Most spooled samples per second resent after a reconnect, behind the
    /// live ones [default: 100].
    #[arg(long, env = "FLEETWATCH_BACKFILL_RATE", value_name = "SAMPLES")]
    pub backfill_rate: Option<u32>,

    /// Most processes of one worker group reported in a sample; the rest
    /// are counted as omitted [default: 256].
    #[arg(long, env = "FLEETWATCH_MAX_WORKERS_PER_GROUP", value_name = "N")]
    pub max_workers_per_group: Option<usize>,

    /// Most filesystems reported in a sample; the rest are counted as
    /// omitted [default: 128].
    #[arg(long, env = "FLEETWATCH_MAX_FILESYSTEMS", value_name = "N")]
    pub max_filesystems: Option<usize>,

    /// CA certificate(s) (PEM) that the aggregator's certificate must chain
    /// to, for an https:// aggregator [default: the Mozilla roots].
    #[arg(long, env = "FLEETWATCH_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,

    /// Trust exactly the aggregator certificate with this SHA-256
    /// fingerprint (64 hex digits, colons optional) instead of a CA.
    #[arg(long, env = "FLEETWATCH_PIN_SHA256", value_name = "HEX")]
    pub pin_sha256: Option<String>,

    /// Client certificate (PEM) for an aggregator that requires mutual TLS.
    #[arg(long, env = "FLEETWATCH_CLIENT_CERT", value_name = "FILE")]
    pub client_cert: Option<PathBuf>,

    /// Private key (PEM) of --client-cert.
    #[arg(long, env = "FLEETWATCH_CLIENT_KEY", value_name = "FILE")]
    pub client_key: Option<PathBuf>,

    /// Agent token the aggregator knows this agent by (`fwa_…`, from the
    /// aggregator's start-up log or `fleetwatch-aggregator token add`).
    /// Prefer --token-file or the environment: other local users can read
    /// a flag in the process list.
    #[arg(
        long,
        env = "FLEETWATCH_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,

    /// File holding the agent token (such as a systemd credential).
    #[arg(long, env = "FLEETWATCH_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

/// The TOML file, as written by an operator.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub aggregator: Option<String>,
    pub interval: Option<String>,
    pub host_id: Option<String>,
    pub buffer_bytes: Option<usize>,
    pub state_dir: Option<PathBuf>,
    pub spool_max_age: Option<String>,
    pub backfill_rate: Option<u32>,
    pub max_workers_per_group: Option<usize>,
    pub max_filesystems: Option<usize>,
    pub ca_file: Option<PathBuf>,
    pub pin_sha256: Option<String>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
    /// Count worker restarts from the kernel's process events (default true).
    pub process_events: Option<bool>,
    #[serde(default)]
    pub filesystems: FilesystemsFile,
    #[serde(default)]
    pub network: NetworkFile,
    #[serde(default)]
    pub worker: Vec<WorkerGroupFile>,
}

/// One `[[worker]]` table of the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerGroupFile {
    pub name: String,
    /// Regular expression matched against the command line (arguments joined by spaces).
    pub cmdline: Option<String>,
    /// Exact process name (the kernel's 15-byte `comm`, or argv[0]'s file name).
    pub process_name: Option<String>,
    /// Exact path of the executable (needs permission to read /proc/PID/exe).
    pub exe: Option<PathBuf>,
    /// How many processes of the group must be alive (default 1).
    pub min_alive: Option<u32>,
}

/// How a worker group recognises its processes.
#[derive(Debug, Clone)]
pub enum Matcher {
    Cmdline(Regex),
    ProcessName(String),
    Exe(PathBuf),
}

#[derive(Debug, Clone)]
pub struct WorkerGroupConfig {
    pub name: String,
    pub matcher: Matcher,
    pub min_alive: u32,
}

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
    /// Merges defaults, the config file named by `args`, and `args` itself.
    pub fn load(args: &Args) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let file_origin = args
            .config
            .as_ref()
            .map_or_else(|| "config".to_owned(), |p| p.display().to_string());
        let config = Self::merge(args, file, &file_origin, read_machine_id)?;
        Ok(config)
    }

    fn merge(
        args: &Args,
        file: FileConfig,
        file_origin: &str,
        machine_id: impl FnOnce() -> Result<String, String>,
    ) -> Result<Self, ConfigError> {
        let invalid = |origin: &str, key: &str, reason: String| ConfigError::Invalid {
            origin: origin.to_owned(),
            key: key.to_owned(),
            reason,
        };

        let aggregator = match (&args.aggregator, file.aggregator.clone()) {
            (Some(url), _) => (url.clone(), "--aggregator"),
            (None, Some(url)) => (url, file_origin),
            (None, None) => ("http://127.0.0.1:7400".to_owned(), "default"),
        };
        let (aggregator, origin) = aggregator;
        if !(aggregator.starts_with("http://") || aggregator.starts_with("https://")) {
            return Err(invalid(
                origin,
                "aggregator",
                format!("`{aggregator}` must start with http:// or https://"),
            ));
        }

        let tls = tls_settings(args, &file, file_origin, &aggregator, origin)?;
        let token = token(args, &file, file_origin)?;

        let (interval, origin) = match (&args.interval, file.interval) {
            (Some(text), _) => (text.clone(), "--interval"),
            (None, Some(text)) => (text, file_origin),
            (None, None) => ("5s".to_owned(), "default"),
        };
        let interval = parse_duration(&interval).map_err(|e| invalid(origin, "interval", e))?;
        if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&interval) {
            return Err(invalid(
                origin,
                "interval",
                format!(
                    "{} is outside {}..={}",
                    humantime::format_duration(interval),
                    humantime::format_duration(MIN_INTERVAL),
                    humantime::format_duration(MAX_INTERVAL)
                ),
            ));
        }

        let (host_id, origin) = match (&args.host_id, file.host_id) {
            (Some(id), _) => (id.clone(), "--host-id"),
            (None, Some(id)) => (id, file_origin),
            (None, None) => (
                machine_id().map_err(ConfigError::NoHostId)?,
                "/etc/machine-id",
            ),
        };
        validate_host_id(&host_id).map_err(|e| invalid(origin, "host_id", e))?;

        let buffer_bytes = args.buffer_bytes.or(file.buffer_bytes).unwrap_or(64 << 20);
        if buffer_bytes < 16 << 10 {
            return Err(invalid(
                file_origin,
                "buffer_bytes",
                "must be at least 16384".to_owned(),
            ));
        }

        let file_has_state_dir = file.state_dir.is_some();
        let state_dir = match (&args.state_dir, file.state_dir) {
            (Some(dir), _) => dir.clone(),
            (None, Some(dir)) => dir,
            (None, None) => default_state_dir(),
        };
        let (max_age, origin) = match (&args.spool_max_age, file.spool_max_age) {
            (Some(text), _) => (text.clone(), "--spool-max-age"),
            (None, Some(text)) => (text, file_origin),
            (None, None) => ("48h".to_owned(), "default"),
        };
        let spool_max_age =
            parse_duration(&max_age).map_err(|e| invalid(origin, "spool_max_age", e))?;
        if spool_max_age < Duration::from_secs(60) {
            return Err(invalid(
                origin,
                "spool_max_age",
                "must be at least 1m".to_owned(),
            ));
        }
        let backfill_rate = args.backfill_rate.or(file.backfill_rate).unwrap_or(100);
        if backfill_rate == 0 {
            return Err(invalid(
                file_origin,
                "backfill_rate",
                "must be at least 1 sample per second".to_owned(),
            ));
        }
        let max_workers_per_group = args
            .max_workers_per_group
            .or(file.max_workers_per_group)
            .unwrap_or(256);
        let max_filesystems = args.max_filesystems.or(file.max_filesystems).unwrap_or(128);
        for (key, value) in [
            ("max_workers_per_group", max_workers_per_group),
            ("max_filesystems", max_filesystems),
        ] {
            if !(1..=1024).contains(&value) {
                return Err(invalid(file_origin, key, "must be 1 to 1024".to_owned()));
            }
        }

        let mut workers = Vec::new();
        for (i, group) in file.worker.into_iter().enumerate() {
            let key = format!("worker[{i}]");
            workers.push(group_from_file(group).map_err(|e| invalid(file_origin, &key, e))?);
        }
        for spec in &args.workers {
            workers.push(parse_worker_flag(spec).map_err(|e| invalid("--worker", spec, e))?);
        }
        for (i, group) in workers.iter().enumerate() {
            if workers[..i].iter().any(|g| g.name == group.name) {
                return Err(invalid(
                    file_origin,
                    "worker.name",
                    format!("worker group `{}` is defined twice", group.name),
                ));
            }
        }

        if (args.state_dir.is_some() || file_has_state_dir) && !state_dir.is_absolute() {
            return Err(invalid(
                file_origin,
                "state_dir",
                format!("`{}` must be an absolute path", state_dir.display()),
            ));
        }
        let system = system_config(file.filesystems, file.network)
            .map_err(|(key, reason)| invalid(file_origin, key, reason))?;

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

/// The agent token: `token`, or the contents of the file `token_file`
/// names. Flags and environment come before the config file; an empty
/// token file counts as unset (systemd hands one over when no token was
/// installed). It must be printable ASCII to travel in gRPC metadata.
fn token(args: &Args, file: &FileConfig, file_origin: &str) -> Result<Option<String>, ConfigError> {
    let invalid = |origin: &str, key: &str, reason: String| ConfigError::Invalid {
        origin: origin.to_owned(),
        key: key.to_owned(),
        reason,
    };
    let read = |path: &Path, origin: &str| {
        std::fs::read_to_string(path).map_err(|e| {
            invalid(
                origin,
                "token_file",
                format!("cannot read {}: {e}", path.display()),
            )
        })
    };
    let levels = [
        (&args.token, &args.token_file, "--token", "--token-file"),
        (&file.token, &file.token_file, file_origin, file_origin),
    ];
    let mut found = None;
    for (inline, path, inline_origin, path_origin) in levels {
        match (inline, path) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    inline_origin,
                    "token",
                    "set token or token_file, not both".to_owned(),
                ));
            }
            (Some(token), None) => found = Some((token.clone(), inline_origin, "token")),
            (None, Some(path)) => {
                let text = read(path, path_origin)?;
                if !text.trim().is_empty() {
                    found = Some((text, path_origin, "token_file"));
                }
            }
            (None, None) => {}
        }
        if found.is_some() {
            break;
        }
    }
    let Some((token, origin, key)) = found else {
        return Ok(None);
    };
    let token = token.trim().to_owned();
    if token.is_empty() || !token.chars().all(|c| c.is_ascii_graphic()) {
        return Err(invalid(
            origin,
            key,
            "the token must be one word of printable ASCII, such as fwa_…".to_owned(),
        ));
    }
    Ok(Some(token))
}

/// The TLS keys, checked: files exist and parse now, the pin is well formed,
/// and nothing TLS is set for a plain http:// aggregator.
fn tls_settings(
    args: &Args,
    file: &FileConfig,
    file_origin: &str,
    aggregator: &str,
    aggregator_origin: &str,
) -> Result<Option<TlsSettings>, ConfigError> {
    let invalid = |origin: &str, key: &str, reason: String| ConfigError::Invalid {
        origin: origin.to_owned(),
        key: key.to_owned(),
        reason,
    };
    let ca_file = pick(&args.ca_file, &file.ca_file, "--ca-file", file_origin);
    let pin = pick(
        &args.pin_sha256,
        &file.pin_sha256,
        "--pin-sha256",
        file_origin,
    );
    let cert = pick(
        &args.client_cert,
        &file.client_cert,
        "--client-cert",
        file_origin,
    );
    let key = pick(
        &args.client_key,
        &file.client_key,
        "--client-key",
        file_origin,
    );

    if !aggregator.starts_with("https://") {
        let set = [
            ca_file.as_ref().map(|(_, o)| ("ca_file", o)),
            pin.as_ref().map(|(_, o)| ("pin_sha256", o)),
            cert.as_ref().map(|(_, o)| ("client_cert", o)),
            key.as_ref().map(|(_, o)| ("client_key", o)),
        ];
        if let Some((key, origin)) = set.into_iter().flatten().next() {
            return Err(invalid(
                origin,
                key,
                format!(
                    "only applies to TLS, but the aggregator URL `{aggregator}` ({aggregator_origin}) is not https://"
                ),
            ));
        }
        return Ok(None);
    }

    let trust = match (ca_file, pin) {
        (Some(_), Some((_, origin))) => {
            return Err(invalid(
                &origin,
                "pin_sha256",
                "set either ca_file or pin_sha256, not both".to_owned(),
            ));
        }
        (Some((path, origin)), None) => {
            fleetwatch_common::pem::load_certs(&path)
                .map_err(|e| invalid(&origin, "ca_file", e.to_string()))?;
            Trust::CaFile(path)
        }
        (None, Some((text, origin))) => {
            Trust::Pin(crate::tls::parse_pin(&text).map_err(|e| invalid(&origin, "pin_sha256", e))?)
        }
        (None, None) => Trust::PublicRoots,
    };
    let client = match (cert, key) {
        (Some((cert, cert_origin)), Some((key, key_origin))) => {
            fleetwatch_common::pem::load_certs(&cert)
                .map_err(|e| invalid(&cert_origin, "client_cert", e.to_string()))?;
            fleetwatch_common::pem::load_key(&key)
                .map_err(|e| invalid(&key_origin, "client_key", e.to_string()))?;
            Some((cert, key))
        }
        (Some((_, origin)), None) => {
            return Err(invalid(
                &origin,
                "client_key",
                "client_cert is set but client_key is not".to_owned(),
            ));
        }
        (None, Some((_, origin))) => {
            return Err(invalid(
                &origin,
                "client_cert",
                "client_key is set but client_cert is not".to_owned(),
            ));
        }
        (None, None) => None,
    };
    let settings = TlsSettings { trust, client };
    // Catch a key that does not match its certificate now, not at connect.
    crate::tls::client_config(&settings)
        .map_err(|e| invalid(file_origin, "client_key", e.to_string()))?;
    Ok(Some(settings))
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// `$STATE_DIRECTORY` (set by systemd's `StateDirectory=`; the first of
/// its list), else `/var/lib/fleetwatch-agent` if it exists, else
/// `./fleetwatch-agent-state` for a run by hand.
fn default_state_dir() -> PathBuf {
    if let Some(dirs) = std::env::var_os("STATE_DIRECTORY")
        && let Some(first) = dirs.to_string_lossy().split(':').next()
        && !first.is_empty()
    {
        return PathBuf::from(first);
    }
    let system = Path::new("/var/lib/fleetwatch-agent");
    if system.is_dir() {
        return system.to_owned();
    }
    PathBuf::from("fleetwatch-agent-state")
}

fn read_machine_id() -> Result<String, String> {
    let text =
        std::fs::read_to_string("/etc/machine-id").map_err(|e| format!("/etc/machine-id: {e}"))?;
    Ok(text.trim().to_owned())
}

/// Parses durations such as `1s`, `500ms`, `5m`, `1h 30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| format!("`{text}` is not a duration: {e}"))
}

/// Host ids go into URLs and logs: keep them to a safe alphabet.
pub fn validate_host_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 128 {
        return Err("must be 1 to 128 characters".to_owned());
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Err(format!(
            "`{id}` may contain only letters, digits, `.`, `-` and `_`"
        ));
    }
    Ok(())
}

fn validate_group_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err("a worker group name must be 1 to 64 characters".to_owned());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Err(format!(
            "worker group name `{name}` may contain only letters, digits, `.`, `-` and `_`"
        ));
    }
    Ok(())
}

fn compile(regex: &str) -> Result<Regex, String> {
    Regex::new(regex).map_err(|e| format!("bad regular expression: {e}"))
}

fn group_from_file(group: WorkerGroupFile) -> Result<WorkerGroupConfig, String> {
    validate_group_name(&group.name)?;
    let matcher = match (group.cmdline, group.process_name, group.exe) {
        (Some(re), None, None) => Matcher::Cmdline(compile(&re)?),
        (None, Some(name), None) => Matcher::ProcessName(name),
        (None, None, Some(path)) => Matcher::Exe(path),
        _ => {
            return Err(format!(
                "worker group `{}` needs exactly one of `cmdline`, `process_name`, `exe`",
                group.name
            ));
        }
    };
    Ok(WorkerGroupConfig {
        name: group.name,
        matcher,
        min_alive: group.min_alive.unwrap_or(1),
    })
}

/// Parses `GROUP=REGEX[:MIN]`. The regex may itself contain `:`; only a
/// trailing `:` followed by digits is read as the minimum.
fn parse_worker_flag(spec: &str) -> Result<WorkerGroupConfig, String> {
    let (name, rest) = spec
        .split_once('=')
        .ok_or_else(|| "expected GROUP=REGEX[:MIN]".to_owned())?;
    validate_group_name(name)?;
    let (regex, min_alive) = match rest.rsplit_once(':') {
        Some((re, min)) if !min.is_empty() && min.bytes().all(|b| b.is_ascii_digit()) => (
            re,
            min.parse::<u32>()
                .map_err(|e| format!("bad minimum `{min}`: {e}"))?,
        ),
        _ => (rest, 1),
    };
    if regex.is_empty() {
        return Err("the regular expression is empty".to_owned());
    }
    Ok(WorkerGroupConfig {
        name: name.to_owned(),
        matcher: Matcher::Cmdline(compile(regex)?),
        min_alive,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_machine_id() -> Result<String, String> {
        Err("no machine id in tests".to_owned())
    }

    fn args(list: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("fleetwatch-agent").chain(list.iter().copied()))
            .expect("args parse")
    }

    #[test]
    fn defaults_apply_without_file() {
        let cfg = Config::merge(
            &args(&["--host-id", "h1"]),
            FileConfig::default(),
            "f",
            no_machine_id,
        )
        .expect("valid");
        assert_eq!(cfg.aggregator, "http://127.0.0.1:7400");
        assert_eq!(cfg.interval, Duration::from_secs(5));
        assert_eq!(cfg.host_id, "h1");
        assert!(cfg.workers.is_empty());
    }

    #[test]
    fn spool_and_cap_keys_are_read_and_checked() {
        let file: FileConfig = toml::from_str(
            r#"
            state_dir = "/srv/fw-state"
            spool_max_age = "6h"
            backfill_rate = 20
            max_filesystems = 16
            "#,
        )
        .expect("toml");
        let cfg = Config::merge(
            &args(&["--host-id", "h1", "--max-workers-per-group", "8"]),
            file,
            "f",
            no_machine_id,
        )
        .expect("valid");
        assert_eq!(cfg.state_dir, PathBuf::from("/srv/fw-state"));
        assert_eq!(cfg.spool_max_age, Duration::from_secs(6 * 3600));
        assert_eq!(cfg.backfill_rate, 20);
        assert_eq!((cfg.max_workers_per_group, cfg.max_filesystems), (8, 16));

        let defaults = Config::merge(
            &args(&["--host-id", "h1"]),
            FileConfig::default(),
            "f",
            no_machine_id,
        )
        .expect("valid");
        assert_eq!(defaults.spool_max_age, Duration::from_secs(48 * 3600));
        assert_eq!(defaults.backfill_rate, 100);

        for (flag, value, key) in [
            ("--spool-max-age", "10s", "spool_max_age"),
            ("--backfill-rate", "0", "backfill_rate"),
            ("--max-filesystems", "0", "max_filesystems"),
        ] {
            let err = Config::merge(
                &args(&["--host-id", "h1", flag, value]),
                FileConfig::default(),
                "f",
                no_machine_id,
            )
            .expect_err("invalid");
            assert!(err.to_string().contains(key), "{err}");
        }
    }

    #[test]
    fn machine_id_is_the_default_host_id() {
        let cfg = Config::merge(&args(&[]), FileConfig::default(), "f", || {
            Ok("abc123".to_owned())
        })
        .expect("valid");
        assert_eq!(cfg.host_id, "abc123");
    }

    #[test]
    fn flags_override_file() {
        let file: FileConfig = toml::from_str(
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
        .expect("toml");
        let cfg = Config::merge(
            &args(&["--interval", "500ms", "--worker", "web=^gunicorn .*:2"]),
            file,
            "agent.toml",
            no_machine_id,
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
    fn token_comes_from_the_config_or_a_file() {
        let file: FileConfig = toml::from_str(r#"token = " fwa_abc ""#).expect("toml");
        let cfg = Config::merge(
            &args(&["--host-id", "h"]),
            file,
            "agent.toml",
            no_machine_id,
        )
        .expect("valid");
        assert_eq!(cfg.token.as_deref(), Some("fwa_abc"));

        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        std::fs::write(&path, "fwa_from_file\n").expect("write");
        let path = path.to_str().expect("utf-8");
        let cfg = Config::merge(
            &args(&["--host-id", "h", "--token-file", path]),
            FileConfig::default(),
            "agent.toml",
            no_machine_id,
        )
        .expect("valid");
        assert_eq!(cfg.token.as_deref(), Some("fwa_from_file"));

        let both: FileConfig = toml::from_str(r#"token = "fwa_abc""#).expect("toml");
        let cfg = Config::merge(
            &args(&["--host-id", "h", "--token-file", path]),
            both,
            "agent.toml",
            no_machine_id,
        )
        .expect("flags come before the file");
        assert_eq!(cfg.token.as_deref(), Some("fwa_from_file"));

        let both: FileConfig =
            toml::from_str("token = \"fwa_abc\"\ntoken_file = \"/x\"").expect("toml");
        let err = Config::merge(
            &args(&["--host-id", "h"]),
            both,
            "agent.toml",
            no_machine_id,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("not both"), "{err}");

        // An empty token file (no token installed) leaves the file's token.
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").expect("write");
        let inline: FileConfig = toml::from_str(r#"token = "fwa_inline""#).expect("toml");
        let cfg = Config::merge(
            &args(&[
                "--host-id",
                "h",
                "--token-file",
                empty.to_str().expect("utf-8"),
            ]),
            inline,
            "agent.toml",
            no_machine_id,
        )
        .expect("valid");
        assert_eq!(cfg.token.as_deref(), Some("fwa_inline"));

        let missing = Config::merge(
            &args(&["--host-id", "h", "--token-file", "/nonexistent/token"]),
            FileConfig::default(),
            "agent.toml",
            no_machine_id,
        )
        .unwrap_err()
        .to_string();
        assert!(
            missing.contains("token_file") && missing.contains("/nonexistent/token"),
            "{missing}"
        );

        let spaced: FileConfig = toml::from_str(r#"token = "two words""#).expect("toml");
        assert!(
            Config::merge(
                &args(&["--host-id", "h"]),
                spaced,
                "agent.toml",
                no_machine_id
            )
            .is_err()
        );
    }

    #[test]
    fn filesystem_and_network_lists_replace_their_defaults() {
        let cfg = Config::merge(
            &args(&["--host-id", "h", "--state-dir", "/var/lib/x"]),
            FileConfig::default(),
            "agent.toml",
            no_machine_id,
        )
        .expect("valid");
        assert_eq!(cfg.system, SystemConfig::default());
        assert!(cfg.process_events);
        assert_eq!(cfg.state_dir, Path::new("/var/lib/x"));
        assert!(!cfg.system.filesystems.types.keeps("proc"));

        let file: FileConfig = toml::from_str(
            "process_events = false\n[filesystems]\nexclude_types = [\"tmpfs\"]\n\
             include_mounts = [\"/data*\"]\n[network]\ninclude = [\"eth*\"]\n",
        )
        .expect("toml");
        let cfg = Config::merge(
            &args(&["--host-id", "h"]),
            file,
            "agent.toml",
            no_machine_id,
        )
        .expect("valid");
        assert!(!cfg.process_events);
        let fs = &cfg.system.filesystems;
        assert!(fs.types.keeps("proc"), "the default list is replaced");
        assert!(!fs.types.keeps("tmpfs"));
        assert!(fs.mounts.keeps("/data/db") && !fs.mounts.keeps("/"));
        assert!(cfg.system.interfaces.keeps("eth0") && !cfg.system.interfaces.keeps("wlan0"));
        assert!(toml::from_str::<FileConfig>("[filesystems]\nexclude = []").is_err());
    }

    #[test]
    fn worker_flag_keeps_colons_in_regex() {
        let g = parse_worker_flag("dummies=^sleep 3600$:200").expect("valid");
        assert_eq!(g.min_alive, 200);
        let g = parse_worker_flag("api=http://x:y").expect("valid");
        assert_eq!(g.min_alive, 1);
        assert!(matches!(&g.matcher, Matcher::Cmdline(re) if re.as_str() == "http://x:y"));
        assert!(parse_worker_flag("noequals").is_err());
        assert!(parse_worker_flag("bad name=x").is_err());
        assert!(parse_worker_flag("g=(unclosed").is_err());
    }

    #[test]
    fn unknown_key_is_named() {
        let err = toml::from_str::<FileConfig>("intervall = \"1s\"").expect_err("unknown key");
        assert!(err.to_string().contains("intervall"), "{err}");
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
        ];
        for (text, key) in cases {
            let file: FileConfig = toml::from_str(&format!("host_id = \"h\"\n{text}"))
                .or_else(|_| toml::from_str(text))
                .expect("toml");
            let err = Config::merge(&args(&[]), file, "agent.toml", no_machine_id)
                .expect_err(text)
                .to_string();
            assert!(err.contains(&format!("`{key}`")), "{text}: {err}");
            assert!(
                err.starts_with("agent.toml") || err.starts_with("default"),
                "{err}"
            );
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

    #[test]
    fn tls_settings_are_checked_and_named() {
        let pin = "AB".repeat(32);
        let cfg = Config::merge(
            &args(&[
                "--host-id",
                "h",
                "--aggregator",
                "https://agg:7400",
                "--pin-sha256",
                &pin,
            ]),
            FileConfig::default(),
            "agent.toml",
            no_machine_id,
        )
        .expect("valid");
        let tls = cfg.tls.expect("https means TLS");
        assert_eq!(tls.trust, Trust::Pin([0xab; 32]));
        let cfg = Config::merge(
            &args(&["--host-id", "h", "--aggregator", "https://agg:7400"]),
            FileConfig::default(),
            "agent.toml",
            no_machine_id,
        )
        .expect("valid");
        assert_eq!(cfg.tls.map(|t| t.trust), Some(Trust::PublicRoots));

        let dir = tempfile::tempdir().expect("tempdir");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").expect("write");
        let junk = junk.display().to_string();
        for (flags, key, reason) in [
            (vec!["--pin-sha256", "abc"], "pin_sha256", "64 hex digits"),
            (
                vec!["--ca-file", "/nonexistent/ca.pem"],
                "ca_file",
                "/nonexistent/ca.pem",
            ),
            (vec!["--ca-file", &junk], "ca_file", "junk.pem"),
            (
                vec!["--ca-file", &junk, "--pin-sha256", &pin],
                "pin_sha256",
                "not both",
            ),
            (
                vec!["--client-cert", &junk],
                "client_key",
                "client_key is not",
            ),
            (
                vec!["--client-key", &junk, "--client-cert", &junk],
                "client_cert",
                "junk.pem",
            ),
        ] {
            let mut all = vec!["--host-id", "h", "--aggregator", "https://agg:7400"];
            all.extend(flags);
            let err = Config::merge(
                &args(&all),
                FileConfig::default(),
                "agent.toml",
                no_machine_id,
            )
            .expect_err(key)
            .to_string();
            assert!(
                err.contains(&format!("key `{key}`")) && err.contains(reason),
                "{err}"
            );
        }

        let file: FileConfig = toml::from_str("ca_file = \"/etc/ca.pem\"").expect("toml");
        let err = Config::merge(
            &args(&["--host-id", "h", "--aggregator", "http://agg:7400"]),
            file,
            "agent.toml",
            no_machine_id,
        )
        .expect_err("TLS key for http://")
        .to_string();
        assert!(
            err.starts_with("agent.toml: key `ca_file`") && err.contains("not https://"),
            "{err}"
        );
    }
}
