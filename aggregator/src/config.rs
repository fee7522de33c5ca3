//! The aggregator's configuration: built-in defaults, then a TOML file, then
//! `FLEETWATCH_` environment variables, then command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

use crate::alerts::{AlertsConfig, Rule, builtin_rules};

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
}

/// Command line of `fleetwatch-aggregator`.
#[derive(Debug, Default, Parser)]
#[command(
    name = "fleetwatch-aggregator",
    version,
    about = "Receives samples from fleetwatch agents over gRPC, stores them, and serves the API and dashboard.",
    long_about = "Receives samples from fleetwatch agents over gRPC, stores them in SQLite, and \
serves the REST API and dashboard over HTTP.\n\nPrecedence: flags, then FLEETWATCH_* environment \
variables, then the config file, then built-in defaults."
)]
pub struct Args {
    /// TOML config file (see deploy/aggregator.example.toml for every key).
    #[arg(long, short = 'c', env = "FLEETWATCH_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address the gRPC ingest service listens on [default: 127.0.0.1:7400].
    #[arg(long, env = "FLEETWATCH_GRPC_LISTEN", value_name = "ADDR")]
    pub grpc_listen: Option<String>,

    /// Address the HTTP API and dashboard listen on [default: 127.0.0.1:7401].
    #[arg(long, env = "FLEETWATCH_HTTP_LISTEN", value_name = "ADDR")]
    pub http_listen: Option<String>,

    /// SQLite database file, created if missing [default: fleetwatch.db].
    #[arg(long, env = "FLEETWATCH_DB", value_name = "PATH")]
    pub db: Option<PathBuf>,

    /// How long raw samples are kept, such as 24h or 7d [default: 24h].
    #[arg(long, env = "FLEETWATCH_RETENTION", value_name = "DURATION")]
    pub retention: Option<String>,

    /// Send a test notification to every webhook in the config, report
    /// each result, and exit (non-zero if any failed).
    #[arg(long)]
    pub test_webhook: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub grpc_listen: Option<String>,
    pub http_listen: Option<String>,
    pub db: Option<PathBuf>,
    pub retention: Option<String>,
    /// The dashboard's address as people reach it, for links in notifications.
    pub public_url: Option<String>,
    #[serde(default)]
    pub alerts: AlertsConfig,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub grpc_listen: SocketAddr,
    pub http_listen: SocketAddr,
    pub db: PathBuf,
    pub retention: Duration,
    pub public_url: Option<String>,
    /// The `[alerts]` section as written; `rules` is what it builds to.
    pub alerts: AlertsConfig,
    /// The alert rules in force: the built-in defaults with the file's
    /// overrides, plus its own rules.
    pub rules: Vec<Rule>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 7400)),
            http_listen: SocketAddr::from(([127, 0, 0, 1], 7401)),
            db: PathBuf::from("fleetwatch.db"),
            retention: Duration::from_secs(24 * 3600),
            public_url: None,
            alerts: AlertsConfig::default(),
            rules: builtin_rules(),
        }
    }
}

impl Config {
    pub fn load(args: &Args) -> Result<Self, ConfigError> {
        let (file, origin) = match &args.config {
            Some(path) => (read_file(path)?, path.display().to_string()),
            None => (FileConfig::default(), "config".to_owned()),
        };
        Self::merge(args, file, &origin)
    }

    fn merge(args: &Args, file: FileConfig, file_origin: &str) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let pick =
            |flag: &Option<String>, from_file: Option<String>, flag_name: &'static str| match (
                flag, from_file,
            ) {
                (Some(v), _) => Some((v.clone(), flag_name.to_owned())),
                (None, Some(v)) => Some((v, file_origin.to_owned())),
                (None, None) => None,
            };
        let addr = |value: Option<(String, String)>, key: &str, default: SocketAddr| {
            value.map_or(Ok(default), |(text, origin)| {
                text.parse::<SocketAddr>()
                    .map_err(|e| ConfigError::Invalid {
                        origin,
                        key: key.to_owned(),
                        reason: format!("`{text}` is not an address like 0.0.0.0:7400: {e}"),
                    })
            })
        };
        let grpc_listen = addr(
            pick(&args.grpc_listen, file.grpc_listen, "--grpc-listen"),
            "grpc_listen",
            defaults.grpc_listen,
        )?;
        let http_listen = addr(
            pick(&args.http_listen, file.http_listen, "--http-listen"),
            "http_listen",
            defaults.http_listen,
        )?;
        let retention = match pick(&args.retention, file.retention, "--retention") {
            None => defaults.retention,
            Some((text, origin)) => {
                let d = humantime::parse_duration(&text).map_err(|e| ConfigError::Invalid {
                    origin: origin.clone(),
                    key: "retention".to_owned(),
                    reason: format!("`{text}` is not a duration: {e}"),
                })?;
                if d < Duration::from_secs(60) {
                    return Err(ConfigError::Invalid {
                        origin,
                        key: "retention".to_owned(),
                        reason: "must be at least 1m".to_owned(),
                    });
                }
                d
            }
        };
        let db = args.db.clone().or(file.db).unwrap_or(defaults.db);
        if db.as_os_str().is_empty() {
            return Err(ConfigError::Invalid {
                origin: file_origin.to_owned(),
                key: "db".to_owned(),
                reason: "is empty".to_owned(),
            });
        }
        let rules = file.alerts.build().map_err(|e| ConfigError::Invalid {
            origin: file_origin.to_owned(),
            key: "alerts".to_owned(),
            reason: e.to_string(),
        })?;
        let notify_err = |e: crate::alerts::notify::NotifyConfigError| ConfigError::Invalid {
            origin: file_origin.to_owned(),
            key: "alerts".to_owned(),
            reason: e.to_string(),
        };
        crate::alerts::notify::validate_webhooks(&file.alerts.webhooks).map_err(notify_err)?;
        file.alerts.notify.validate().map_err(notify_err)?;
        if let Some(url) = &file.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::Invalid {
                origin: file_origin.to_owned(),
                key: "public_url".to_owned(),
                reason: format!("`{url}` must start with http:// or https://"),
            });
        }
        Ok(Self {
            grpc_listen,
            http_listen,
            db,
            retention,
            public_url: file.public_url,
            alerts: file.alerts,
            rules,
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("fleetwatch-aggregator").chain(list.iter().copied()))
            .expect("args")
    }

    #[test]
    fn flags_override_file_and_defaults_fill_in() {
        let file: FileConfig =
            toml::from_str("grpc_listen = \"0.0.0.0:9000\"\nretention = \"48h\"").expect("toml");
        let cfg = Config::merge(&args(&["--grpc-listen", "127.0.0.1:0"]), file, "agg.toml")
            .expect("valid");
        assert_eq!(cfg.grpc_listen, "127.0.0.1:0".parse().expect("addr"));
        assert_eq!(cfg.http_listen, Config::default().http_listen);
        assert_eq!(cfg.retention, Duration::from_secs(48 * 3600));
    }

    #[test]
    fn alert_rules_are_built_and_bad_ones_named() {
        let file: FileConfig =
            toml::from_str("[alerts.defaults.memory]\nenabled = false\n").expect("toml");
        let cfg = Config::merge(&args(&[]), file, "agg.toml").expect("valid");
        assert!(cfg.rules.iter().any(|r| r.name == "cpu"));
        assert!(!cfg.rules.iter().any(|r| r.name == "memory"));

        let file: FileConfig = toml::from_str(
            "[[alerts.rules]]\nname = \"hot\"\nmetric = \"cpu_percent\"\ncomparison = \">=\"\nwarning = 99\ncritical = 90\n",
        )
        .expect("toml");
        let err = Config::merge(&args(&[]), file, "agg.toml")
            .expect_err("critical below warning")
            .to_string();
        assert!(
            err.contains("agg.toml: key `alerts`") && err.contains("hot"),
            "{err}"
        );
    }

    #[test]
    fn example_config_is_valid() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/aggregator.example.toml"
        );
        let cfg = Config::load(&args(&["--config", path])).expect("valid");
        assert_eq!(cfg.retention, Duration::from_secs(24 * 3600));
    }

    #[test]
    fn bad_values_name_file_and_key() {
        for (text, key) in [
            ("grpc_listen = \"localhost\"", "grpc_listen"),
            ("http_listen = \"1.2.3.4:99999\"", "http_listen"),
            ("retention = \"forever\"", "retention"),
            ("retention = \"1s\"", "retention"),
        ] {
            let file: FileConfig = toml::from_str(text).expect("toml");
            let err = Config::merge(&args(&[]), file, "agg.toml")
                .expect_err(text)
                .to_string();
            assert!(err.starts_with("agg.toml: key `"), "{err}");
            assert!(err.contains(key), "{err}");
        }
        let err = toml::from_str::<FileConfig>("grpc_port = 1").expect_err("unknown key");
        assert!(err.to_string().contains("grpc_port"));
    }
}
